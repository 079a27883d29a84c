// Cursor paging: a query asks for one row more than the page holds; that extra row only says whether
// more exist. The cursor of the next page comes from the last row kept.
export interface Page<T> {
  rows: T[];
  next_cursor: string | null;
  has_more: boolean;
}

/** `fetched` holds up to limit + 1 rows. */
export function pageOf<T>(fetched: T[], limit: number, cursorOf: (last: T) => string): Page<T> {
  const hasMore = fetched.length > limit;
  const rows = fetched.slice(0, limit);
  const last = rows.at(-1);
  return { rows, next_cursor: hasMore && last !== undefined ? cursorOf(last) : null, has_more: hasMore };
}
