import type { Tier } from '../generated/prisma/enums.js';
import type { SignalEvent } from '../signals/signal.types.js';

/** A committed change to a user that every instance must apply to its caches. */
export interface UserChange {
  userId: string;
  /** The new tier; `null` when the user is gone; absent when the tier did not change. */
  tier?: Tier | null;
  /** The user's role or API keys changed: cached credentials must be dropped. */
  credentialsChanged?: boolean;
}

export type Unsubscribe = () => void;

/**
 * Fan-out between instances. The instance that stores a signal publishes it once; every instance
 * (itself included) receives it through `onSignal` and delivers it to its own sockets.
 * Handlers run in publish order.
 */
export abstract class MessageBus {
  abstract publishSignal(event: SignalEvent): Promise<void>;
  abstract onSignal(handler: (event: SignalEvent) => void): Unsubscribe;
  /** Tier changes, role changes and key revocations, so that every instance applies them at once. */
  abstract publishUserChange(change: UserChange): Promise<void>;
  abstract onUserChange(handler: (change: UserChange) => void): Unsubscribe;
}
