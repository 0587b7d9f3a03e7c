import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { RateLimiter } from './rate-limiter.js';

export interface RateLimiterFixture {
  limiter: RateLimiter;
  close(): Promise<void>;
}

/** Shared by every implementation, on the real clock; `make` builds a limiter with that limit. */
export function describeRateLimiterContract(name: string, make: (capacity: number, windowMs: number) => Promise<RateLimiterFixture>): void {
  describe(`${name}: RateLimiter contract`, () => {
    const opened: RateLimiterFixture[] = [];
    const limiter = async (capacity: number, windowMs: number) => {
      const fixture = await make(capacity, windowMs);
      opened.push(fixture);
      return fixture.limiter;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((fixture) => fixture.close()));
    });
    // Keys are unique per test: a shared store (Redis) must not carry one test's counts into another.
    const key = () => `client-${randomBytes(4).toString('hex')}`;

    it('allows a burst of capacity, then refuses with the whole seconds until the next token', async () => {
      const limit = await limiter(3, 60_000);
      const client = key();
      const results = [];
      for (let i = 0; i < 4; i++) results.push(await limit.take(client));
      expect(results.map((r) => r.allowed)).toEqual([true, true, true, false]);
      expect(results[0]).toEqual({ allowed: true, retryAfterSeconds: 0 });
      // One token every 20 s.
      expect(results[3]).toEqual({ allowed: false, retryAfterSeconds: 20 });
    });

    it('counts each key on its own', async () => {
      const limit = await limiter(1, 60_000);
      const [a, b] = [key(), key()];
      expect((await limit.take(a)).allowed).toBe(true);
      expect((await limit.take(a)).allowed).toBe(false);
      expect((await limit.take(b)).allowed).toBe(true);
    });

    it('refills evenly over the window', async () => {
      const limit = await limiter(2, 400);
      const client = key();
      expect((await limit.take(client)).allowed).toBe(true);
      expect((await limit.take(client)).allowed).toBe(true);
      expect(await limit.take(client)).toEqual({ allowed: false, retryAfterSeconds: 1 });
      await sleep(250); // one token back (after 200 ms), not two
      expect((await limit.take(client)).allowed).toBe(true);
      expect((await limit.take(client)).allowed).toBe(false);
    });

    it('never lets concurrent requests past the capacity', async () => {
      const limit = await limiter(5, 60_000);
      const client = key();
      const results = await Promise.all(Array.from({ length: 20 }, () => limit.take(client)));
      expect(results.filter((r) => r.allowed)).toHaveLength(5);
    });
  });
}
