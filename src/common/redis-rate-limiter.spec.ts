import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { startTcpProxy } from '../../test/support/tcp-proxy.js';
import { RedisClients } from '../bus/redis-clients.js';
import { describeRateLimiterContract } from './rate-limiter.contract.js';
import { RedisRateLimiter } from './redis-rate-limiter.js';

/** Real Redis (127.0.0.1:6379, or TEST_REDIS_URL); each limiter group gets its own key prefix. */
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const newPrefix = () => `sc-test-${randomBytes(4).toString('hex')}:rate:`;

/** A limiter on an instance's own command connection, as `AuthModule` makes it. */
function redisLimiter(capacity: number, windowMs: number, keyPrefix = newPrefix(), url = REDIS_URL) {
  const clients = new RedisClients(url, `rate-test-${randomBytes(3).toString('hex')}`);
  return { limiter: new RedisRateLimiter(clients.command, { keyPrefix, capacity, windowMs }), clients, close: () => clients.close() };
}

describeRateLimiterContract('redis', async (capacity, windowMs) => redisLimiter(capacity, windowMs));

describe('RedisRateLimiter', () => {
  const redis = new Redis(REDIS_URL);
  const opened: ReturnType<typeof redisLimiter>[] = [];
  const limiter = (...args: Parameters<typeof redisLimiter>) => {
    const created = redisLimiter(...args);
    opened.push(created);
    return created.limiter;
  };
  afterEach(async () => {
    vi.restoreAllMocks();
    await Promise.all(opened.splice(0).map((l) => l.close()));
  });
  afterAll(() => redis.disconnect());

  /** The limiter's own warnings (the connection's are the bus's `Redis` logger's). */
  const limiterWarnings = (warn: MockInstance) => warn.mock.calls.filter(([message]) => /rate limits/.test(String(message)));

  it('takes on a connection already in use at once, without waiting for a first connection', async () => {
    const clients = new RedisClients(REDIS_URL, 'rate-test-shared');
    try {
      await new Promise((resolve) => clients.command.once('ready', resolve));
      const shared = new RedisRateLimiter(clients.command, { keyPrefix: newPrefix(), capacity: 2, windowMs: 60_000 });
      const started = performance.now();
      expect((await shared.take('ip')).allowed).toBe(true);
      expect(performance.now() - started).toBeLessThan(500);
    } finally {
      await clients.close();
    }
  });

  it('shares each bucket between instances on one prefix, concurrent requests included', async () => {
    const prefix = newPrefix();
    const [a, b] = [limiter(3, 60_000, prefix), limiter(3, 60_000, prefix)];
    const taken = [await a.take('ip'), await b.take('ip'), await a.take('ip'), await b.take('ip'), await a.take('ip')];
    expect(taken.map((r) => r.allowed)).toEqual([true, true, true, false, false]);

    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).take('burst')));
    expect(results.filter((r) => r.allowed)).toHaveLength(3);
    // Another prefix is another cluster.
    expect((await limiter(3, 60_000).take('ip')).allowed).toBe(true);
  });

  it('keeps a bucket as one key under the prefix, expiring when it would be full again', async () => {
    const prefix = newPrefix();
    await limiter(5, 30_000, prefix).take('203.0.113.9');
    expect(await redis.keys(`${prefix}*`)).toEqual([`${prefix}203.0.113.9`]);
    const ttl = await redis.pttl(`${prefix}203.0.113.9`);
    expect(ttl).toBeGreaterThan(29_000);
    expect(ttl).toBeLessThanOrEqual(30_000);
  });

  it('limits in memory, per instance, while Redis cannot be reached, and says so once', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const closedPort = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const offline = limiter(2, 60_000, newPrefix(), `redis://127.0.0.1:${closedPort}`);
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await offline.take('ip'));
    expect(results).toEqual([
      { allowed: true, retryAfterSeconds: 0 },
      { allowed: true, retryAfterSeconds: 0 },
      { allowed: false, retryAfterSeconds: 30 },
      { allowed: false, retryAfterSeconds: 30 },
    ]);
    expect(limiterWarnings(warn)).toHaveLength(1);
    expect(limiterWarnings(warn)[0]![0]).toMatch(/Redis unavailable .*per instance/);
  });

  it("goes back to Redis's buckets when Redis answers again", async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const log = vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const proxy = await startTcpProxy(Number(new URL(REDIS_URL).port || 6379), new URL(REDIS_URL).hostname);
    try {
      const limited = limiter(2, 60_000, newPrefix(), `redis://127.0.0.1:${proxy.port}`);
      expect((await limited.take('ip')).allowed).toBe(true); // Redis: one token left

      proxy.cut();
      const during = [];
      for (let i = 0; i < 3; i++) during.push((await limited.take('ip')).allowed);
      expect(during).toEqual([true, true, false]); // a fresh bucket in memory
      expect(limiterWarnings(warn)).toHaveLength(1);

      proxy.restore();
      // Other keys probe until a take reaches Redis again.
      await expect
        .poll(async () => (await limited.take(`probe-${randomBytes(2).toString('hex')}`), log.mock.calls.length), { timeout: 10_000 })
        .toBe(1);
      expect(log.mock.calls[0]![0]).toMatch(/Redis answers again/);
      expect((await limited.take('ip')).allowed).toBe(true); // Redis's bucket: its last token
      expect((await limited.take('ip')).allowed).toBe(false);
      expect(limiterWarnings(warn)).toHaveLength(1);
    } finally {
      await proxy.close();
    }
  });
});
