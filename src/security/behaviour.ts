// The stateful rules: what is only suspicious when it repeats (failed logins, bad tokens, 404 bursts,
// DM spam, socket churn, malformed frames, a request rate far above a user's own). Each method takes one
// occurrence and returns the rules it fires. Counts are kept in this process, bounded (LRU).
import type { FiredRule } from './rules.js';
import { DistinctCounter, RateBaseline, RecentCounter } from './counters.js';

const MINUTE = 60_000;

export class BehaviourRules {
  private readonly accountFailures: RecentCounter;
  private readonly addressFailures: RecentCounter;
  private readonly accountsPerAddress: DistinctCounter;
  private readonly badTokens = new RecentCounter(5 * MINUTE, 100, 50_000);
  private readonly lookupMisses = new RecentCounter(MINUTE, 200, 50_000);
  private readonly routeMisses = new RecentCounter(MINUTE, 200, 50_000);
  private readonly dmRecipients = new DistinctCounter(5 * MINUTE, 100, 50_000);
  private readonly socketOpens = new RecentCounter(MINUTE, 200, 50_000);
  private readonly badFrames = new RecentCounter(MINUTE, 200, 50_000);
  private readonly requestRates = new RateBaseline(10, 100, 50_000);

  constructor(loginWindowMs: number) {
    this.accountFailures = new RecentCounter(loginWindowMs, 100, 50_000);
    this.addressFailures = new RecentCounter(loginWindowMs, 200, 50_000);
    this.accountsPerAddress = new DistinctCounter(loginWindowMs, 100, 50_000);
  }

  /** A failed login from an address on an account: all three rules score the address (the attacker). */
  loginFailed(address: string, account: string, now: number): FiredRule[] {
    const fired: FiredRule[] = [];
    if (this.accountFailures.hit(account, now) > 5) fired.push({ id: 'brute_force.account' });
    if (this.addressFailures.hit(address, now) > 10) fired.push({ id: 'brute_force.ip' });
    const accounts = this.accountsPerAddress.add(address, account, now);
    if (accounts.distinct >= 5 && accounts.isNew) fired.push({ id: 'brute_force.credential_stuffing' });
    return fired;
  }

  badToken(principal: string, now: number): FiredRule[] {
    return this.badTokens.hit(principal, now) > 3 ? [{ id: 'brute_force.bad_token' }] : [];
  }

  /** A 404 from a lookup of a user, channel, message or file. */
  lookupMissed(principal: string, now: number): FiredRule[] {
    return this.lookupMisses.hit(principal, now) > 15 ? [{ id: 'enumeration.not_found' }] : [];
  }

  /** A request for a route that does not exist. */
  routeMissed(principal: string, now: number): FiredRule[] {
    return this.routeMisses.hit(principal, now) > 30 ? [{ id: 'reconnaissance.not_found_burst' }] : [];
  }

  /** A direct message from one user to another. */
  directMessage(senderId: string, recipientId: string, now: number): FiredRule[] {
    const { distinct, isNew } = this.dmRecipients.add(senderId, recipientId, now);
    return distinct >= 10 && isNew ? [{ id: 'flood.dm_spam' }] : [];
  }

  socketOpened(principal: string, now: number): FiredRule[] {
    return this.socketOpens.hit(principal, now) > 20 ? [{ id: 'flood.ws_churn' }] : [];
  }

  badFrame(principal: string, now: number): FiredRule[] {
    return this.badFrames.hit(principal, now) > 5 ? [{ id: 'protocol.malformed_frame' }] : [];
  }

  /** Every authenticated request: fires once per 10 s slot that is far above the user's own baseline. */
  request(userId: string, now: number): FiredRule[] {
    return this.requestRates.hit(userId, now) ? [{ id: 'anomaly.request_rate' }] : [];
  }
}
