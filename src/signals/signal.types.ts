import type { Tier } from '../generated/prisma/enums.js';
import type { SignalView } from './signal-fields.js';

/** A signal on the wire (HTTP and WebSocket): snake_case, prices as decimal strings; see signal-fields.ts. */
export type { SignalView };

/** What the bus carries: a stored signal version, in `seq` order. */
export interface SignalEvent {
  type: 'signal' | 'signal_update';
  seq: number;
  /** The lowest tier allowed to see it. */
  minTier: Tier;
  signal: SignalView;
  /**
   * When the version was committed (epoch ms, the writing instance's clock): the start of its
   * fan-out and delivery latency. Absent on versions read back from the database (a gap refill).
   */
  committedAt?: number;
}

export type SyncResult = 'created' | 'updated' | 'unchanged';

export interface SyncOutcome {
  result: SyncResult;
  signal: SignalView;
}
