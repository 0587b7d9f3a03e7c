import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SignalEvent } from '../signals/signal.types.js';
import { describeBusContract, snapshot } from './bus.contract.js';
import { RedisClients } from './redis-clients.js';
import { RedisClusterState } from './redis-cluster.js';
import { RedisBus } from './redis.bus.js';

/** Real Redis (127.0.0.1:6379, or TEST_REDIS_URL); each test gets its own key prefix. */
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Commands fail fast until the command connection is up (there is no offline queue): a report sent
 * earlier is dropped and retried at the next one, which a test does not wait for.
 */
async function commandReady(clients: RedisClients): Promise<void> {
  if (clients.command.status !== 'ready') await new Promise((resolve) => clients.command.once('ready', resolve));
}

async function redisInstance(prefix: string, ttlMs = 10_000) {
  const instanceId = `i-${randomBytes(3).toString('hex')}`;
  const clients = new RedisClients(REDIS_URL, instanceId);
  const bus = new RedisBus(clients, prefix, instanceId);
  await bus.connect();
  await commandReady(clients);
  const cluster = new RedisClusterState(clients, prefix, instanceId, ttlMs);
  return { bus, cluster, clients, instanceId, prefix, close: () => clients.close() };
}

describeBusContract('redis', () => redisInstance(`sc-test-${randomBytes(4).toString('hex')}:`));

