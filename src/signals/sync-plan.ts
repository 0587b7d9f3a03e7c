import { createHash } from 'node:crypto';
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
  version: number;
  /** `contentHash` of every version stored so far, the current one included. */
  hashes: ReadonlySet<string>;
}

export type PlannedStep =
  | { kind: 'unchanged'; request: WriteRequest }
  | { kind: 'create'; request: WriteRequest; content: SignalContent; hash: string; seq: bigint }
  | { kind: 'update'; request: WriteRequest; content: SignalContent; hash: string; seq: bigint; version: number };

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

/** A stable fingerprint of synced content: equal prices written differently hash the same. */
export function contentHash(content: SignalContent): string {
  const canonical = JSON.stringify([
    content.symbol,
    content.market,
    content.side,
    content.entry,
    content.stopLoss,
    content.takeProfits,
    content.confidence,
    content.timeframe,
    content.note,
    content.minTier,
    content.status,
    content.issuedAt.toISOString(),
    content.expiresAt?.toISOString() ?? null,
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}

export const signalKey = (providerId: string, externalId: string) => `${providerId}\u0000${externalId}`;

/**
 * Decides, in request order, what each sync does. A body equal to the current version (a retry)
 * or to any earlier version (a late retry arriving after an amendment) changes nothing and takes
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
    const hash = contentHash(content);
    if (previous?.hashes.has(hash)) return { kind: 'unchanged', request };
    seq += 1n;
    const version = previous ? previous.version + 1 : 1;
    known.set(key, { version, hashes: new Set([...(previous?.hashes ?? []), hash]) });
    return previous
      ? { kind: 'update', request, content, hash, seq, version }
      : { kind: 'create', request, content, hash, seq };
  });
}
