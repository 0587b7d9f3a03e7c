import { createHash } from 'node:crypto';
import { PREMIUM_MIN_TIER } from './entitlement.js';
import { CONTENT_COLUMNS, type SignalContent } from './signal-fields.js';
import type { SyncSignalInput } from './signal.dto.js';

export interface WriteRequest {
  providerId: string;
  input: SyncSignalInput;
}

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

/** A validated sync body as the content it writes (prices are canonical decimal strings already). */
export function contentOf({ external_id: _key, premium, issued_at, expires_at, ...same }: SyncSignalInput): SignalContent {
  return {
    ...same,
    min_tier: premium ? PREMIUM_MIN_TIER : 'free',
    issued_at: issued_at.toISOString(),
    expires_at: expires_at?.toISOString() ?? null,
  };
}

/** A stable fingerprint of synced content: equal prices written differently hash the same. */
export function contentHash(content: SignalContent): string {
  const canonical = JSON.stringify(CONTENT_COLUMNS.map((column) => content[column]));
  return createHash('sha256').update(canonical).digest('hex');
}

export const signalKey = (providerId: string, externalId: string) => `${providerId}\u0000${externalId}`;

/**
 * Decides, in request order, what each sync does. A body equal to the current version (a retry)
 * or to any earlier version (a late retry arriving after an amendment) changes nothing and takes
 * no seq; anything else is a new signal or a new version, taking the next seq after `lastSeq`.
 * A key repeated within one batch builds on the earlier step, as if sent one after the other.
 */
export function planWrites(requests: readonly WriteRequest[], stored: ReadonlyMap<string, KnownSignal>, lastSeq: bigint): PlannedStep[] {
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
    return previous ? { kind: 'update', request, content, hash, seq, version } : { kind: 'create', request, content, hash, seq };
  });
}
