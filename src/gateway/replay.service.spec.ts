import { describe, expect, it, vi } from 'vitest';
import type { WebSocket } from 'ws';
import { TierCache } from '../auth/tier-cache.service.js';
import type { UsersRepository } from '../auth/users.repository.js';
import { InProcessClusterState } from '../bus/in-process-cluster.js';
import { InProcessBus } from '../bus/in-process.bus.js';
import { TokenBucket } from '../common/rate-limiter.js';
import type { AppConfig } from '../config/app-config.js';
import type { Tier } from '../generated/prisma/enums.js';
import { canSee } from '../signals/entitlement.js';
import type { SignalEvent } from '../signals/signal.types.js';
import type { SignalsService } from '../signals/signals.service.js';
import { signalEvent } from '../testing/signal-event.js';
import { Metrics } from '../metrics/metrics.js';
import { strictMock } from '../testing/strict-mock.js';
import { ConnectionRegistry } from './connection-registry.js';
import { Connection } from './connection.js';
import { FanoutService } from './fanout.service.js';
import { ReplayService } from './replay.service.js';

const event = (seq: number) => signalEvent(seq);

/**
 * A replay over an in-process bus and a real fan-out; `stored` is the database, `deliveredAtStart`
 * what the fan-out had delivered when it started. The list double honours the replay's bounds.
 */
async function setup(
  stored: SignalEvent[],
  deliveredAtStart: number,
  pageSize: number,
  { tier = 'pro' as Tier, onList = async () => {} } = {},
) {
  const config = strictMock<AppConfig>({
    get: ((key: string) =>
      ({
        TIER_CACHE_MAX: 100,
        TIER_CACHE_TTL_MS: 60_000,
        WS_MAX_BUFFERED_BYTES: 1 << 20,
        WS_REPLAY_MAX: 100,
        WS_REPLAY_PAGE_SIZE: pageSize,
        BUS_CATCHUP_INTERVAL_MS: 60_000,
      })[key]) as AppConfig['get'],
  });
  const bus = new InProcessBus();
  const tiers = new TierCache(strictMock<UsersRepository>({ findTiers: async () => new Map([['u', tier]]) }), bus, config, new Metrics());
  const signals = strictMock<SignalsService>({
    latestStoredSeq: async () => deliveredAtStart,
    count: async () => stored.length,
    list: async (listTier, query: { afterSeq: number; throughSeq?: number; limit: number }) => {
      await onList();
      return stored
        .filter((e) => e.seq > query.afterSeq && e.seq <= (query.throughSeq ?? Infinity) && canSee(listTier, e.minTier))
        .slice(0, query.limit);
    },
  });
  const registry = new ConnectionRegistry(new InProcessClusterState('t'));
  const fanout = new FanoutService(bus, registry, tiers, signals, config, new Metrics());
  await fanout.onModuleInit();
  const replay = new ReplayService(signals, tiers, fanout, config, new Metrics());
  await tiers.get('u');
  const sent: number[] = [];
  const socket = { OPEN: 1, readyState: 1, bufferedAmount: 0, send: (b: Buffer | string) => sent.push(JSON.parse(b.toString()).seq ?? -1) };
  const connection = new Connection(socket as unknown as WebSocket, { userId: 'u', role: 'subscriber' }, TokenBucket.perSecond(100, 100));
  const publish = (seq: number) => bus.publishSignal(event(seq));
  return { bus, fanout, registry, replay, connection, publish, signalsSent: () => sent.filter((seq) => seq > 0) };
}

describe('ReplayService seam', () => {
  it('does not duplicate signals the replay read from the database ahead of the fan-out', async () => {
    // The fan-out has delivered 1; 2 and 3 are committed but still on their way.
    const { fanout, registry, replay, connection, publish, signalsSent } = await setup([1, 2, 3].map(event), 1, 2);
    registry.add(connection);
    await replay.resume(connection, 0);
    for (const seq of [2, 3]) await publish(seq);
    await vi.waitFor(() => expect(fanout.deliveredSeq).toBe(3));
    await publish(4);
    await vi.waitFor(() => expect(fanout.deliveredSeq).toBe(4));
    expect(signalsSent()).toEqual([1, 2, 3, 4]);
  });

  it('does not lose an event to a socket that registers and resumes right after the fan-out walked its sockets', async () => {
    const { registry, replay, connection, publish, signalsSent } = await setup([event(1)], 0, 10);
    connection.phase = 'replaying';
    void publish(1);
    // In the same microtask drain as the fan-out's walk: the gateway registers the socket and resumes.
    queueMicrotask(() => {
      registry.add(connection);
      void replay.resume(connection, 0);
    });
    await vi.waitFor(() => expect(connection.phase).toBe('live'));
    expect(signalsSent()).toEqual([1]);
  });

  it('closes at once, out of the registry, the socket of a user who is gone, before the client answers the close', async () => {
    const { registry, replay } = await setup([event(1)], 1, 10);
    const socket = {
      OPEN: 1,
      CLOSED: 3,
      readyState: 1,
      bufferedAmount: 0,
      send: vi.fn(),
      close: vi.fn(() => void (socket.readyState = 2)),
      terminate: vi.fn(),
    };
    const connection = new Connection(
      socket as unknown as WebSocket,
      { userId: 'gone', role: 'subscriber' },
      TokenBucket.perSecond(100, 100),
    );
    registry.add(connection);
    await replay.resume(connection, 0);
    expect(socket.close).toHaveBeenCalledWith(4501, 'unauthorized');
    expect(socket.readyState).toBe(2);
    expect([registry.connectionCount, registry.countForUser('gone')]).toEqual([0, 0]);
    expect(socket.send).not.toHaveBeenCalled();
  });

  it('sends a page the premium signals of a user upgraded while it was read', async () => {
    let upgrade: (() => Promise<void>) | undefined;
    const stored = [event(1), signalEvent(2, { minTier: 'pro' }), event(3)];
    const { bus, replay, registry, connection, signalsSent } = await setup(stored, 3, 10, {
      tier: 'free',
      onList: async () => upgrade?.(),
    });
    upgrade = async () => {
      upgrade = undefined;
      await bus.publishUserChange({ userId: 'u', tier: 'pro' });
    };
    registry.add(connection);
    await replay.resume(connection, 0);
    expect(signalsSent()).toEqual([1, 2, 3]);
  });
});
