import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api, flush, signalBody, WsClient } from './support/clients.js';
import { startTcpProxy } from './support/tcp-proxy.js';
import { createTestDatabase, startApp, type TestApp, type TestDatabase } from './support/test-app.js';

const REDIS_PORT = Number(new URL(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379').port || 6379);

/**
 * A tier change answered on one instance holds on the others, even when their Redis link is slow
 * or the answering instance cannot reach Redis. Each instance reaches Redis through its own proxy.
 */
describe('tier changes across a cluster with a slow or cut Redis link', () => {
  let database: TestDatabase;
  let a: TestApp;
  let b: TestApp;
  let api: { a: Api; b: Api };
  let proxies: Record<'a' | 'b', Awaited<ReturnType<typeof startTcpProxy>>>;

  beforeAll(async () => {
    database = await createTestDatabase();
    proxies = { a: await startTcpProxy(REDIS_PORT), b: await startTcpProxy(REDIS_PORT) };
    const common = { REDIS_KEY_PREFIX: `sc-test-${randomBytes(4).toString('hex')}:`, CLUSTER_REPORT_INTERVAL_MS: '200' };
    a = await startApp(database, {
      ...common,
      REDIS_URL: `redis://127.0.0.1:${proxies.a.port}`,
      INSTANCE_ID: 'inst-a',
      BUS_CATCHUP_INTERVAL_MS: '60000',
    });
    // B checks the database often: its catch-up is one of the ways a signal reaches it.
    b = await startApp(database, {
      ...common,
      REDIS_URL: `redis://127.0.0.1:${proxies.b.port}`,
      INSTANCE_ID: 'inst-b',
      BUS_CATCHUP_INTERVAL_MS: '100',
    });
    api = { a: new Api(a), b: new Api(b) };
  }, 60_000);

  const busOf = async (one: Api) => (await one.request('GET', '/health')).body.bus;

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await Promise.all(Object.values(proxies ?? {}).map((proxy) => proxy.close()));
    await database?.drop();
  });

  it.each(['synced on B itself', 'synced on A, caught up by B from the database'] as const)(
    'honours on B a downgrade answered on A while B reads Redis 400 ms late: premium signal %s',
    async (path) => {
      for (const one of [api.a, api.b]) await expect.poll(() => busOf(one), { timeout: 10_000 }).toBe('up');
      const provider = await api.a.provider();
      const user = await api.a.user('pro');
      const onB = await WsClient.connect(b.wsUrl, { token: user.token });
      proxies.b.lag(400);
      try {
        expect((await api.a.setTier(user.id, 'free')).status).toBe(200);
        const via = path === 'synced on B itself' ? api.b : api.a;
        const premium = await via.sync(provider.apiKey, signalBody({ premium: true }));
        const regular = await via.sync(provider.apiKey, signalBody());
        expect([premium.status, regular.status]).toEqual([201, 201]);
        await onB.next((m) => m.seq === regular.body.seq, 10_000);
        expect(onB.seqs()).toEqual([regular.body.seq]);
      } finally {
        proxies.b.lag(0);
      }
      await onB.close();
    },
  );

  it.each(['listing', 'replay'] as const)(
    'gives no premium history on B (%s) to a user downgraded on A while B reads Redis 400 ms late',
    async (path) => {
      for (const one of [api.a, api.b]) await expect.poll(() => busOf(one), { timeout: 10_000 }).toBe('up');
      const provider = await api.a.provider();
      const user = await api.a.user('pro');
      const premium = await api.a.sync(provider.apiKey, signalBody({ premium: true }));
      const regular = await api.a.sync(provider.apiKey, signalBody());
      const history = `/api/v1/signals?after_seq=${premium.body.seq - 1}`;
      const listed = async () =>
        ((await api.b.request('GET', history, { token: user.token })).body.data as { seq: number }[]).map((s) => s.seq);
      // B has the user cached as pro.
      expect(await listed()).toEqual([premium.body.seq, regular.body.seq]);
      proxies.b.lag(400);
      try {
        expect((await api.a.setTier(user.id, 'free')).status).toBe(200);
        if (path === 'listing') {
          expect(await listed()).toEqual([regular.body.seq]);
        } else {
          const resumed = await WsClient.connect(b.wsUrl, { token: user.token, since: premium.body.seq - 1 });
          expect((await resumed.next((m) => m.type === 'welcome')).tier).toBe('free');
          await resumed.next((m) => m.type === 'replay_complete', 10_000);
          expect(resumed.seqs()).toEqual([regular.body.seq]);
          await resumed.close();
        }
      } finally {
        proxies.b.lag(0);
      }
    },
  );

  it('answers 503 for a downgrade on an instance that cannot reach Redis, and applies it everywhere once retried', async () => {
    const provider = await api.b.provider();
    const user = await api.b.user('pro');
    const onB = await WsClient.connect(b.wsUrl, { token: user.token });
    proxies.a.cut();
    await expect.poll(() => busOf(api.a), { timeout: 10_000 }).toBe('down');
    const refused = await api.a.setTier(user.id, 'free');
    expect(refused.status).toBe(503);
    expect(refused.body.code).toBe('bus_unavailable');
    proxies.a.restore();
    await expect.poll(() => busOf(api.a), { timeout: 10_000 }).toBe('up');
    expect((await api.a.setTier(user.id, 'free')).status).toBe(200);
    const premium = await api.b.sync(provider.apiKey, signalBody({ premium: true }));
    await flush(api.b, provider.apiKey, [onB]);
    expect(onB.seqs()).not.toContain(premium.body.seq);
    await onB.close();
  });
});
