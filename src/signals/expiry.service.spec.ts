import { Logger } from '@nestjs/common';
import { Metrics } from '../metrics/metrics.js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AppError } from '../common/app-error.js';
import type { AppConfig } from '../config/app-config.js';
import { signalEvent } from '../testing/signal-event.js';
import { strictMock } from '../testing/strict-mock.js';
import { ExpiryService, FLOOR_START, nextFloor } from './expiry.service.js';
import type { DueSignal, DueSignals, ExpiryFloor, SignalsRepository, WriteOutcome } from './signals.repository.js';
import type { SignalsService } from './signals.service.js';

const at = (iso: string) => new Date(iso);
const due = (externalId: string, expiresAt: string, version = 1): DueSignal => ({
  providerId: 'p',
  externalId,
  version,
  expiresAt: at(expiresAt),
});
const read = (lastSeq: number, byExpiry: DueSignal[] = [], byChange: DueSignal[] = []): DueSignals => ({ lastSeq, byExpiry, byChange });

const FLOOR: ExpiryFloor = { expiresAt: at('2026-11-21T10:00:00.000Z'), seq: 40 };
const NOW = at('2026-11-21T10:00:05.000Z');

describe('nextFloor (where the next sweep starts)', () => {
  it('moves to the time and counter read when nothing was cut off and every expiry settled', () => {
    const read1 = read(57, [due('a', '2026-11-21T10:00:01Z')], [due('b', '2026-11-21T09:00:00Z')]);
    expect(nextFloor(FLOOR, NOW, read1, 2, true)).toEqual({ expiresAt: NOW, seq: 57 });
  });

  it('stays when an expiry failed: what it did not store must be read again', () => {
    expect(nextFloor(FLOOR, NOW, read(57, [due('a', '2026-11-21T10:00:01Z')]), 2, false)).toBe(FLOOR);
  });

  it('moves to just before the last expires_at read when that part was cut off at the limit (ties with it may be unread)', () => {
    const full = read(57, [due('a', '2026-11-21T10:00:01Z'), due('b', '2026-11-21T10:00:02.500Z')]);
    expect(nextFloor(FLOOR, NOW, full, 2, true)).toEqual({ expiresAt: at('2026-11-21T10:00:02.499Z'), seq: 57 });
  });

  it('stays when the part by seq was cut off: its unread rows may be anywhere below the floor', () => {
    const full = read(57, [], [due('a', '2026-11-21T09:00:00Z'), due('b', '2026-11-21T08:00:00Z')]);
    expect(nextFloor(FLOOR, NOW, full, 2, true)).toBe(FLOOR);
  });

  it('starts before every possible expires_at (issued_at is 1970 or later, and expires_at after it)', () => {
    expect(FLOOR_START.expiresAt.getTime()).toBeLessThan(Date.UTC(1970, 0, 1));
  });
});

const CONFIG: Record<string, number> = { SIGNAL_EXPIRY_INTERVAL_MS: 250, SIGNAL_EXPIRY_BATCH: 2 };
const stored = (result: WriteOutcome['result']): PromiseFulfilledResult<WriteOutcome> => {
  const { signal, minTier } = signalEvent(1);
  return { status: 'fulfilled', value: { result, signal, minTier } };
};

function setup(dueForExpiry: SignalsRepository['dueForExpiry'], expire: SignalsService['expire'] = async () => []) {
  const repository = strictMock<SignalsRepository>({ dueForExpiry });
  const signals = strictMock<SignalsService>({ expire });
  const config = strictMock<AppConfig>({ get: ((key: string) => CONFIG[key]) as AppConfig['get'] });
  return { repository, signals, service: new ExpiryService(repository, signals, config, new Metrics()) };
}

