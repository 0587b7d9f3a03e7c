import { describe, expect, it, vi } from 'vitest';
import type { WebSocket } from 'ws';
import { TierCache } from '../auth/tier-cache.service.js';
import type { UsersRepository } from '../auth/users.repository.js';
import { InProcessClusterState } from '../bus/in-process-cluster.js';
import { InProcessBus } from '../bus/in-process.bus.js';
import { TokenBucket } from '../common/rate-limiter.js';
import type { AppConfig } from '../config/app-config.js';
import type { SignalEvent } from '../signals/signal.types.js';
import { toSignalView } from '../signals/signals.repository.js';
import type { SignalsService } from '../signals/signals.service.js';
import { signalRow } from '../testing/signal-row.js';
import { strictMock } from '../testing/strict-mock.js';
import { ConnectionRegistry } from './connection-registry.js';
import { Connection } from './connection.js';
import { FanoutService } from './fanout.service.js';
import { ReplayService } from './replay.service.js';

const row = (seq: number) => signalRow(seq);

describe('ReplayService seam', () => {
  it('does not duplicate signals the replay read from the database ahead of the fan-out', async () => {
    const stored = [1, 2, 3].map(row);
    const config = strictMock<AppConfig>({
      get: ((key: string) =>
        ({ TIER_CACHE_MAX: 100, TIER_CACHE_TTL_MS: 60_000, WS_MAX_BUFFERED_BYTES: 1 << 20, WS_REPLAY_MAX: 100, WS_REPLAY_PAGE_SIZE: 2, BUS_CATCHUP_INTERVAL_MS: 60_000 })[
          key
        ]) as AppConfig['get'],
    });
    const bus = new InProcessBus();
    const tiers = new TierCache(strictMock<UsersRepository>({ findTiers: async () => new Map([['u', 'pro' as const]]) }), bus, config);
    const signals = strictMock<SignalsService>({
      latestStoredSeq: async () => 1, // the fan-out has delivered 1; 2 and 3 are committed but still on their way
      count: async () => stored.length,
      list: async (_tier, query: { afterSeq: number; limit: number }) =>
        stored.filter((r) => Number(r.seq) > query.afterSeq).slice(0, query.limit),
    });
    const registry = new ConnectionRegistry(new InProcessClusterState('t'));
    const fanout = new FanoutService(bus, registry, tiers, signals, config);
    await fanout.onModuleInit();
    const replay = new ReplayService(signals, tiers, fanout, config);

    const sent: number[] = [];
    const socket = { OPEN: 1, readyState: 1, bufferedAmount: 0, send: (b: Buffer | string) => sent.push(JSON.parse(b.toString()).seq ?? -1) };
    const connection = new Connection(socket as unknown as WebSocket, { userId: 'u', role: 'subscriber' }, TokenBucket.perSecond(1, 1));
    registry.add(connection);

    await replay.resume(connection, 0);
    for (const seq of [2, 3]) await bus.publishSignal({ type: 'signal', seq, minTier: 'free', signal: toSignalView(row(seq)) } as SignalEvent);
    await vi.waitFor(() => expect(fanout.deliveredSeq).toBe(3));
    await bus.publishSignal({ type: 'signal', seq: 4, minTier: 'free', signal: toSignalView(row(4)) } as SignalEvent);
    await vi.waitFor(() => expect(fanout.deliveredSeq).toBe(4));

    expect(sent.filter((seq) => seq > 0)).toEqual([1, 2, 3, 4]);
  });

  it('does not lose an event to a socket that registers and resumes right after the fan-out walked its sockets', async () => {
    const stored = [row(1)];
    const config = strictMock<AppConfig>({
      get: ((key: string) =>
        ({ TIER_CACHE_MAX: 100, TIER_CACHE_TTL_MS: 60_000, WS_MAX_BUFFERED_BYTES: 1 << 20, WS_REPLAY_MAX: 100, WS_REPLAY_PAGE_SIZE: 10, BUS_CATCHUP_INTERVAL_MS: 60_000 })[
          key
        ]) as AppConfig['get'],
    });
    const bus = new InProcessBus();
    const tiers = new TierCache(strictMock<UsersRepository>({ findTiers: async () => new Map([['u', 'pro' as const]]) }), bus, config);
    const signals = strictMock<SignalsService>({
      latestStoredSeq: async () => 0,
      count: async () => 0,
      list: async (_tier, query: { afterSeq: number; throughSeq?: number; limit: number }) =>
        stored.filter((r) => Number(r.seq) > query.afterSeq && Number(r.seq) <= (query.throughSeq ?? Infinity)).slice(0, query.limit),
    });
    const registry = new ConnectionRegistry(new InProcessClusterState('t'));
    const fanout = new FanoutService(bus, registry, tiers, signals, config);
    await fanout.onModuleInit();
    const replay = new ReplayService(signals, tiers, fanout, config);
    await tiers.get('u');

    const sent: number[] = [];
    const socket = { OPEN: 1, readyState: 1, bufferedAmount: 0, send: (b: Buffer | string) => sent.push(JSON.parse(b.toString()).seq ?? -1) };
    const connection = new Connection(socket as unknown as WebSocket, { userId: 'u', role: 'subscriber' }, TokenBucket.perSecond(100, 100));
    connection.phase = 'replaying';
    void bus.publishSignal({ type: 'signal', seq: 1, minTier: 'free', signal: toSignalView(row(1)) } as SignalEvent);
    // In the same microtask drain as the fan-out's walk: the gateway registers the socket and resumes.
    queueMicrotask(() => {
      registry.add(connection);
      void replay.resume(connection, 0);
    });
    await vi.waitFor(() => expect(connection.phase).toBe('live'));
    expect(sent.filter((seq) => seq > 0)).toEqual([1]);
  });
});
