import type { Signal } from '../generated/prisma/client.js';
import { PREMIUM_MIN_TIER } from './entitlement.js';
import type { SyncSignalInput } from './signal.dto.js';

export interface WriteRequest {
  providerId: string;
  input: SyncSignalInput;
}

/** What a sync writes into a signal row, normalized (prices as canonical decimal strings). */
export type SignalContent = Pick<
  Signal,
  'symbol' | 'market' | 'side' | 'confidence' | 'timeframe' | 'note' | 'minTier' | 'status' | 'issuedAt' | 'expiresAt'
> & { entry: string; stopLoss: string | null; takeProfits: string[] };

/** The state a planned step builds on: a stored row or an earlier step of the same batch. */
export interface KnownSignal {
  id?: string;
  version: number;
  content: SignalContent;
}

export type PlannedStep =
  | { kind: 'unchanged'; request: WriteRequest; previous: KnownSignal }
  | { kind: 'create'; request: WriteRequest; content: SignalContent; seq: bigint }
  | { kind: 'update'; request: WriteRequest; content: SignalContent; seq: bigint; previous: KnownSignal; version: number };

export function contentOf(input: SyncSignalInput): SignalContent {
  return {
    symbol: input.symbol,
    market: input.market,
    side: input.side,
    entry: input.entry,
    stopLoss: input.stop_loss,
    takeProfits: input.take_profits,
    confidence: input.confidence,
    timeframe: input.timeframe,
    note: input.note,
    minTier: input.premium ? PREMIUM_MIN_TIER : 'free',
    status: input.status,
    issuedAt: input.issued_at,
    expiresAt: input.expires_at,
  };
}

export function contentOfRow(row: Signal): SignalContent {
  return {
    symbol: row.symbol,
    market: row.market,
    side: row.side,
    entry: row.entry.toFixed(),
    stopLoss: row.stopLoss?.toFixed() ?? null,
    takeProfits: row.takeProfits.map((price) => price.toFixed()),
    confidence: row.confidence,
    timeframe: row.timeframe,
    note: row.note,
    minTier: row.minTier,
    status: row.status,
    issuedAt: row.issuedAt,
    expiresAt: row.expiresAt,
  };
}

export function sameContent(a: SignalContent, b: SignalContent): boolean {
  return (
    a.symbol === b.symbol &&
    a.market === b.market &&
    a.side === b.side &&
    a.entry === b.entry &&
    a.stopLoss === b.stopLoss &&
    a.takeProfits.length === b.takeProfits.length &&
    a.takeProfits.every((price, i) => price === b.takeProfits[i]) &&
    a.confidence === b.confidence &&
    a.timeframe === b.timeframe &&
    a.note === b.note &&
    a.minTier === b.minTier &&
    a.status === b.status &&
    a.issuedAt.getTime() === b.issuedAt.getTime() &&
    (a.expiresAt?.getTime() ?? null) === (b.expiresAt?.getTime() ?? null)
  );
}

export const signalKey = (providerId: string, externalId: string) => `${providerId}\u0000${externalId}`;

/**
 * Decides, in request order, what each sync does: an identical re-send changes nothing and takes
 * no seq; anything else is a new signal or a new version, taking the next seq after `lastSeq`.
 * A key repeated within one batch builds on the earlier step, as if sent one after the other.
 */
export function planWrites(
  requests: readonly WriteRequest[],
  stored: ReadonlyMap<string, KnownSignal>,
  lastSeq: bigint,
): PlannedStep[] {
  const known = new Map(stored);
  let seq = lastSeq;
  return requests.map((request) => {
    const key = signalKey(request.providerId, request.input.external_id);
    const previous = known.get(key);
    const content = contentOf(request.input);
    if (previous && sameContent(previous.content, content)) return { kind: 'unchanged', request, previous };
    seq += 1n;
    const step: PlannedStep = previous
      ? { kind: 'update', request, content, seq, previous, version: previous.version + 1 }
      : { kind: 'create', request, content, seq };
    known.set(key, { id: previous?.id, version: previous ? previous.version + 1 : 1, content });
    return step;
  });
}
