// Opaque ids: ObjectId hex strings, so ids sort by creation time (useful for cursors) yet reveal nothing.
import { ObjectId } from 'mongodb';

export function newId(): string {
  return new ObjectId().toHexString();
}

export function isId(value: string): boolean {
  return /^[0-9a-f]{24}$/.test(value);
}
