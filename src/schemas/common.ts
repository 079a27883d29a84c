// Building blocks for input schemas: trimmed text without control characters, bounded lengths.
import { z } from 'zod';
import { hasControlCharacters } from '../lib/text.js';

/** A single-line text field: trimmed, 1..max characters, no control characters. */
export const line = (max: number) =>
  z
    .string()
    .trim()
    .min(1, { error: 'must not be empty' })
    .max(max, { error: `must be at most ${max} characters` })
    .refine((value) => !hasControlCharacters(value), { error: 'must not contain control characters' });

/** Multi-line text: newline and tab allowed. */
export const text = (max: number) =>
  z
    .string()
    .trim()
    .min(1, { error: 'must not be empty' })
    .max(max, { error: `must be at most ${max} characters` })
    .refine((value) => !hasControlCharacters(value, { allowNewlines: true }), {
      error: 'must not contain control characters',
    });

export const email = z
  .string()
  .trim()
  .max(254, { error: 'must be at most 254 characters' })
  .pipe(z.email({ error: 'must be a valid email address' }));

/** A user reference in a path or body: the user's id or their email. */
export const userRef = z.string().trim().min(1).max(254);

export const limit = (fallback: number, max = 200) =>
  z.coerce
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .min(1, { error: 'must be at least 1' })
    .max(max, { error: `must be at most ${max}` })
    .default(fallback);
