// What an upload may be. The type of a stored file comes from its extension (checked against
// ALLOWED_EXTENSIONS) and from its bytes; never from the Content-Type or name the client claims.
//
//   binary  the sniffed signature (file-type) must be one the extension allows: a `.png` holding HTML
//           has no PNG signature and is refused.
//   text    valid UTF-8 without NUL. Code, SQL or markup pasted into a `.txt` is fine: it is served as
//           text/plain with nosniff, so no browser runs it.
//   active  HTML, SVG, JavaScript, XML: refused unless files.allow_active_content; even then checked
//           as text and only ever served as a download under a sandboxing CSP.
//   opaque  an extension an administrator allowed that we know nothing about: stored as
//           application/octet-stream and always served as a download.
import { isUtf8 } from 'node:buffer';
import { fileTypeFromBuffer, supportedExtensions } from 'file-type';

export type FileKind = 'binary' | 'text' | 'active' | 'opaque';

interface TypeRule {
  kind: FileKind;
  mime: string;
  /** binary: the signatures file-type may report for a genuine file of this extension. */
  signatures?: readonly string[];
}

const OOXML_SIGNATURES = (exact: string) => [exact, 'zip'] as const;

const RULES: Readonly<Record<string, TypeRule>> = {
  png: { kind: 'binary', mime: 'image/png', signatures: ['png', 'apng'] },
  jpg: { kind: 'binary', mime: 'image/jpeg', signatures: ['jpg'] },
  jpeg: { kind: 'binary', mime: 'image/jpeg', signatures: ['jpg'] },
  gif: { kind: 'binary', mime: 'image/gif', signatures: ['gif'] },
  webp: { kind: 'binary', mime: 'image/webp', signatures: ['webp'] },
  pdf: { kind: 'binary', mime: 'application/pdf', signatures: ['pdf'] },
  zip: { kind: 'binary', mime: 'application/zip', signatures: ['zip'] },
  // Office Open XML files are zip archives; file-type names them when it can see their first entries.
  docx: {
    kind: 'binary',
    mime: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
    signatures: OOXML_SIGNATURES('docx'),
  },
  xlsx: {
    kind: 'binary',
    mime: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    signatures: OOXML_SIGNATURES('xlsx'),
  },
  pptx: {
    kind: 'binary',
    mime: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
    signatures: OOXML_SIGNATURES('pptx'),
  },
  // Legacy Office files are OLE compound files ("cfb").
  doc: { kind: 'binary', mime: 'application/msword', signatures: ['cfb'] },
  xls: { kind: 'binary', mime: 'application/vnd.ms-excel', signatures: ['cfb'] },
  ppt: { kind: 'binary', mime: 'application/vnd.ms-powerpoint', signatures: ['cfb'] },
  txt: { kind: 'text', mime: 'text/plain; charset=utf-8' },
  log: { kind: 'text', mime: 'text/plain; charset=utf-8' },
  md: { kind: 'text', mime: 'text/markdown; charset=utf-8' },
  csv: { kind: 'text', mime: 'text/csv; charset=utf-8' },
  tsv: { kind: 'text', mime: 'text/tab-separated-values; charset=utf-8' },
  json: { kind: 'text', mime: 'application/json; charset=utf-8' },
  yaml: { kind: 'text', mime: 'application/yaml; charset=utf-8' },
  yml: { kind: 'text', mime: 'application/yaml; charset=utf-8' },
  html: { kind: 'active', mime: 'text/html; charset=utf-8' },
  htm: { kind: 'active', mime: 'text/html; charset=utf-8' },
  xhtml: { kind: 'active', mime: 'application/xhtml+xml' },
  svg: { kind: 'active', mime: 'image/svg+xml' },
  xml: { kind: 'active', mime: 'application/xml' },
  js: { kind: 'active', mime: 'text/javascript; charset=utf-8' },
  mjs: { kind: 'active', mime: 'text/javascript; charset=utf-8' },
};

/** Client-declared part types that announce active content (a `.png` sent as text/html is refused). */
const ACTIVE_DECLARED_TYPES =
  /^(text\/html|application\/xhtml\+xml|image\/svg\+xml|text\/javascript|application\/javascript|application\/ecmascript|text\/xml|application\/xml)\b/i;

/** Types a browser may show inline; everything else is a download. */
export const INLINE_TYPES: ReadonlySet<string> = new Set([
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp',
]);

export interface TypeDecision {
  kind: FileKind;
  mime: string;
}

/** The rule for an extension an administrator allowed (unknown binary types must match their signature). */
export function ruleFor(extension: string): TypeDecision & { signatures?: readonly string[] } {
  const known = RULES[extension];
  if (known) return known;
  if (supportedExtensions.has(extension as never)) {
    return { kind: 'binary', mime: 'application/octet-stream', signatures: [extension] };
  }
  return { kind: 'opaque', mime: 'application/octet-stream' };
}

export function declaresActiveContent(declaredType: string | undefined): boolean {
  return declaredType !== undefined && ACTIVE_DECLARED_TYPES.test(declaredType.trim());
}

/**
 * Checks the sniffed signature of a binary upload against its extension, from the first bytes
 * (`head`). Returns the MIME type to store, or a reason for refusing.
 */
export async function checkSignature(
  extension: string,
  rule: TypeDecision & { signatures?: readonly string[] },
  head: Buffer,
): Promise<{ mime: string } | { refused: string }> {
  const sniffed = await fileTypeFromBuffer(head);
  if (!sniffed || !rule.signatures?.includes(sniffed.ext)) {
    return {
      refused: sniffed
        ? `The content is ${sniffed.ext}, not .${extension}`
        : `The content is not a .${extension} file`,
    };
  }
  return { mime: rule.mime === 'application/octet-stream' ? sniffed.mime : rule.mime };
}

/**
 * Validates UTF-8 chunk by chunk: a multi-byte character split between chunks is carried to the next
 * one. NUL is refused (it ends strings in too many programs that will open the file).
 */
export class Utf8Checker {
  private carry: Buffer = Buffer.alloc(0);
  private failure: string | null = null;

  get problem(): string | null {
    return this.failure;
  }

  push(chunk: Buffer): void {
    if (this.failure) return;
    const bytes = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    if (bytes.includes(0)) {
      this.failure = 'The text contains a NUL character';
      return;
    }
    const complete = completeUtf8Length(bytes);
    if (!isUtf8(bytes.subarray(0, complete))) this.failure = 'The text is not valid UTF-8';
    this.carry = Buffer.from(bytes.subarray(complete));
  }

  /** Call at the end: a dangling partial character is invalid. */
  finish(): void {
    if (!this.failure && this.carry.length) this.failure = 'The text is not valid UTF-8';
  }
}

/** How many leading bytes end on a character boundary (at most 3 trailing bytes are held back). */
function completeUtf8Length(bytes: Buffer): number {
  const end = bytes.length;
  for (let back = 1; back <= Math.min(3, end); back += 1) {
    const byte = bytes[end - back]!;
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte: keep looking for its lead byte
    const needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return needed > back ? end - back : end;
  }
  return end;
}
