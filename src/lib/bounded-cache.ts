// A least-recently-used map bounded by its number of entries, for in-process state keyed by something
// clients choose (addresses, principals), so rotating keys cannot grow it without limit.
//
// lru-cache's `max` allocates storage for every entry up front: at 100,000 entries that is 1.6 MB of
// pointer arrays per cache, which every full garbage collection scans although a cache mostly holds a
// few hundred keys (the detection plugin's caches made up a third of the server's live heap). lru-cache's
// documented alternative keeps the same bound with storage that grows with use: `maxSize` with a size
// of 1 per entry.
import { LRUCache } from 'lru-cache';

export function boundedCache<K extends NonNullable<unknown>, V extends NonNullable<unknown>>(
  maxEntries: number,
  options: { ttl?: number } = {},
): LRUCache<K, V> {
  return new LRUCache<K, V>({ maxSize: maxEntries, sizeCalculation: () => 1, ...options });
}
