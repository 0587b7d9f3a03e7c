import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api, flush, signalBody, WsClient } from './support/clients.js';
import { startTcpProxy } from './support/tcp-proxy.js';
import { createTestDatabase, startApp, type TestApp, type TestDatabase } from './support/test-app.js';

/**
 * Two instances; B reaches Redis through a proxy this test can cut, so B sees Redis go down and
 * come back while A (and every other test) keeps the real Redis.
 */
describe('Redis outage', () => {
  let database: TestDatabase;
  let a: TestApp;
  let b: TestApp;
  let proxy: Awaited<ReturnType<typeof startTcpProxy>>;

  beforeAll(async () => {
    database = await createTestDatabase();
    proxy = await startTcpProxy(6379);
    const prefix = `sc-test-${randomBytes(4).toString('hex')}:`;
    const common = { REDIS_KEY_PREFIX: prefix, BUS_CATCHUP_INTERVAL_MS: '60000', CLUSTER_REPORT_INTERVAL_MS: '200' };
    a = await startApp(database, { ...common, REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379', INSTANCE_ID: 'inst-a' });
    b = await startApp(database, { ...common, REDIS_URL: `redis://127.0.0.1:${proxy.port}`, INSTANCE_ID: 'inst-b' });
  }, 60_000);

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await proxy?.close();
    await database?.drop();
  });

  it('keeps both instances serving and storing, reports degraded, and fills the gap when Redis returns', async () => {
    const apiA = new Api(a);
    const apiB = new Api(b);
    const provider = await apiA.provider();
    const onA = await WsClient.connect(a.wsUrl, { token: (await apiA.user('pro')).token });
    const onB = await WsClient.connect(b.wsUrl, { token: (await apiA.user('pro')).token });
    const health = async (api: Api) => (await api.request('GET', '/health')).body;
    await expect.poll(() => health(apiB)).toMatchObject({ status: 'ok', bus: 'up' });

    proxy.cut();
    await expect.poll(() => health(apiB)).toMatchObject({ status: 'degraded', bus: 'down', database: 'up' });
    expect((await apiB.request('GET', '/health')).status).toBe(200);

    // The last one goes through A: B can only get it from its recovery catch-up (its periodic
    // catch-up is set to a minute, and nothing is synced after it).
    const synced: number[] = [];
    for (let i = 0; i < 7; i++) {
      const via = i % 2 === 0 ? apiA : apiB;
      const response = await via.sync(provider.apiKey, signalBody({ premium: i % 3 === 0 }));
      expect(response.status).toBe(201);
      synced.push(response.body.seq);
    }
    // Each instance still serves its own sockets the signals it stored itself.
    await onB.next((m) => m.seq === synced[1]);
    await onA.next((m) => m.seq === synced[0]);

    proxy.restore();
    await expect.poll(() => health(apiB), { timeout: 10_000 }).toMatchObject({ status: 'ok', bus: 'up' });
    await onB.next((m) => m.seq === synced.at(-1), 10_000);
    await onA.next((m) => m.seq === synced.at(-2), 10_000);
    // B's numbers reach A with B's next report (every 200 ms here).
    const refilledOnB = async () => {
      const stats = (await apiA.request('GET', '/ws/stats', { token: await apiA.admin() })).body;
      return stats.instances.find((i: { instance_id: string }) => i.instance_id === 'inst-b')?.gaps_refilled ?? 0;
    };
    await expect.poll(refilledOnB).toBeGreaterThan(0);
    await flush(apiA, provider.apiKey, [onA, onB]);
    expect(onA.seqs()).toEqual(synced);
    expect(onB.seqs()).toEqual(synced);
    await Promise.all([onA.close(), onB.close()]);
  });
});
