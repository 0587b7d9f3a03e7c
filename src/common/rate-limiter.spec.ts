import { describe, expect, it } from 'vitest';
import { describeRateLimiterContract } from './rate-limiter.contract.js';
import { clientKey, InMemoryRateLimiter } from './rate-limiter.js';

describeRateLimiterContract('in-memory', async (capacity, windowMs) => ({
  limiter: new InMemoryRateLimiter(capacity, windowMs),
  close: async () => undefined,
}));

describe('InMemoryRateLimiter', () => {
  it('gives a refused key its token back after the wait it announced', async () => {
    let now = 0;
    const limiter = new InMemoryRateLimiter(3, 60_000, 100, () => now);
    for (let i = 0; i < 3; i++) await limiter.take('a');
    expect(await limiter.take('a')).toEqual({ allowed: false, retryAfterSeconds: 20 });
    now += 20_000;
    expect((await limiter.take('a')).allowed).toBe(true);
    expect((await limiter.take('a')).allowed).toBe(false);
  });

  it('keeps a bounded number of keys', async () => {
    const limiter = new InMemoryRateLimiter(1, 1000, 2, () => 0);
    await limiter.take('a');
    await limiter.take('b');
    await limiter.take('c');
    // 'a' was evicted, so it starts with a full bucket again
    expect((await limiter.take('a')).allowed).toBe(true);
    expect((await limiter.take('c')).allowed).toBe(false);
  });
});

describe('clientKey', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:abcd:1:2:3', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
  ])('counts %s as %s', (ip, key) => expect(clientKey(ip)).toBe(key));
});
