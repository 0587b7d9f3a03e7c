import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api, flush, signalBody, WsClient } from './support/clients.js';
import { createTestDatabase, startApp, type TestApp, type TestDatabase } from './support/test-app.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Three instances on one PostgreSQL and one Redis (PostgreSQL only: PGlite is one process's). */
describe('cluster of three instances', () => {
  let database: TestDatabase;
  const apps: Record<'a' | 'b' | 'c', TestApp> = {} as never;
  let api: Record<'a' | 'b' | 'c', Api>;
  let provider: Awaited<ReturnType<Api['provider']>>;
  const prefix = `sc-test-${randomBytes(4).toString('hex')}:`;
  const redis = new Redis(REDIS_URL);

  beforeAll(async () => {
    database = await createTestDatabase();
    for (const name of ['a', 'b', 'c'] as const) {
      apps[name] = await startApp(database, {
        REDIS_URL,
        REDIS_KEY_PREFIX: prefix,
        INSTANCE_ID: `inst-${name}`,
        CLUSTER_REPORT_INTERVAL_MS: '200',
        CLUSTER_INSTANCE_TTL_MS: '1500',
        BUS_CATCHUP_INTERVAL_MS: '1000',
        WS_MAX_SOCKETS_PER_USER: '2',
      });
    }
    api = { a: new Api(apps.a), b: new Api(apps.b), c: new Api(apps.c) };
    provider = await api.a.provider();
  }, 120_000);

  afterAll(async () => {
    await Promise.all(Object.values(apps).map((app) => app.close().catch(() => undefined)));
    redis.disconnect();
    await database?.drop();
  });

  const connect = (app: TestApp, token: string, since?: number) => WsClient.connect(app.wsUrl, { token, since });

  it('delivers a signal synced at A to sockets on B and C exactly per tier', async () => {
    const free = await api.a.user('free');
    const pro = await api.a.user('pro');
    const sockets = {
      freeB: await connect(apps.b, free.token),
      proB: await connect(apps.b, pro.token),
      freeC: await connect(apps.c, free.token),
      proC: await connect(apps.c, pro.token),
    };
    const premium = await api.a.sync(provider.apiKey, signalBody({ premium: true }));
    const regular = await api.a.sync(provider.apiKey, signalBody());
    await flush(api.a, provider.apiKey, Object.values(sockets));
    expect(sockets.freeB.seqs()).toEqual([regular.body.seq]);
    expect(sockets.freeC.seqs()).toEqual([regular.body.seq]);
    expect(sockets.proB.seqs()).toEqual([premium.body.seq, regular.body.seq]);
    expect(sockets.proC.seqs()).toEqual([premium.body.seq, regular.body.seq]);
    await Promise.all(Object.values(sockets).map((s) => s.close()));
  });

  it('re-gates a socket on C after a tier change made through B', async () => {
    const user = await api.a.user('elite');
    const socket = await connect(apps.c, user.token);
    expect((await api.b.setTier(user.id, 'free')).status).toBe(200);
    const premium = await api.a.sync(provider.apiKey, signalBody({ premium: true }));
    await flush(api.a, provider.apiKey, [socket]);
    expect(socket.seqs()).not.toContain(premium.body.seq);
    expect((await api.b.setTier(user.id, 'pro')).status).toBe(200);
    const next = await api.c.sync(provider.apiKey, signalBody({ premium: true }));
    await socket.next((m) => m.seq === next.body.seq);
    await socket.close();
  });

  it('shows cluster totals and a per-instance breakdown that add up, from any instance', async () => {
    const users = await Promise.all(['free', 'basic', 'pro', 'elite'].map((tier) => api.a.user(tier)));
    const sockets = [
      await connect(apps.a, users[0]!.token),
      await connect(apps.b, users[0]!.token),
      await connect(apps.b, users[1]!.token),
      await connect(apps.c, users[2]!.token),
      await connect(apps.c, users[3]!.token),
    ];
    const stats = (await api.c.request('GET', '/ws/stats', { token: await api.c.admin() })).body;
    expect(stats.bus).toBe('up');
    expect(stats.instance_id).toBe('inst-c');
    expect(stats.instances.map((i: { instance_id: string }) => i.instance_id)).toEqual(['inst-a', 'inst-b', 'inst-c']);
    const byInstance = Object.fromEntries(
      stats.instances.map((i: { instance_id: string; total_connections: number }) => [i.instance_id, i.total_connections]),
    );
    expect(byInstance).toEqual({ 'inst-a': 1, 'inst-b': 2, 'inst-c': 2 });
    expect(stats.total_connections).toBe(5);
    expect(stats.active_users).toBe(4);
    expect(stats.users_by_tier).toEqual({ free: 1, basic: 1, pro: 1, elite: 1 });
    await Promise.all(sockets.map((s) => s.close()));
  });

  it('enforces the per-user socket cap across instances, and lets the refused socket in once another closes', async () => {
    const user = await api.a.user('free');
    const first = await connect(apps.a, user.token);
    const second = await connect(apps.b, user.token);
    // Counted on other instances, whose counts may outlive a crashed one: refused, to be retried.
    const third = await WsClient.open(apps.c.wsUrl, { token: user.token });
    expect(await third.waitClose()).toEqual({ code: 4429, reason: 'too many connections for this user across the cluster: retry later' });
    await second.close();
    await expect
      .poll(
        async () => {
          const retried = await WsClient.open(apps.c.wsUrl, { token: user.token });
          const welcomed = await Promise.race([
            retried.next((m) => m.type === 'welcome', 2_000).then(() => true),
            retried.waitClose().then(() => false),
          ]).catch(() => false);
          await retried.close();
          return welcomed;
        },
        { timeout: 10_000 },
      )
      .toBe(true);
    await first.close();
  });

  it("delivers every signal once, in order, when an instance's Redis connection is killed mid-stream", async () => {
    const user = await api.a.user('pro');
    const onB = await connect(apps.b, user.token);
    const onC = await connect(apps.c, (await api.a.user('elite')).token);
    const synced: number[] = [];
    const producer = (async () => {
      for (let i = 0; i < 40; i++) synced.push((await api.a.sync(provider.apiKey, signalBody({ premium: i % 2 === 0 }))).body.seq);
    })();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const clients = (await redis.client('LIST')) as string;
    const killed = clients
      .split('\n')
      .filter((line) => /name=signalcast-(sub|cmd)-inst-b/.test(line))
      .map((line) => /id=(\d+)/.exec(line)![1]!);
    expect(killed).toHaveLength(2);
    for (const id of killed) await redis.client('KILL', 'ID', id);
    await producer;
    await flush(api.a, provider.apiKey, [onB, onC]);
    for (const socket of [onB, onC]) {
      const received = socket.seqs().filter((seq) => seq >= synced[0]!);
      expect(received).toEqual(synced);
    }
    await Promise.all([onB.close(), onC.close()]);
  });

  it('lets clients of a stopped instance resume on another without loss, and drops it from the stats', async () => {
    const user = await api.a.user('pro');
    const socket = await connect(apps.c, user.token);
    const before = await api.a.sync(provider.apiKey, signalBody());
    await socket.next((m) => m.seq === before.body.seq);
    await apps.c.close();
    expect((await socket.waitClose()).code).toBe(1001);
    const lastSeen = socket.seqs().at(-1)!;

    const missed = [];
    for (let i = 0; i < 5; i++) missed.push((await api.a.sync(provider.apiKey, signalBody({ premium: i % 2 === 1 }))).body.seq);
    const resumed = await connect(apps.b, user.token, lastSeen);
    await resumed.next((m) => m.type === 'replay_complete');
    const live = await api.a.sync(provider.apiKey, signalBody());
    await resumed.next((m) => m.seq === live.body.seq);
    expect(resumed.seqs()).toEqual([...missed, live.body.seq]);

    const stats = (await api.a.request('GET', '/ws/stats', { token: await api.a.admin() })).body;
    expect(stats.instances.map((i: { instance_id: string }) => i.instance_id)).toEqual(['inst-a', 'inst-b']);
    await resumed.close();
  });
});
