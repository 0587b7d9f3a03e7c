import { describe, expect, it, vi } from 'vitest';
import { Metrics } from '../metrics/metrics.js';
import { InProcessBus } from '../bus/in-process.bus.js';
import { AppError } from '../common/app-error.js';
import { signalEvent } from '../testing/signal-event.js';
import { strictMock } from '../testing/strict-mock.js';
import { syncSignalSchema } from './signal.dto.js';
import type { SignalEvent } from './signal.types.js';
import type { SignalsRepository, WriteOutcome } from './signals.repository.js';
import { SignalsService } from './signals.service.js';
import { externalIdOf, type WriteRequest } from './sync-plan.js';

const input = (externalId: string) =>
  syncSignalSchema.parse({
    external_id: externalId,
    symbol: 'BTCUSDT',
    market: 'crypto',
    side: 'long',
    entry: '100',
    confidence: 50,
    timeframe: '1h',
    issued_at: '2026-11-21T10:00:00Z',
  });

let seq = 0;
const stored = (request: WriteRequest): Pick<WriteOutcome, 'signal' | 'minTier'> => ({
  signal: signalEvent(++seq, {
    id: `id-${externalIdOf(request)}`,
    providerId: request.providerId,
    externalId: externalIdOf(request),
  }).signal,
  minTier: 'free',
});

const created = (requests: readonly WriteRequest[]): WriteOutcome[] => requests.map((r) => ({ result: 'created', ...stored(r) }));

/** A repository double whose `writeGroup` decides each group's outcome; the tests inspect its calls. */
function setup(writeGroup: (requests: readonly WriteRequest[]) => Promise<WriteOutcome[]>) {
  const repository = strictMock<SignalsRepository>({ writeGroup });
  const writes = repository.writeGroup;
  const bus = new InProcessBus();
  const published: SignalEvent[] = [];
  bus.onSignal((event) => published.push(event));
  const groups = () => writes.mock.calls.map(([requests]) => requests.map(externalIdOf));
  return { writes, groups, published, service: new SignalsService(repository, bus, new Metrics()) };
}

describe('SignalsService (group commit)', () => {
  it('gathers the syncs that arrive during a transaction into the next one', async () => {
    let release!: () => void;
    const first = new Promise<void>((resolve) => (release = resolve));
    const { writes, groups, service } = setup(async (requests) => {
      if (writes.mock.calls.length === 1) await first;
      return created(requests);
    });
    const a = service.sync('p', input('a'));
    await vi.waitFor(() => expect(writes).toHaveBeenCalledTimes(1));
    const b = service.syncEach('p', [input('b'), input('c')]);
    const d = service.sync('q', input('d'));
    release();
    await Promise.all([a, b, d]);
    expect(groups()).toEqual([['a'], ['b', 'c', 'd']]);
  });

  it('answers first, then publishes every stored signal in seq order, skipping unchanged ones', async () => {
    const { service, published } = setup(async (requests) =>
      requests.map((r, i) => ({ result: i === 1 ? ('unchanged' as const) : ('created' as const), ...stored(r) })),
    );
    const results = await service.syncEach('p', [input('x'), input('y'), input('z')]);
    expect(results.map((r) => r.status === 'fulfilled' && r.value.result)).toEqual(['created', 'unchanged', 'created']);
    expect(published).toEqual([]);
    await vi.waitFor(() => expect(published.map((e) => e.signal.external_id)).toEqual(['x', 'z']));
    expect(published[0]!.seq).toBeLessThan(published[1]!.seq);
  });

  it('answers 503 and publishes nothing when the database is unavailable', async () => {
    const { service, published } = setup(async () => {
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    });
    const error = await service.sync('p', input('a')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('database_unavailable');
    await new Promise((resolve) => setImmediate(resolve));
    expect(published).toEqual([]);
  });

  it('retries a failed group item by item, so one bad signal fails alone', async () => {
    const { groups, service, published } = setup(async (requests) => {
      if (requests.some((r) => externalIdOf(r) === 'bad')) throw new Error('value too long for type');
      return created(requests);
    });
    const results = await service.syncEach('p', [input('ok-1'), input('bad'), input('ok-2')]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'internal_error' });
    await vi.waitFor(() => expect(published.map((e) => e.signal.external_id)).toEqual(['ok-1', 'ok-2']));
    expect(groups()).toEqual([['ok-1', 'bad', 'ok-2'], ['ok-1'], ['bad'], ['ok-2']]);
  });

  it('writes expiries in the same queue and groups as syncs, publishing the stored ones like any update', async () => {
    let release!: () => void;
    const first = new Promise<void>((resolve) => (release = resolve));
    const { writes, groups, service, published } = setup(async (requests) => {
      if (writes.mock.calls.length === 1) await first;
      return requests.map((r) => ({ result: externalIdOf(r) === 'stale' ? ('unchanged' as const) : ('updated' as const), ...stored(r) }));
    });
    const a = service.sync('p', input('a'));
    await vi.waitFor(() => expect(writes).toHaveBeenCalledTimes(1));
    const expiries = service.expire([
      { providerId: 'p', externalId: 'due', version: 1 },
      { providerId: 'p', externalId: 'stale', version: 4 },
    ]);
    const b = service.sync('p', input('b'));
    release();
    const [, settled] = await Promise.all([a, expiries, b]);
    expect(groups()).toEqual([['a'], ['due', 'stale', 'b']]);
    expect(writes.mock.calls[1]![0][0]).toEqual({ kind: 'expire', providerId: 'p', externalId: 'due', version: 1 });
    expect(settled.map((r) => r.status === 'fulfilled' && r.value.result)).toEqual(['updated', 'unchanged']);
    await vi.waitFor(() => expect(published.map((e) => e.signal.external_id)).toEqual(['a', 'due', 'b']));
  });

  it('keeps writing after a call with nothing to write (a batch whose every item was invalid)', async () => {
    const { service } = setup(async (requests) => created(requests));
    await expect(service.syncEach('p', [])).resolves.toEqual([]);
    await expect(service.expire([])).resolves.toEqual([]);
    await expect(service.sync('p', input('after'))).resolves.toMatchObject({ result: 'created' });
  });

  it('keeps accepting syncs after the loop went idle', async () => {
    const { service } = setup(async (requests) => created(requests));
    await service.sync('p', input('first'));
    await expect(service.sync('p', input('second'))).resolves.toMatchObject({ result: 'created' });
  });
});
