// The name a user gave a file, kept for display only (the bytes are stored under a generated key).
// Names that try to be paths or hide their real extension are refused rather than quietly repaired,
// so the uploader sees why; long names are shortened keeping their extension.
import { Errors } from '../errors.js';

const MAX_NAME_BYTES = 255;
/** Control characters, and the bidirectional overrides that make "exe.txt" display as "txt.exe". */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/u;

export interface CheckedName {
  /** For display and Content-Disposition. */
  name: string;
  /** Lower-cased, without the dot; empty when the name has none. */
  extension: string;
}

export function checkFileName(raw: string | undefined): CheckedName {
  // Before any tidying: a tab or newline in a name is refused, not turned into a space.
  if (raw !== undefined && FORBIDDEN.test(raw)) {
    throw new Errors.INVALID_FILE_NAME('A file name may not contain control or direction characters');
  }
  const name = (raw ?? '').normalize('NFC').trim().replace(/\s+/gu, ' ');
  if (!name) throw new Errors.INVALID_FILE_NAME('The file needs a name');
  if (name.includes('/') || name.includes('\\')) {
    throw new Errors.INVALID_FILE_NAME('A file name may not contain a path (/ or \\)');
  }
  if (/^\.+$/.test(name)) throw new Errors.INVALID_FILE_NAME('A file name may not be only dots');
  const dot = name.lastIndexOf('.');
  const extension = dot > 0 ? name.slice(dot + 1).toLowerCase() : '';
  return { name: shorten(name, dot > 0 ? name.slice(dot) : ''), extension };
}

/** At most MAX_NAME_BYTES of UTF-8, cutting the stem (on a character boundary) and keeping the extension. */
function shorten(name: string, suffix: string): string {
  if (Buffer.byteLength(name) <= MAX_NAME_BYTES) return name;
  let stem = name.slice(0, name.length - suffix.length);
  const budget = MAX_NAME_BYTES - Buffer.byteLength(suffix) - Buffer.byteLength('…');
  const characters = [...stem];
  while (characters.length && Buffer.byteLength(characters.join('')) > budget) characters.pop();
  stem = characters.join('');
  return `${stem}…${suffix}`;
}
