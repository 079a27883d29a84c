// Control characters have no place in names or messages (they corrupt logs and terminals, and NUL breaks
// storage): C0, DEL and C1 (U+0080-U+009F, where some terminals read escape sequences). Newline and tab
// are the only exceptions, and only in multi-line text.
/* eslint-disable no-control-regex -- these patterns exist to find control characters */
const ANY_CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const CONTROL_EXCEPT_TAB_NEWLINE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
/* eslint-enable no-control-regex */

export function hasControlCharacters(value: string, { allowNewlines = false } = {}): boolean {
  return (allowNewlines ? CONTROL_EXCEPT_TAB_NEWLINE : ANY_CONTROL).test(value);
}
