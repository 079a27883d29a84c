// Words of a text as search keys: lower-cased, accents removed, split on anything that is not a letter or
// digit. Messages store these (deduplicated) in an indexed array, which is how search works on FerretDB,
// which has no $text index.
const MAX_TERM_LENGTH = 40;
const MAX_TERMS = 500;

export function words(text: string): string[] {
  return text
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter((word) => word.length > 0)
    .map((word) => word.slice(0, MAX_TERM_LENGTH));
}

/** The distinct words of `text`, capped so a huge message cannot blow up its index entries. */
export function termsOf(text: string): string[] {
  return [...new Set(words(text))].slice(0, MAX_TERMS);
}

export function escapeRegex(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
