// One-use tickets for browsers, which cannot set an Authorization header on a WebSocket: issued to a
// signed-in user, bound to their session, valid 30 s, good for one connection. Kept in Redis when the
// cluster has it (the socket may land on another instance), in this process otherwise.
import { randomToken } from '../lib/crypto.js';
import type { Principal } from '../services/context.js';
import type { Cluster } from './cluster.js';

export const TICKET_TTL_S = 30;
const LOCAL_MAX = 100_000;

interface TicketHolder {
  userId: string;
  sessionId: string;
}

export class Tickets {
  private readonly local = new Map<string, TicketHolder & { expiresAt: number }>();

  constructor(private readonly cluster: Cluster) {}

  async issue(principal: Principal): Promise<{ ticket: string; expires_in: number }> {
    const ticket = randomToken();
    const holder: TicketHolder = { userId: principal.id, sessionId: principal.sessionId };
    const shared = await this.cluster.saveTicket(ticket, JSON.stringify(holder), TICKET_TTL_S * 1000);
    if (!shared) {
      if (this.local.size >= LOCAL_MAX) this.sweep(Date.now());
      this.local.set(ticket, { ...holder, expiresAt: Date.now() + TICKET_TTL_S * 1000 });
    }
    return { ticket, expires_in: TICKET_TTL_S };
  }

  /** The ticket's holder, once: a second use, an unknown or an expired ticket gives null. */
  async redeem(ticket: string): Promise<TicketHolder | null> {
    const local = this.local.get(ticket);
    if (local) {
      this.local.delete(ticket);
      return local.expiresAt > Date.now() ? { userId: local.userId, sessionId: local.sessionId } : null;
    }
    const shared = await this.cluster.takeTicket(ticket);
    if (!shared) return null;
    try {
      return JSON.parse(shared) as TicketHolder;
    } catch {
      return null;
    }
  }

  private sweep(now: number): void {
    for (const [ticket, holder] of this.local) if (holder.expiresAt <= now) this.local.delete(ticket);
  }
}
