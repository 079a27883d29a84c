// The LRU map behind the detection plugin's in-process state: bounded by its number of entries, and
// holding no storage for entries it does not have.
import { describe, expect, it } from 'vitest';
import { boundedCache } from '../../src/lib/bounded-cache.js';

describe('boundedCache', () => {
  it('keeps at most maxEntries, dropping the least recently used first', () => {
    const cache = boundedCache<string, number>(3);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('c', 3);
    expect(cache.get('a')).toBe(1); // `a` is now the most recently used
    cache.set('d', 4);
    expect(cache.size).toBe(3);
    expect(cache.has('b')).toBe(false);
    expect([...cache.keys()].sort()).toEqual(['a', 'c', 'd']);
    cache.set('a', 10); // replacing an entry does not count twice
    cache.set('e', 5);
    expect(cache.size).toBe(3);
    expect(cache.get('a')).toBe(10);
    expect(cache.has('c')).toBe(false);
  });

  it('allocates nothing up front for the entries it may hold', () => {
    global.gc?.();
    const before = process.memoryUsage().heapUsed;
    // With storage allocated up front, ten caches of a million entries would take 160 MB of heap.
    const caches = Array.from({ length: 10 }, () => boundedCache<string, number>(1_000_000));
    caches.forEach((cache, index) => cache.set(`key-${index}`, index));
    const grown = process.memoryUsage().heapUsed - before;
    expect(grown).toBeLessThan(16 * 1024 ** 2);
    expect(caches.map((cache) => cache.size)).toEqual(Array(10).fill(1));
  });
});