describe('redis: between instances', () => {
  const open: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((i) => i.close()));
  });
  const cluster = async (count: number, ttlMs?: number) => {
    const prefix = `sc-test-${randomBytes(4).toString('hex')}:`;
    const instances = await Promise.all(Array.from({ length: count }, () => redisInstance(prefix, ttlMs)));
    open.push(...instances);
    return instances;
  };
  const event = (seq: number) => ({ type: 'signal', seq, minTier: 'free', signal: { seq } }) as unknown as SignalEvent;

  it('delivers to every other instance in publish order, and never echoes to the publisher', async () => {
    const [a, b, c] = await cluster(3);
    const seen = { a: [] as number[], b: [] as number[], c: [] as number[] };
    a!.bus.onSignal((e) => seen.a.push(e.seq));
    b!.bus.onSignal((e) => seen.b.push(e.seq));
    c!.bus.onSignal((e) => seen.c.push(e.seq));
    for (let seq = 1; seq <= 50; seq++) await a!.bus.publishSignal(event(seq));
    const all = Array.from({ length: 50 }, (_, i) => i + 1);
    await vi.waitFor(() => expect(seen.b).toEqual(all));
    await vi.waitFor(() => expect(seen.c).toEqual(all));
    await sleep(100);
    expect(seen.a).toEqual(all);
  });

  it('fences: once fence() resolves, every user change published before it elsewhere has been handled here', async () => {
    const [a, b] = await cluster(2);
    await vi.waitFor(() => expect(b!.bus.status()).toBe('up'));
    const seen: string[] = [];
    b!.bus.onUserChange((change) => seen.push(`${change.userId}:${change.tier}`));
    for (let i = 0; i < 20; i++) await a!.bus.publishUserChange({ userId: `u${i}`, tier: 'free' });
    await b!.bus.fence();
    expect(seen).toHaveLength(20);
  });

  it('rejects publishing a user change it cannot send, and a fence it cannot confirm; down until it reconnects', async () => {
    const [a] = await cluster(1);
    await vi.waitFor(() => expect(a!.bus.status()).toBe('up'));
    a!.clients.command.disconnect();
    a!.clients.subscriber.disconnect();
    await expect(a!.bus.publishUserChange({ userId: 'u', tier: 'free' })).rejects.toThrow();
    await expect(a!.bus.fence()).rejects.toThrow();
    expect(a!.bus.status()).toBe('down');
  });

  it('orders a user change before a later signal from another instance', async () => {
    const [a, b, c] = await cluster(3);
    const log: string[] = [];
    c!.bus.onUserChange((change) => log.push(`tier:${change.tier}`));
    c!.bus.onSignal((e) => log.push(`seq:${e.seq}`));
    await b!.bus.publishUserChange({ userId: 'u', tier: 'basic' });
    await a!.bus.publishSignal(event(1));
    await vi.waitFor(() => expect(log).toEqual(['tier:basic', 'seq:1']));
  });

  it("counts a user's sockets across instances and drops a dead instance after its TTL", async () => {
    const [a, b] = await cluster(2, 600);
    a!.cluster.socketOpened('u');
    b!.cluster.socketOpened('u');
    b!.cluster.socketOpened('v');
    await Promise.all([a!.cluster.report(snapshot(a!.instanceId, 1)), b!.cluster.report(snapshot(b!.instanceId, 2))]);
    await vi.waitFor(async () => expect(await a!.cluster.userSockets('u')).toBe(2));
    expect([...(await a!.cluster.connectedUsers())].sort()).toEqual(['u', 'v']);
    expect((await a!.cluster.instances()).map((i) => i.total_connections).sort()).toEqual([1, 2]);

    await b!.close(); // b dies without a goodbye
    await sleep(800);
    await a!.cluster.report(snapshot(a!.instanceId, 1));
    expect((await a!.cluster.instances()).map((i) => i.instance_id)).toEqual([a!.instanceId]);
    expect(await a!.cluster.userSockets('u')).toBe(1);
    expect([...(await a!.cluster.connectedUsers())]).toEqual(['u']);
  });

  it("keeps the live instances in one sorted set scored by report time on Redis's clock, and never scans the keyspace", async () => {
    const [a, b] = await cluster(2);
    const sent = vi.spyOn(a!.clients.command, 'sendCommand');
    a!.cluster.socketOpened('u');
    b!.cluster.socketOpened('u');
    await Promise.all([a!.cluster.report(snapshot(a!.instanceId, 1)), b!.cluster.report(snapshot(b!.instanceId, 1))]);
    expect(await a!.cluster.userSockets('u')).toBe(2);
    expect([...(await a!.cluster.connectedUsers())]).toEqual(['u']);
    expect(await a!.cluster.instances()).toHaveLength(2);
    const commands = new Set(sent.mock.calls.map(([command]) => command.name.toLowerCase()));
    expect(commands).not.toContain('scan');
    expect(commands).not.toContain('keys');

    const admin = new Redis(REDIS_URL);
    try {
      const [seconds] = await admin.time();
      const members = await admin.zrange(`${a!.prefix}instances`, 0, -1, 'WITHSCORES');
      const scores = Object.fromEntries(
        Array.from({ length: members.length / 2 }, (_, i) => [members[2 * i]!, Number(members[2 * i + 1])]),
      );
      expect(Object.keys(scores).sort()).toEqual([a!.instanceId, b!.instanceId].sort());
      for (const score of Object.values(scores)) expect(Math.abs(score - Number(seconds) * 1000)).toBeLessThan(5_000);

      await b!.cluster.leave();
      expect(await admin.zrange(`${a!.prefix}instances`, 0, -1)).toEqual([a!.instanceId]);
      expect(await a!.cluster.userSockets('u')).toBe(1);
    } finally {
      admin.disconnect();
    }
  });

  it('counts no instance whose last report is older than the TTL, even while its keys are still there, and prunes it', async () => {
    const [a] = await cluster(1, 600);
    const admin = new Redis(REDIS_URL);
    const ghost = { sockets: `${a!.prefix}sockets:ghost`, snapshot: `${a!.prefix}instance:ghost` };
    try {
      const [seconds] = await admin.time();
      await admin
        .multi()
        .zadd(`${a!.prefix}instances`, Number(seconds) * 1000 - 60_000, 'ghost')
        .hset(ghost.sockets, 'u', 5)
        .set(ghost.snapshot, JSON.stringify(snapshot('ghost', 5)))
        .exec();
      a!.cluster.socketOpened('v');
      await a!.cluster.report(snapshot(a!.instanceId, 1));
      expect(await a!.cluster.userSockets('u')).toBe(0);
      expect([...(await a!.cluster.connectedUsers())]).toEqual(['v']);
      expect((await a!.cluster.instances()).map((i) => i.instance_id)).toEqual([a!.instanceId]);
      expect(await admin.zscore(`${a!.prefix}instances`, 'ghost')).toBeNull();
    } finally {
      await admin.del(ghost.sockets, ghost.snapshot);
      admin.disconnect();
    }
  });

  it('replaces the socket counts a crashed predecessor with the same INSTANCE_ID left behind', async () => {
    const prefix = `sc-test-${randomBytes(4).toString('hex')}:`;
    const admin = new Redis(REDIS_URL);
    try {
      // The predecessor held 5 sockets of u and died without a goodbye; it restarts holding none.
      await admin.hset(`${prefix}sockets:inst-x`, 'u', 5);
      const clients = new RedisClients(REDIS_URL, 'inst-x');
      open.push({ close: () => clients.close() });
      const restarted = new RedisClusterState(clients, prefix, 'inst-x', 10_000);
      const other = await redisInstance(prefix);
      open.push(other);
      await commandReady(clients);
      await restarted.report(snapshot('inst-x', 0));
      expect(await other.cluster.userSockets('u')).toBe(0);
      expect((await other.cluster.instances()).find((i) => i.instance_id === 'inst-x')?.total_connections).toBe(0);
    } finally {
      admin.disconnect();
    }
  });

  it('rebuilds its socket counts when they expired while it was late to report', async () => {
    const [a, b] = await cluster(2, 600);
    for (let i = 0; i < 3; i++) a!.cluster.socketOpened('u');
    await a!.cluster.report(snapshot(a!.instanceId, 3));
    await vi.waitFor(async () => expect(await b!.cluster.userSockets('u')).toBe(3));
    await sleep(800); // no report for longer than the TTL: its keys expired
    await a!.cluster.report(snapshot(a!.instanceId, 3));
    expect(await b!.cluster.userSockets('u')).toBe(3);
  });

  it('treats a report whose transaction failed in part as failed, and rewrites its counts at the next one', async () => {
    const [a, b] = await cluster(2);
    a!.cluster.socketOpened('u');
    await a!.cluster.report(snapshot(a!.instanceId, 1));
    const admin = new Redis(REDIS_URL);
    try {
      // The counts are lost, and the membership command fails inside the transaction (WRONGTYPE).
      await admin.multi().del(`${a!.prefix}sockets:${a!.instanceId}`).set(`${a!.prefix}instances`, 'not a sorted set').exec();
      await a!.cluster.report(snapshot(a!.instanceId, 1));
      await admin.del(`${a!.prefix}instances`);
    } finally {
      admin.disconnect();
    }
    await Promise.all([a!.cluster.report(snapshot(a!.instanceId, 1)), b!.cluster.report(snapshot(b!.instanceId, 0))]);
    expect(await b!.cluster.userSockets('u')).toBe(1);
  });

  it('reports down while its connection is killed, recovers by itself and says so', async () => {
    const [a, b] = await cluster(2);
    const recovered = vi.fn();
    b!.bus.onRecover(recovered);
    const seen: number[] = [];
    b!.bus.onSignal((e) => seen.push(e.seq));
    const admin = new Redis(REDIS_URL);
    try {
      await vi.waitFor(() => expect(b!.bus.status()).toBe('up'), { timeout: 5_000 });
      recovered.mockClear();
      const list = (await admin.client('LIST')) as string;
      const sub = list.split('\n').find((line) => line.includes(`name=signalcast-sub-${b!.instanceId}`));
      const id = /id=(\d+)/.exec(sub ?? '')?.[1];
      expect(id).toBeDefined();
      await admin.client('KILL', 'ID', id!);
      await vi.waitFor(() => expect(recovered).toHaveBeenCalledTimes(1), { timeout: 5_000 });
      expect(b!.bus.status()).toBe('up');
      await a!.bus.publishSignal(event(9));
      await vi.waitFor(() => expect(seen).toEqual([9]));
    } finally {
      admin.disconnect();
    }
  });
});
