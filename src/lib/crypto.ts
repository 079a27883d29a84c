// Random tokens and their stored form. Tokens are shown to a client once; only their SHA-256 is kept.
import { createHash, hkdfSync, randomBytes } from 'node:crypto';

export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/** A key for one purpose derived from SECRET_KEY, so one leaked purpose key does not expose the others. */
export function deriveKey(secret: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'switchboard', purpose, 32));
}
