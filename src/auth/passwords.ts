// Password hashing with argon2id (@node-rs/argon2: a native, prebuilt package that hashes on libuv's
// thread pool, so a login never blocks the event loop). Parameters follow OWASP's recommendation:
// m = 19 MiB, t = 2, p = 1.
import { hash, verify } from '@node-rs/argon2';
import { validationError } from '../errors.js';
import { isCommonPassword } from './common-passwords.js';

// algorithm 2 is Argon2id (the package exports it as a const enum, which isolated modules cannot read).
export const ARGON2_PARAMS = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;
export const MAX_PASSWORD_LENGTH = 256;

export function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON2_PARAMS);
}

export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  try {
    return await verify(stored, password);
  } catch {
    return false; // a malformed stored hash never authenticates
  }
}

/** A real hash of a random value: verifying against it costs what a real check costs (no user enumeration). */
let decoyHash: Promise<string> | undefined;
export function decoyPasswordHash(): Promise<string> {
  decoyHash ??= hashPassword(`decoy-${Math.random()}-${Date.now()}`);
  return decoyHash;
}

/** Refuses weak passwords with VALIDATION_FAILED naming `field`. */
export function assertStrongPassword(
  password: string,
  minLength: number,
  field = 'password',
  context: string[] = [],
): void {
  const problem =
    password.length < minLength
      ? `must be at least ${minLength} characters`
      : password.length > MAX_PASSWORD_LENGTH
        ? `must be at most ${MAX_PASSWORD_LENGTH} characters`
        : isCommonPassword(password)
          ? 'is one of the most common passwords; choose another'
          : context.some((word) => word.length >= 4 && password.toLowerCase().includes(word.toLowerCase()))
            ? 'must not contain your name or email'
            : undefined;
  if (problem) throw validationError(`Password ${problem}`, [{ path: field, message: problem }]);
}
