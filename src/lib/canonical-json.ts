// One byte-exact text for a JSON-like value, so that the same record always hashes the same (the audit
// chain, services/audit.ts): object keys sorted recursively (by UTF-16 code units, as RFC 8785 does),
// no whitespace, Dates as RFC 3339 UTC strings with milliseconds, undefined object fields omitted, null
// kept. Strings and numbers are written as JSON.stringify writes them. Anything JSON cannot carry
// faithfully (NaN, Infinity, bigint, functions, symbols, class instances other than Date) is refused
// rather than silently changed, since a changed value would hash differently once stored and read back.

export class CanonicalJsonError extends TypeError {}

export function canonicalJson(value: unknown): string {
  return write(value, '$');
}

function write(value: unknown, path: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new CanonicalJsonError(`${path}: ${value} has no JSON form`);
      return JSON.stringify(value);
    case 'object':
      break;
    default:
      throw new CanonicalJsonError(`${path}: a ${typeof value} has no JSON form`);
  }
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new CanonicalJsonError(`${path}: invalid date`);
    return JSON.stringify(value.toISOString());
  }
  if (Array.isArray(value)) {
    // As JSON.stringify does: a hole or undefined in an array is null (dropping it would shift the rest).
    const items: string[] = [];
    for (let index = 0; index < value.length; index += 1) {
      const item: unknown = value[index];
      items.push(item === undefined ? 'null' : write(item, `${path}[${index}]`));
    }
    return `[${items.join(',')}]`;
  }
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) {
    throw new CanonicalJsonError(`${path}: only plain objects, arrays and dates have a canonical form`);
  }
  const record = value as Record<string, unknown>;
  const fields: string[] = [];
  // The default sort compares UTF-16 code units: the order RFC 8785 prescribes, whatever the locale.
  for (const key of Object.keys(record).sort()) {
    const field = record[key];
    if (field === undefined) continue;
    fields.push(`${JSON.stringify(key)}:${write(field, `${path}.${key}`)}`);
  }
  return `{${fields.join(',')}}`;
}
