// Signed download links: `/api/v2/files/<id>?exp=<unix seconds>&sig=<HMAC>`, so `<img src>` works
// without an Authorization header. The expiry is rounded up to the hour, so the same file has the
// same URL for an hour and browsers can cache it. The key is derived from SECRET_KEY for this purpose
// only. A link cannot be revoked before it expires (deleting the file ends it): keep FILE_LINK_TTL short.
import { createHmac, timingSafeEqual } from 'node:crypto';

const ROUND_S = 3600;

export type LinkCheck = 'valid' | 'expired' | 'invalid';

export class FileLinks {
  constructor(
    private readonly key: Buffer,
    private readonly ttlS: number,
    private readonly nowMs: () => number = Date.now,
  ) {}

  urlFor(fileId: string): string {
    const exp = Math.ceil((this.nowMs() / 1000 + this.ttlS) / ROUND_S) * ROUND_S;
    return `/api/v2/files/${fileId}?exp=${exp}&sig=${this.sign(fileId, exp)}`;
  }

  check(fileId: string, exp: string | undefined, sig: string | undefined): LinkCheck {
    if (!exp || !sig || !/^\d{1,12}$/.test(exp)) return 'invalid';
    const expected = Buffer.from(this.sign(fileId, Number(exp)));
    const given = Buffer.from(sig);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'invalid';
    return Number(exp) * 1000 > this.nowMs() ? 'valid' : 'expired';
  }

  private sign(fileId: string, exp: number): string {
    return createHmac('sha256', this.key).update(`${fileId}.${exp}`).digest('base64url');
  }
}
