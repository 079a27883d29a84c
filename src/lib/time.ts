// Timestamps in the contract's form: RFC 3339 with milliseconds, in UTC ("Z") or the configured offset.

/** Formats a date for API output. `timezone` is "Z", "UTC" or an offset such as "+05:30". */
export function formatTimestamp(date: Date, timezone = 'Z'): string {
  if (timezone === 'Z' || timezone === 'UTC') return date.toISOString();
  const sign = timezone.startsWith('-') ? -1 : 1;
  const [hours, minutes] = timezone.slice(1).split(':').map(Number) as [number, number];
  const offsetMs = sign * (hours * 60 + minutes) * 60_000;
  return new Date(date.getTime() + offsetMs).toISOString().replace('Z', timezone);
}

/** Nullable variant for optional fields. */
export function formatOptionalTimestamp(date: Date | null | undefined, timezone = 'Z'): string | null {
  return date ? formatTimestamp(date, timezone) : null;
}
