import { describe, expect, it } from 'vitest';
import { PINNED_SYNC_BODY } from '../testing/pinned-signal.js';
import { syncSignalSchema } from './signal.dto.js';
import { contentHash, contentOf, planWrites, signalKey, type ExpiryRequest, type KnownSignal, type SyncRequest } from './sync-plan.js';

const input = (overrides: Record<string, unknown> = {}) =>
  syncSignalSchema.parse({
    external_id: 'a-1',
    symbol: 'btcusdt',
    market: 'crypto',
    side: 'long',
    entry: '100.50',
    take_profits: ['110', '120.0'],
    confidence: 70,
    timeframe: '1h',
    issued_at: '2026-11-21T10:00:00Z',
    ...overrides,
  });
const request = (overrides: Record<string, unknown> = {}, providerId = 'p1'): SyncRequest => ({
  kind: 'sync',
  providerId,
  input: input(overrides),
});
const hashOf = (req: SyncRequest) => contentHash(contentOf(req.input));
const storedAs = (req: SyncRequest, version = 1, earlier: SyncRequest[] = []): Map<string, KnownSignal> =>
  new Map([
    [
      signalKey(req.providerId, req.input.external_id),
      { version, hashes: new Set([...earlier, req].map(hashOf)), content: contentOf(req.input) },
    ],
  ]);
const expiry = (version: number, externalId = 'a-1', providerId = 'p1'): ExpiryRequest => ({
  kind: 'expire',
  providerId,
  externalId,
  version,
});

describe('planWrites (the sync upsert rule)', () => {
  it('creates unknown signals with consecutive seqs after the last one', () => {
    const steps = planWrites([request(), request({ external_id: 'a-2' })], new Map(), 41n);
    expect(steps.map((s) => [s.kind, 'seq' in s ? s.seq : null])).toEqual([
      ['create', 42n],
      ['create', 43n],
    ]);
  });

  it('leaves an identical re-send unchanged and takes no seq, even with prices written differently', () => {
    const original = request();
    const resend = request({ entry: '100.5', take_profits: ['110.00', '120'] });
    const steps = planWrites([resend, request({ external_id: 'a-2' })], storedAs(original), 10n);
    expect(steps[0]!.kind).toBe('unchanged');
    expect(steps[1]).toMatchObject({ kind: 'create', seq: 11n });
  });

  it('stores any change as the next version with a new seq', () => {
    const original = request();
    for (const change of [{ stop_loss: '95' }, { status: 'closed' }, { premium: true }, { note: 'moved' }, { take_profits: ['110'] }]) {
      const [step] = planWrites([request(change)], storedAs(original, 3), 7n);
      expect(step).toMatchObject({ kind: 'update', version: 4, seq: 8n });
    }
  });

  it('treats a late retry of an earlier version as unchanged, so it cannot undo an amendment', () => {
    const v1 = request();
    const v2 = request({ stop_loss: '95' });
    const [step] = planWrites([request()], storedAs(v2, 2, [v1]), 9n);
    expect(step!.kind).toBe('unchanged');
  });

  it('builds on earlier steps of the same batch', () => {
    const steps = planWrites([request(), request(), request({ confidence: 90 }), request()], new Map(), 0n);
    expect(steps.map((s) => s.kind)).toEqual(['create', 'unchanged', 'update', 'unchanged']);
    expect(steps[2]).toMatchObject({ version: 2, seq: 2n });
  });

  it('keys signals by provider and external id', () => {
    const steps = planWrites([request({}, 'p2')], storedAs(request({}, 'p1')), 0n);
    expect(steps[0]!.kind).toBe('create');
  });

  it('maps premium to the pro tier and regular to free', () => {
    expect(contentOf(input({ premium: true })).min_tier).toBe('pro');
    expect(contentOf(input()).min_tier).toBe('free');
  });
});

