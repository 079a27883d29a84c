// The canonical JSON behind the audit chain's hashes: one text per value, whatever the key order, and
// nothing JSON cannot carry faithfully.
import { describe, expect, it } from 'vitest';
import { CanonicalJsonError, canonicalJson } from '../../src/lib/canonical-json.js';

describe('canonicalJson', () => {
  it('sorts keys at every depth and writes no whitespace', () => {
    const a = { b: 1, a: { z: [3, { y: true, x: null }], c: 'text' } };
    const b = { a: { c: 'text', z: [3, { x: null, y: true }] }, b: 1 };
    expect(canonicalJson(a)).toBe('{"a":{"c":"text","z":[3,{"x":null,"y":true}]},"b":1}');
    expect(canonicalJson(b)).toBe(canonicalJson(a));
  });

  it('orders keys by UTF-16 code units, not by locale', () => {
    expect(canonicalJson({ b: 1, B: 2, a: 3, é: 4, _: 5, '10': 6, '9': 7 })).toBe(
      '{"10":6,"9":7,"B":2,"_":5,"a":3,"b":1,"é":4}',
    );
  });

  it('writes dates as RFC 3339 UTC with milliseconds', () => {
    expect(canonicalJson({ at: new Date(Date.UTC(2026, 10, 27, 9, 5, 7, 30)) })).toBe(
      '{"at":"2026-11-27T09:05:07.030Z"}',
    );
  });

  it('omits undefined fields, keeps null, and writes undefined in arrays as null', () => {
    expect(canonicalJson({ a: undefined, b: null, c: [undefined, 1] })).toBe('{"b":null,"c":[null,1]}');
  });

  it('escapes strings as JSON does (quotes, control characters, non-ASCII kept as is)', () => {
    expect(canonicalJson({ s: 'a "quote"\n\u0001 ünïcode 👍' })).toBe(
      '{"s":"a \\"quote\\"\\n\\u0001 ünïcode 👍"}',
    );
  });

  it('writes scalars as JSON does', () => {
    expect(canonicalJson(null)).toBe('null');
    expect(canonicalJson(true)).toBe('true');
    expect(canonicalJson(-0.5)).toBe('-0.5');
    expect(canonicalJson(1e21)).toBe('1e+21');
    expect(canonicalJson('x')).toBe('"x"');
    expect(canonicalJson([])).toBe('[]');
    expect(canonicalJson({})).toBe('{}');
  });

  it('accepts objects without a prototype', () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { b: 2, a: 1 });
    expect(canonicalJson(bare)).toBe('{"a":1,"b":2}');
  });

  it('refuses what has no faithful JSON form, naming where it is', () => {
    for (const value of [NaN, Infinity, 10n, () => 1, Symbol('s')]) {
      expect(() => canonicalJson({ nested: [value] })).toThrow(CanonicalJsonError);
    }
    expect(() => canonicalJson({ nested: [NaN] })).toThrow(/\$\.nested\[0\]/);
    expect(() => canonicalJson({ when: new Date('nope') })).toThrow(/invalid date/);
    expect(() => canonicalJson({ map: new Map() })).toThrow(/plain objects/);
  });
});
