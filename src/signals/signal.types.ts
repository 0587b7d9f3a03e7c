import type { SignalSide, SignalStatus, Tier } from '../generated/prisma/enums.js';

/** A signal on the wire (HTTP and WebSocket): snake_case, prices as decimal strings. */
export interface SignalView {
  id: string;
  seq: number;
  provider: string;
  external_id: string;
  symbol: string;
  market: string;
  side: SignalSide;
  entry: string;
  stop_loss: string | null;
  take_profits: string[];
  confidence: number;
  timeframe: string;
  note: string | null;
  premium: boolean;
  status: SignalStatus;
  version: number;
  issued_at: string;
  received_at: string;
  expires_at: string | null;
}

/** What the bus carries: a stored signal version, in `seq` order. */
export interface SignalEvent {
  type: 'signal' | 'signal_update';
  seq: number;
  /** The lowest tier allowed to see it. */
  minTier: Tier;
  signal: SignalView;
}

export type SyncResult = 'created' | 'updated' | 'unchanged';

export interface SyncOutcome {
  result: SyncResult;
  signal: SignalView;
}
