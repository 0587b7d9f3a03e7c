import type { Signal } from '../generated/prisma/client.js';
import { eventOf, recordOf, viewOf } from '../signals/signal-fields.js';
import type { SignalEvent } from '../signals/signal.types.js';
import { signalRow } from './signal-row.js';

/** A stored signal as the signals module hands it on (the view, its seq and min tier), for unit tests. */
export function signalEvent(seq: number, overrides: Partial<Signal> = {}): SignalEvent {
  const row = signalRow(seq, overrides);
  return eventOf(viewOf(recordOf(row)), row.minTier);
}