describe('ExpiryService', () => {
  let warn: ReturnType<typeof vi.spyOn>;
  let error: ReturnType<typeof vi.spyOn>;
  beforeEach(() => {
    warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    error = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });
  afterEach(() => {
    vi.restoreAllMocks();
    vi.useRealTimers();
  });

  it('submits an expiry of the version read for each due signal, then starts the next sweep from the new floor', async () => {
    const reads = [read(57, [due('a', '2026-11-21T10:00:01Z', 3)], [due('b', '2026-11-21T09:00:00Z')]), read(60)];
    const { repository, signals, service } = setup(
      async () => reads.shift()!,
      async (requests) => requests.map(() => stored('updated')),
    );
    expect(await service.sweep(NOW)).toBe(false);
    expect(repository.dueForExpiry).toHaveBeenLastCalledWith(NOW, FLOOR_START, 2);
    expect(signals.expire).toHaveBeenCalledWith([
      { providerId: 'p', externalId: 'a', version: 3 },
      { providerId: 'p', externalId: 'b', version: 1 },
    ]);
    expect(service.expiredCount).toBe(2);
    const later = at('2026-11-21T10:00:06Z');
    await service.sweep(later);
    expect(repository.dueForExpiry).toHaveBeenLastCalledWith(later, { expiresAt: NOW, seq: 57 }, 2);
    expect(signals.expire).toHaveBeenCalledTimes(1);
  });

  it('counts only what it stored: an expiry found changed since the read is not counted', async () => {
    const { service } = setup(
      async () => read(57, [due('a', '2026-11-21T10:00:01Z'), due('b', '2026-11-21T10:00:02Z')]),
      async () => [stored('unchanged'), stored('updated')],
    );
    expect(await service.sweep(NOW)).toBe(true); // a full batch: sweep again at once
    expect(service.expiredCount).toBe(1);
  });

  it('survives a database that does not answer: logs once, keeps its floor, and stores the expiry once it answers', async () => {
    const down = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    let answers = false;
    const { repository, signals, service } = setup(
      async () => {
        if (!answers) throw down();
        return read(57, [due('a', '2026-11-21T10:00:01Z')]);
      },
      async () => [
        { status: 'rejected', reason: new AppError('database_unavailable', 'The database is unavailable; the signal was not stored.') },
      ],
    );
    for (let i = 0; i < 5; i++) expect(await service.sweep(NOW)).toBe(false);
    answers = true;
    await service.sweep(NOW); // read, but the write fails
    expect(warn).toHaveBeenCalledTimes(1);
    expect(error).not.toHaveBeenCalled();
    signals.expire.mockImplementation(async () => [stored('updated')]);
    await service.sweep(NOW);
    expect(repository.dueForExpiry.mock.calls.map(([, floor]) => floor)).toEqual(Array(7).fill(FLOOR_START));
    expect(service.expiredCount).toBe(1);
  });

  it('logs any other failure as an error, and keeps sweeping', async () => {
    let calls = 0;
    const { service } = setup(async () => {
      if (++calls === 1) throw new Error('relation "signals" does not exist');
      return read(1);
    });
    expect(await service.sweep(NOW)).toBe(false);
    expect(await service.sweep(NOW)).toBe(false);
    expect(error).toHaveBeenCalledTimes(1);
  });

  it('sweeps every interval from start, and on shutdown waits for the running sweep and starts no other', async () => {
    vi.useFakeTimers();
    let finish!: () => void;
    const { repository, service } = setup(async () => {
      await new Promise<void>((resolve) => (finish = resolve));
      return read(1);
    });
    service.onApplicationBootstrap();
    await vi.advanceTimersByTimeAsync(0);
    expect(repository.dueForExpiry).toHaveBeenCalledTimes(1);
    finish();
    await vi.advanceTimersByTimeAsync(250);
    expect(repository.dueForExpiry).toHaveBeenCalledTimes(2);

    let stopped = false;
    const stopping = service.onModuleDestroy().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    finish();
    await stopping;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(repository.dueForExpiry).toHaveBeenCalledTimes(2);
  });
});
