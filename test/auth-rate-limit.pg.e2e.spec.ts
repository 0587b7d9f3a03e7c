import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api } from './support/clients.js';
import { startTcpProxy } from './support/tcp-proxy.js';
import { createTestDatabase, startApp, type TestApp, type TestDatabase } from './support/test-app.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const LIMIT = 3;

/**
 * Two instances on one PostgreSQL and one Redis; B reaches Redis through a proxy this test can
 * cut. Clients are told apart by `X-Forwarded-For` (TRUST_PROXY=1), each test with its own.
 */
describe('token endpoint rate limit across a cluster', () => {
  let database: TestDatabase;
  let a: TestApp;
  let b: TestApp;
  let api: { a: Api; b: Api };
  let proxy: Awaited<ReturnType<typeof startTcpProxy>>;
  const prefix = `sc-test-${randomBytes(4).toString('hex')}:`;
  const suffix = randomBytes(3).toString('hex');
  const redis = new Redis(REDIS_URL);

  beforeAll(async () => {
    database = await createTestDatabase();
    const redisUrl = new URL(REDIS_URL);
    proxy = await startTcpProxy(Number(redisUrl.port || 6379), redisUrl.hostname);
    const common = { REDIS_KEY_PREFIX: prefix, TRUST_PROXY: '1', AUTH_RATE_LIMIT_MAX: String(LIMIT), AUTH_RATE_LIMIT_WINDOW_MS: '60000' };
    a = await startApp(database, { ...common, REDIS_URL, INSTANCE_ID: `rl-a-${suffix}` });
    b = await startApp(database, { ...common, REDIS_URL: `redis://127.0.0.1:${proxy.port}`, INSTANCE_ID: `rl-b-${suffix}` });
    api = { a: new Api(a), b: new Api(b) };
  }, 60_000);

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await proxy?.close();
    redis.disconnect();
    await database?.drop();
  });

  let clients = 0;
  const newClient = () => `203.0.113.${++clients}`;
  const attempt = (via: Api, ip: string) =>
    via.request('POST', '/api/auth/token', {
      body: { email: 'nobody@test.signalcast', password: 'wrong-password' },
      headers: { 'x-forwarded-for': ip },
    });
  const statuses = async (...calls: [Api, string][]) => {
    const result = [];
    for (const [via, ip] of calls) result.push((await attempt(via, ip)).status);
    return result;
  };

  it('counts a client on every instance: after N attempts spread over both, the next is refused on either', async () => {
    const ip = newClient();
    expect(await statuses([api.a, ip], [api.b, ip], [api.a, ip])).toEqual([401, 401, 401]);
    for (const via of [api.b, api.a]) {
      const refused = await attempt(via, ip);
      expect(refused.status).toBe(429);
      expect(refused.body).toEqual({ code: 'rate_limited', message: 'Too many token requests; retry later' });
      // One attempt comes back every window / LIMIT = 20 s, counted from the last refill.
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(15);
      expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(20);
    }
    expect(await statuses([api.b, newClient()])).toEqual([401]);
    const key = `${prefix}rate:auth-token:${ip}`;
    expect(await redis.exists(key)).toBe(1);
    expect(await redis.pttl(key)).toBeGreaterThan(50_000);
  });

  it('limits each instance on its own while it cannot reach Redis, and the cluster again once it can', async () => {
    proxy.cut();
    const ip = newClient();
    // B counts in memory: still limited, never failing, but what B saw is not counted on A.
    expect(await statuses([api.b, ip], [api.b, ip], [api.b, ip], [api.b, ip])).toEqual([401, 401, 401, 429]);
    expect(await statuses([api.a, ip])).toEqual([401]);

    proxy.restore();
    // Once B asks Redis again, a client that spent its attempts on A is refused on B.
    await expect
      .poll(
        async () => {
          const fresh = newClient();
          await statuses(...Array.from({ length: LIMIT }, () => [api.a, fresh] as [Api, string]));
          return (await attempt(api.b, fresh)).status;
        },
        { timeout: 15_000, interval: 200 },
      )
      .toBe(429);
  });

  it("uses the instance's two Redis connections (no third one of its own), closed with the instance", async () => {
    const named = async () =>
      ((await redis.client('LIST')) as string)
        .split('\n')
        .flatMap((line) => /name=(signalcast-\S+-rl-a-\S+)/.exec(line)?.[1] ?? [])
        .filter((name) => name.endsWith(suffix))
        .sort();
    expect(await named()).toEqual([`signalcast-cmd-rl-a-${suffix}`, `signalcast-sub-rl-a-${suffix}`]);
    await a.close();
    await expect.poll(named).toEqual([]);
  });
});
