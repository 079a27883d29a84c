// The in-process event bus that conversation services publish to. The realtime hub (realtime issue)
// implements the same `EventPublisher` interface to deliver events over WebSockets; until then, and in
// tests, subscribers in this process receive every event with its audience.
import { EventEmitter } from 'node:events';

/** Who should receive an event: a channel's members, some users, or everyone signed in. */
export type Audience =
  | { kind: 'channel'; channelId: string; exceptUserId?: string }
  | { kind: 'users'; userIds: readonly string[] }
  | { kind: 'everyone' };

/** A server → client event as the contract names it (`chat_message`, `reaction_update`, …). */
export interface RealtimeEvent {
  type: string;
  [field: string]: unknown;
}

export interface EventPublisher {
  publish(event: RealtimeEvent, audience: Audience): void;
}

export type EventListener = (event: RealtimeEvent, audience: Audience) => void;

export class InProcessEventBus implements EventPublisher {
  private readonly emitter = new EventEmitter<{ event: [RealtimeEvent, Audience] }>();

  constructor() {
    // Every socket of the hub may subscribe; the default limit of 10 would warn for no reason.
    this.emitter.setMaxListeners(0);
  }

  publish(event: RealtimeEvent, audience: Audience): void {
    this.emitter.emit('event', event, audience);
  }

  /** Receives every published event; returns the function that stops it. */
  subscribe(listener: EventListener): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }
}
