import { describe, expect, it, vi } from 'vitest';
import type { WebSocket } from 'ws';
import type { Principal } from '../auth/principal.js';
import { TierCache } from '../auth/tier-cache.service.js';
import type { UsersRepository } from '../auth/users.repository.js';
import { InProcessClusterState } from '../bus/in-process-cluster.js';
import { InProcessBus } from '../bus/in-process.bus.js';
import { TokenBucket } from '../common/rate-limiter.js';
import type { AppConfig } from '../config/app-config.js';
import type { Tier } from '../generated/prisma/enums.js';
import type { SignalFilter } from '../signals/signal-filter.js';
import type { SignalEvent } from '../signals/signal.types.js';
import type { SignalsService } from '../signals/signals.service.js';
import { Metrics } from '../metrics/metrics.js';
import { strictMock } from '../testing/strict-mock.js';
import { ConnectionRegistry } from './connection-registry.js';
import { Connection } from './connection.js';
import { FanoutService } from './fanout.service.js';

class FakeSocket {
  readonly OPEN = 1;
  readonly CLOSED = 3;
  readyState = 1;
  bufferedAmount = 0;
  sent: Buffer[] = [];
  closedWith?: number;
  failing = false;
  send(bytes: Buffer): void {
    if (this.failing) throw new Error('broken pipe');
    this.sent.push(bytes);
  }
  close(code: number): void {
    this.closedWith = code;
    this.readyState = 2;
  }
  terminate(): void {
    this.readyState = 3;
  }
}

/** The seqs a fake socket was sent (it gets the JSON text: the fallback path of `writeFramed`). */
const seqsOf = (socket: FakeSocket) => socket.sent.map((bytes) => JSON.parse(bytes.toString()).seq);

const CONFIG: Record<string, number> = {
  TIER_CACHE_MAX: 1000,
  TIER_CACHE_TTL_MS: 60_000,
  WS_MAX_BUFFERED_BYTES: 1000,
  WS_REPLAY_MAX: 100,
  BUS_CATCHUP_INTERVAL_MS: 60_000,
};

/**
 * Makes the next tier query wait until `release.now()`, then answer `tier` for every id;
 * `release.started` settles once that query is in flight.
 */
function holdNextTierQuery(users: ReturnType<typeof setup>['users'], tier: Tier) {
  let open!: () => void;
  let markStarted!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  users.findTiers.mockImplementationOnce(async (ids) => {
    markStarted();
    await opened;
    return new Map([...ids].map((id) => [id, tier]));
  });
  return { started, now: () => open() };
}

function setup(tiers: Record<string, Tier>) {
  const users = strictMock<UsersRepository>({
    findTiers: async (ids: readonly string[]) => new Map(ids.filter((id) => tiers[id]).map((id) => [id, tiers[id]!])),
  });
  const config = strictMock<AppConfig>({ get: ((key: string) => CONFIG[key]) as AppConfig['get'] });
  const bus = new InProcessBus();
  const registry = new ConnectionRegistry(new InProcessClusterState('test'));
  const tierCache = new TierCache(users, bus, config, new Metrics());
  const stored: SignalEvent[] = [];
  const signals = strictMock<SignalsService>({
    latestStoredSeq: async () => stored.at(-1)?.seq ?? 0,
    revisionsBetween: async (after: number, before: number) => stored.filter((e) => e.seq > after && e.seq < before),
  });
  const fanout = new FanoutService(bus, registry, tierCache, signals, config, new Metrics());
  const connect = (userId: string, filter?: SignalFilter) => {
    const socket = new FakeSocket();
    const principal: Principal = { userId, role: 'subscriber' };
    const connection = new Connection(socket as unknown as WebSocket, principal, TokenBucket.perSecond(10, 10));
    registry.setFilter(connection, filter);
    registry.add(connection);
    return socket;
  };
  let seq = 0;
  const event = (minTier: Tier, symbol = 'X'): SignalEvent => {
    const next = { type: 'signal', seq: ++seq, minTier, signal: { seq, symbol, premium: minTier !== 'free' } } as unknown as SignalEvent;
    stored.push(next);
    return next;
  };
  const publish = async (minTier: Tier, symbol?: string) => {
    await bus.publishSignal(event(minTier, symbol));
    await vi.waitFor(() => expect(fanout.deliveredSeq).toBe(seq));
  };
  return { users, bus, registry, fanout, connect, publish, event, signals };
}

