import { createHash } from 'node:crypto';
import { PREMIUM_MIN_TIER } from './entitlement.js';
import { CONTENT_COLUMNS, type SignalContent } from './signal-fields.js';
import type { SyncSignalInput } from './signal.dto.js';

/** A provider's sync of one signal. */
export interface SyncRequest {
  kind: 'sync';
  providerId: string;
  input: SyncSignalInput;
}

/**
 * The expiry sweep's request: store the version it read, `version`, again with status `expired`, on
 * condition that it is still the signal's current version and still `active`. Anything written to the
 * signal since the sweep read it (an amendment, a close, another instance's expiry) makes it a no-op.
 */
export interface ExpiryRequest {
  kind: 'expire';
  providerId: string;
  externalId: string;
  version: number;
}

/** One request to the writer; a group mixes both kinds, in the order they were submitted. */
export type WriteRequest = SyncRequest | ExpiryRequest;

export const externalIdOf = (request: WriteRequest): string => (request.kind === 'sync' ? request.input.external_id : request.externalId);

/** The state a planned step builds on: a stored row or an earlier step of the same batch. */
export interface KnownSignal {
  version: number;
  /** `contentHash` of every version stored so far, the current one included. */
  hashes: ReadonlySet<string>;
  /** The current version's content. */
  content: SignalContent;
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
 * What a request writes, or undefined when it writes nothing.
 *
 * A sync body equal to the current version (a retry) or to any earlier version (a late retry
 * arriving after an amendment) writes nothing; anything else is the body's content. An expiry writes
 * the current content with status `expired`, only while the version it read is current and active.
 * Its hash is never matched by a sync: providers cannot send `expired`.
 */
function contentToWrite(request: WriteRequest, previous: KnownSignal | undefined): { content: SignalContent; hash: string } | undefined {
  if (request.kind === 'expire') {
    if (previous?.version !== request.version || previous.content.status !== 'active') return undefined;
    const content: SignalContent = { ...previous.content, status: 'expired' };
    return { content, hash: contentHash(content) };
  }
  const content = contentOf(request.input);
  const hash = contentHash(content);
  return previous?.hashes.has(hash) ? undefined : { content, hash };
}

/**
 * Decides, in request order, what each request does: nothing (`unchanged`), or a new signal or a new
 * version taking the next seq after `lastSeq`. A key repeated within one group builds on the earlier
 * step, as if sent one after the other.
 */
export function planWrites(requests: readonly WriteRequest[], stored: ReadonlyMap<string, KnownSignal>, lastSeq: bigint): PlannedStep[] {
  const known = new Map(stored);
  let seq = lastSeq;
  return requests.map((request) => {
    const key = signalKey(request.providerId, externalIdOf(request));
    const previous = known.get(key);
    const written = contentToWrite(request, previous);
    if (!written) return { kind: 'unchanged', request };
    const { content, hash } = written;
    seq += 1n;
    const version = previous ? previous.version + 1 : 1;
    known.set(key, { version, hashes: new Set([...(previous?.hashes ?? []), hash]), content });
    return previous ? { kind: 'update', request, content, hash, seq, version } : { kind: 'create', request, content, hash, seq };
  });
}
