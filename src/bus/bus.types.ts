import type { Tier } from '../generated/prisma/enums.js';
import type { SignalEvent } from '../signals/signal.types.js';

export interface TierChange {
  userId: string;
  /** The committed tier; `null` when the user was deleted. */
  tier: Tier | null;
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
  abstract publishTierChange(change: TierChange): Promise<void>;
  abstract onTierChange(handler: (change: TierChange) => void): Unsubscribe;
}
