import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { InProcessBus } from '../bus/in-process.bus.js';
import type { AppConfig } from '../config/app-config.js';
import type { Tier } from '../generated/prisma/enums.js';
import { Metrics } from '../metrics/metrics.js';
import { strictMock } from '../testing/strict-mock.js';
import { TierCache } from './tier-cache.service.js';
import type { UsersRepository } from './users.repository.js';

/** A bus whose shared transport can be taken down. */
class OutageBus extends InProcessBus {
  down = false;
  private readonly recovered: (() => void)[] = [];
  override status() {
    return this.down ? ('down' as const) : super.status();
  }
  override onRecover(handler: () => void) {
    this.recovered.push(handler);
    return () => undefined;
  }
  /** The shared transport came back: what was published meanwhile may have been missed. */
  recover(): void {
    for (const handler of this.recovered) handler();
  }
}

function setup(tiers: Record<string, Tier>, ttlMs = 60_000) {
  const users = strictMock<UsersRepository>({
    findTiers: async (ids: readonly string[]) => new Map(ids.filter((id) => tiers[id]).map((id) => [id, tiers[id]!])),
  });
  const config = strictMock<AppConfig>({
    get: ((key: string) => ({ TIER_CACHE_MAX: 100, TIER_CACHE_TTL_MS: ttlMs })[key]) as AppConfig['get'],
  });
  const bus = new OutageBus();
  return { cache: new TierCache(users, bus, config, new Metrics()), users, bus };
}

describe('TierCache', () => {
  it('loads all uncached users of a request in one query, then serves them from memory', async () => {
    const { cache, users } = setup({ a: 'free', b: 'pro', c: 'elite' });
    expect(await cache.getMany(['a', 'b', 'c', 'ghost'])).toEqual(
      new Map([
        ['a', 'free'],
        ['b', 'pro'],
        ['c', 'elite'],
      ]),
    );
    expect(users.findTiers).toHaveBeenCalledTimes(1);
    expect(users.findTiers).toHaveBeenCalledWith(['a', 'b', 'c', 'ghost']);

    await cache.getMany(['a', 'b', 'c']);
    expect(users.findTiers).toHaveBeenCalledTimes(1);
    await cache.getMany(['a', 'd']);
    expect(users.findTiers).toHaveBeenLastCalledWith(['d']);
  });

  it('expires entries after the TTL', async () => {
    const { cache, users } = setup({ a: 'pro' }, 30);
    await cache.get('a');
    expect(cache.peek('a')).toBe('pro');
    await sleep(60);
    expect(cache.peek('a')).toBeUndefined();
    await cache.get('a');
    expect(users.findTiers).toHaveBeenCalledTimes(2);
  });

  it('takes tier changes from the bus at once', async () => {
    const { cache, bus, users } = setup({ a: 'elite' });
    await cache.get('a');
    await bus.publishUserChange({ userId: 'a', tier: 'free' });
    expect(await cache.get('a')).toBe('free');
    expect(users.findTiers).toHaveBeenCalledTimes(1);
  });

  it('does not let a load that raced a tier change overwrite the change', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { cache, bus, users } = setup({ a: 'elite' });
    users.findTiers.mockImplementationOnce(async () => {
      await gate;
      return new Map([['a', 'elite' as Tier]]);
    });
    const pending = cache.get('a');
    await bus.publishUserChange({ userId: 'a', tier: 'free' });
    release();
    expect(await pending).toBe('free');
    expect(cache.peek('a')).toBe('free');
  });

  it('reads the database instead of the cache while the shared bus is down (changes elsewhere cannot reach it)', async () => {
    const tiers: Record<string, Tier> = { a: 'pro', b: 'elite' };
    const { cache, bus, users } = setup(tiers);
    await cache.getMany(['a', 'b']);
    bus.down = true;
    tiers.a = 'free'; // downgraded through another instance, whose message is lost
    expect(await cache.getMany(['a', 'b'])).toEqual(
      new Map([
        ['a', 'free'],
        ['b', 'elite'],
      ]),
    );
    expect(users.findTiers).toHaveBeenCalledTimes(2);
    expect(users.findTiers).toHaveBeenLastCalledWith(['a', 'b']);
    bus.down = false;
    await cache.getMany(['a', 'b']);
    expect(users.findTiers).toHaveBeenCalledTimes(2);
  });

  it('reads again a tier whose load a bus recovery made stale, instead of answering that the user does not exist', async () => {
    const { cache, bus, users } = setup({ a: 'pro' });
    users.findTiers.mockImplementationOnce(async () => {
      bus.recover();
      return new Map([['a', 'pro' as Tier]]);
    });
    expect(await cache.get('a')).toBe('pro');
    expect(users.findTiers).toHaveBeenCalledTimes(2);
  });

  it('reads again a user who was cached when the call began if a recovery flushed the cache while others loaded', async () => {
    const { cache, bus, users } = setup({ a: 'pro', b: 'elite' });
    await cache.get('a');
    users.findTiers.mockImplementationOnce(async () => {
      bus.recover();
      return new Map([['b', 'elite' as Tier]]);
    });
    expect(await cache.getMany(['a', 'b'])).toEqual(
      new Map([
        ['a', 'pro'],
        ['b', 'elite'],
      ]),
    );
  });

  it('answers from the database, without looping, when recoveries keep making every load stale', async () => {
    const { cache, bus, users } = setup({ a: 'pro' });
    users.findTiers.mockImplementation(async () => {
      bus.recover();
      return new Map([['a', 'pro' as Tier]]);
    });
    expect(await cache.get('a')).toBe('pro');
    expect(users.findTiers.mock.calls.length).toBeLessThanOrEqual(3);
  });
});