describe('FanoutService', () => {
  it('gates by tier with one query for all uncached users, none once cached, and serializes once', async () => {
    const { users, fanout, connect, publish } = setup({ f: 'free', b: 'basic', p: 'pro', e: 'elite' });
    await fanout.onModuleInit();
    const sockets = { f: [connect('f'), connect('f')], b: [connect('b')], p: [connect('p'), connect('p')], e: [connect('e')] };

    await publish('pro');
    expect(users.findTiers).toHaveBeenCalledTimes(1);
    expect([...users.findTiers.mock.calls[0]![0]].sort()).toEqual(['b', 'e', 'f', 'p']);
    expect(sockets.f.map((s) => s.sent.length)).toEqual([0, 0]);
    expect(sockets.b[0]!.sent).toHaveLength(0);
    const delivered = [...sockets.p, ...sockets.e].map((s) => s.sent[0]);
    expect(delivered.every((bytes) => bytes === delivered[0])).toBe(true);

    await publish('pro');
    await publish('free');
    expect(users.findTiers).toHaveBeenCalledTimes(1);
    expect(sockets.f[0]!.sent).toHaveLength(1);
    expect(sockets.e[0]!.sent).toHaveLength(3);
    expect(fanout.messagesDelivered).toBe(3 + 3 + 6);
  });

  it('delivers by symbol and tier together: followers of the symbol whose tier allows it', async () => {
    const { fanout, connect, publish } = setup({ f: 'free', p: 'pro' });
    await fanout.onModuleInit();
    const freeBtc = connect('f', { symbols: new Set(['BTC']) });
    const proBtc = connect('p', { symbols: new Set(['BTC']) });
    const proEth = connect('p', { symbols: new Set(['ETH']) });
    const proAll = connect('p');
    await publish('pro', 'BTC');
    await publish('free', 'BTC');
    await publish('free', 'ETH');
    expect(seqsOf(freeBtc)).toEqual([2]);
    expect(seqsOf(proBtc)).toEqual([1, 2]);
    expect(seqsOf(proEth)).toEqual([3]);
    expect(seqsOf(proAll)).toEqual([1, 2, 3]);
  });

  it("looks up only the tiers of a premium signal's audience, not of everyone connected", async () => {
    const { users, fanout, connect, publish } = setup({ btc: 'pro', eth: 'pro', all: 'elite' });
    await fanout.onModuleInit();
    const btc = connect('btc', { symbols: new Set(['BTC']) });
    connect('eth', { symbols: new Set(['ETH']) });
    const all = connect('all');
    await publish('pro', 'BTC');
    expect(users.findTiers).toHaveBeenCalledTimes(1);
    expect([...users.findTiers.mock.calls[0]![0]].sort()).toEqual(['all', 'btc']);
    expect([seqsOf(btc), seqsOf(all)]).toEqual([[1], [1]]);
  });

  it('keeps delivering to others when a socket fails, and drops the failing one', async () => {
    const { registry, fanout, connect, publish } = setup({ a: 'free', b: 'free' });
    await fanout.onModuleInit();
    const broken = connect('a');
    const healthy = connect('b');
    broken.failing = true;
    await publish('free');
    expect(healthy.sent).toHaveLength(1);
    expect(registry.connectionCount).toBe(1);
    expect(broken.readyState).toBe(3);
  });

  it('honours a downgrade that arrives while the broadcast waits for the tier query', async () => {
    const { users, bus, fanout, connect, publish } = setup({ cached: 'elite', fresh: 'pro' });
    await fanout.onModuleInit();
    const cachedSocket = connect('cached');
    await publish('free'); // nothing to look up for regular signals
    await fanout['tiers'].getMany(['cached']);
    const freshSocket = connect('fresh');

    const release = holdNextTierQuery(users, 'pro');
    const delivery = publish('pro');
    await release.started;
    await bus.publishUserChange({ userId: 'cached', tier: 'basic' });
    release.now();
    await delivery;
    expect(cachedSocket.sent).toHaveLength(1); // only the regular signal
    expect(freshSocket.sent).toHaveLength(1);
  });

  it('refills a gap in seq from the database, in order, and drops duplicates', async () => {
    const { bus, fanout, connect, event } = setup({ a: 'elite' });
    await fanout.onModuleInit();
    const socket = connect('a');
    const [first, lost1, lost2, next] = [event('free'), event('pro'), event('free'), event('pro')];
    await bus.publishSignal(first!);
    await bus.publishSignal(next!); // the two before it never came through the bus
    await bus.publishSignal(lost1!); // a late duplicate
    await vi.waitFor(() => expect(fanout.deliveredSeq).toBe(4));
    await fanout.catchUp();
    expect(seqsOf(socket)).toEqual([1, 2, 3, 4]);
    expect(fanout.gapsRefilled).toBe(2);
    void lost2;
  });

  it('delivers to a socket that registered while the tier query ran', async () => {
    const { users, registry, fanout, connect, publish } = setup({ early: 'pro', late: 'pro' });
    await fanout.onModuleInit();
    const early = connect('early');
    const release = holdNextTierQuery(users, 'pro');
    const delivery = publish('pro');
    await release.started;
    // As the gateway does: the tier is cached at connect, then the socket is registered.
    await fanout['tiers'].getMany(['late']).catch(() => undefined);
    const late = connect('late');
    release.now();
    await delivery;
    expect(early.sent).toHaveLength(1);
    expect(late.sent).toHaveLength(1);
    expect(registry.connectionCount).toBe(2);
  });

  it('delivers to a socket whose filter took in the symbol while the tier query ran, its tier uncached', async () => {
    const { users, registry, fanout, connect, publish } = setup({ early: 'pro', mover: 'pro' });
    await fanout.onModuleInit();
    const early = connect('early', { symbols: new Set(['BTC']) });
    const mover = connect('mover', { symbols: new Set(['ETH']) });
    const release = holdNextTierQuery(users, 'pro');
    const delivery = publish('pro', 'BTC');
    await release.started;
    registry.setFilter(registry.get(mover as unknown as WebSocket)!, { symbols: new Set(['BTC']) });
    release.now();
    await delivery;
    expect([seqsOf(early), seqsOf(mover)]).toEqual([[1], [1]]);
    expect(users.findTiers.mock.calls.map(([ids]) => [...ids])).toEqual([['early'], ['mover']]);
  });

  it('honours a downgrade of a user already looked up, made while a later tier query of the same broadcast ran', async () => {
    const { users, registry, fanout, bus, connect, publish } = setup({ early: 'pro', newcomer: 'pro', mover: 'pro' });
    await fanout.onModuleInit();
    const early = connect('early', { symbols: new Set(['BTC']) });
    const newcomer = connect('newcomer', { symbols: new Set(['BTC']) });
    const mover = connect('mover', { symbols: new Set(['ETH']) });
    await fanout['tiers'].getMany(['early']);
    const first = holdNextTierQuery(users, 'pro');
    const second = holdNextTierQuery(users, 'pro');
    const delivery = publish('pro', 'BTC');
    await first.started; // early answered from the cache, newcomer queried
    registry.setFilter(registry.get(mover as unknown as WebSocket)!, { symbols: new Set(['BTC']) });
    first.now();
    await second.started; // the mover joined the audience: its tier is queried in turn
    await bus.publishUserChange({ userId: 'early', tier: 'free' });
    second.now();
    await delivery;
    expect([seqsOf(early), seqsOf(newcomer), seqsOf(mover)]).toEqual([[], [1], [1]]);
  });

  it('never skips a gap it cannot read yet: it is delivered in order once the database answers', async () => {
    const { bus, fanout, connect, event, signals } = setup({ a: 'free' });
    await fanout.onModuleInit();
    const socket = connect('a');
    const [first, , third] = [event('free'), event('free'), event('free')];
    await bus.publishSignal(first!);
    await vi.waitFor(() => expect(fanout.deliveredSeq).toBe(1));
    for (let i = 0; i < 3; i++) signals.revisionsBetween.mockRejectedValueOnce(new Error('connection refused'));
    await bus.publishSignal(third!);
    await vi.waitFor(() => expect(signals.revisionsBetween).toHaveBeenCalledTimes(3), { timeout: 3_000 });
    await fanout.catchUp(); // queued behind the failed attempt; the database answers now
    expect(seqsOf(socket)).toEqual([1, 2, 3]);
  });

  it('catches up on signals stored but never published', async () => {
    const { fanout, connect, event } = setup({ a: 'free' });
    await fanout.onModuleInit();
    const socket = connect('a');
    event('free');
    event('free');
    await fanout.catchUp();
    expect(socket.sent).toHaveLength(2);
    expect(fanout.deliveredSeq).toBe(2);
  });

  it('takes a socket out of delivery and out of the counts as soon as the server closes it, before the client answers', async () => {
    const { users, registry, fanout, connect, publish } = setup({ limited: 'pro', gone: 'pro', other: 'pro' });
    await fanout.onModuleInit();
    const limited = connect('limited');
    const gone = connect('gone');
    const other = connect('other');
    const connectionOf = (socket: FakeSocket) => registry.get(socket as unknown as WebSocket)!;
    const replaying = connectionOf(gone);
    replaying.phase = 'replaying';
    // As the gateway closes a socket that keeps exceeding its request rate, and the replay one whose
    // user is gone: the close frame is sent, the client has not answered, the socket is CLOSING.
    connectionOf(limited).close('RATE_LIMITED');
    replaying.close('UNAUTHORIZED');
    expect([limited.closedWith, gone.closedWith, limited.readyState, gone.readyState]).toEqual([4029, 4501, 2, 2]);

    expect(registry.connectionCount).toBe(1);
    expect([registry.countForUser('limited'), registry.countForUser('gone'), registry.userCount]).toEqual([0, 0, 1]);
    await publish('pro');
    await publish('free');
    expect([limited.sent, gone.sent, replaying.backlog]).toEqual([[], [], []]);
    // Nor does it cost the broadcast anything: its user's tier is not even looked up.
    expect(users.findTiers.mock.calls.map(([ids]) => [...ids])).toEqual([['other']]);
    expect(seqsOf(other)).toEqual([1, 2]);
    expect(fanout.slowConsumersCut).toBe(0);
  });

  it('cuts off a socket whose unsent bytes exceed the bound, with 4008', async () => {
    const { registry, fanout, connect, publish } = setup({ a: 'free', b: 'free' });
    await fanout.onModuleInit();
    const slow = connect('a');
    const fast = connect('b');
    slow.bufferedAmount = 5000;
    await publish('free');
    await publish('free');
    expect(slow.closedWith).toBe(4008);
    expect(slow.sent).toHaveLength(1);
    expect(fast.sent).toHaveLength(2);
    expect(registry.connectionCount).toBe(1);
    expect(fanout.slowConsumersCut).toBe(1);
  });
});