describe('planWrites (expiries: conditional on the version the sweep read)', () => {
  it('stores the current content again with status expired, as the next version with the next seq', () => {
    const original = request({ expires_at: '2026-11-21T11:00:00Z', premium: true });
    const [step] = planWrites([expiry(2)], storedAs(original, 2), 30n);
    expect(step).toMatchObject({ kind: 'update', version: 3, seq: 31n, content: { ...contentOf(original.input), status: 'expired' } });
    expect(step!.kind === 'update' && step!.hash).toBe(contentHash({ ...contentOf(original.input), status: 'expired' }));
  });

  it('writes nothing when the signal has another version than the one read (amended, or expired by another instance)', () => {
    for (const read of [1, 3])
      expect(planWrites([expiry(read)], storedAs(request(), 2), 5n)).toEqual([{ kind: 'unchanged', request: expiry(read) }]);
  });

  it('writes nothing when the version read is no longer active', () => {
    for (const status of ['closed', 'cancelled']) {
      expect(planWrites([expiry(1)], storedAs(request({ status })), 5n)[0]!.kind).toBe('unchanged');
    }
  });

  it('writes nothing for a signal that is not stored', () => {
    expect(planWrites([expiry(1)], new Map(), 5n)[0]!.kind).toBe('unchanged');
  });

  it('expires once when two expiries of one version meet in a group, and yields to an amendment queued before it', () => {
    const original = request();
    const twice = planWrites([expiry(1), expiry(1)], storedAs(original), 0n);
    expect(twice.map((s) => s.kind)).toEqual(['update', 'unchanged']);
    const amendedFirst = planWrites([request({ expires_at: '2026-11-22T00:00:00Z' }), expiry(1)], storedAs(original), 0n);
    expect(amendedFirst.map((s) => s.kind)).toEqual(['update', 'unchanged']);
  });

  it('lets a provider amend an expired signal, while a retry of an earlier body stays unchanged', () => {
    const original = request();
    const [expired] = planWrites([expiry(1)], storedAs(original), 0n);
    if (expired!.kind !== 'update') throw new Error('expected an expiry');
    const afterExpiry: Map<string, KnownSignal> = new Map([
      [signalKey('p1', 'a-1'), { version: 2, hashes: new Set([hashOf(original), expired.hash]), content: expired.content }],
    ]);
    const steps = planWrites([request(), request({ expires_at: '2026-11-22T00:00:00Z' })], afterExpiry, 1n);
    expect(steps.map((s) => s.kind)).toEqual(['unchanged', 'update']);
    expect(steps[1]).toMatchObject({ version: 3, content: { status: 'active', expires_at: '2026-11-22T00:00:00.000Z' } });
  });
});

describe('contentHash (pinned)', () => {
  // Every stored version carries its hash, and a re-send is recognised by it: a hash that changed
  // for the same content would make every re-sent signal look amended (a new version and seq).
  it('keeps the hash of fixed content, defaults included', () => {
    const minimal = input({ external_id: 'pin-2', symbol: 'BTCUSDT', entry: '100', take_profits: [], confidence: 0, timeframe: '1m' });
    // sha256 of ["BTCUSDT","crypto","long","100",null,[],0,"1m",null,"free","active","2026-11-21T10:00:00.000Z",null]
    expect(contentHash(contentOf(minimal))).toBe('063dc195bfa79f396ef7d58dd702eae74c63eeb3f365191b5d6ea910bdd798b3');
  });

  it('keeps the hash of fixed content with every field set', () => {
    const full = syncSignalSchema.parse(PINNED_SYNC_BODY);
    // sha256 of ["ETH-USD","crypto","short","3000.1","3100",["2900","2800.5"],85,"4h","Grüße \"quoted\" ✓","pro","closed",
    //            "2026-11-21T09:00:00.123Z","2026-11-22T00:00:00.000Z"]
    expect(contentHash(contentOf(full))).toBe('e10aa89a1303659c6ca76435eb16a01c0233ff9470dd19571228a80799a9ef90');
  });
});
