import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { MessageBus, type Unsubscribe } from '../bus/bus.types.js';
import { AppConfig } from '../config/app-config.js';
import { Metrics } from '../metrics/metrics.js';
import type { Tier } from '../generated/prisma/enums.js';
import { UsersRepository } from './users.repository.js';

/** Loads per lookup while bus recoveries keep making them stale; the last one answers as read. */
const MAX_LOADS = 3;

/**
 * Users' tiers, bounded and expiring. Misses are loaded in batches: however many users a
 * broadcast finds uncached, they cost one query. Tier changes arrive through the bus, from this
 * instance or any other, and replace the cached value at once.
 */
@Injectable()
export class TierCache implements OnModuleDestroy {
  private readonly cache: LRUCache<string, Tier>;
  /** When each user's tier last changed (a counter), so a load racing a change cannot undo it. */
  private readonly changedAt: LRUCache<string, number>;
  private changes = 0;
  /** The last flush (a bus recovery): a load that began before it may have read a missed change. */
  private flushedAt = 0;
  private readonly unsubscribes: Unsubscribe[];
  /** Users looked up and found cached / loaded from the database (a batch load counts each user). */
  private hits = 0;
  private misses = 0;

  constructor(
    private readonly users: UsersRepository,
    private readonly bus: MessageBus,
    config: AppConfig,
    metrics: Metrics,
  ) {
    metrics.total('signalcast_tier_cache_hits_total', 'Tier lookups answered from the cache (per user)', () => this.hits);
    metrics.total(
      'signalcast_tier_cache_misses_total',
      'Tier lookups that read the database (per user; one query per batch)',
      () => this.misses,
    );
    this.cache = new LRUCache({ max: config.get('TIER_CACHE_MAX'), ttl: config.get('TIER_CACHE_TTL_MS') });
    this.changedAt = new LRUCache({ max: config.get('TIER_CACHE_MAX') });
    this.unsubscribes = [
      bus.onUserChange(({ userId, tier }) => {
        if (tier === undefined) return;
        this.changedAt.set(userId, ++this.changes);
        this.cache.set(userId, tier);
      }),
      // Changes published while the bus was down were lost: start over from the database.
      bus.onRecover(() => {
        this.flushedAt = ++this.changes;
        for (const userId of this.cache.keys()) this.changedAt.set(userId, this.changes);
        this.cache.clear();
      }),
    ];
  }

  /**
   * Moves whenever a cached tier may have changed (a change arrived, or the cache was flushed):
   * read it before a lookup that spans several awaits, and ask `changedSince` at the end.
   */
  get generation(): number {
    return this.changes;
  }

  /** Whether any of these users' tiers changed (or was flushed) after `generation` was read. */
  changedSince(userIds: Iterable<string>, generation: number): boolean {
    if (this.changes === generation) return false;
    if (this.flushedAt > generation) return true;
    for (const id of userIds) if (!this.unchangedSince(id, generation)) return true;
    return false;
  }

  /** The cached tier, without loading. */
  peek(userId: string): Tier | undefined {
    return this.cache.get(userId);
  }

  /** One user's tier, loaded if needed; `undefined` if the user does not exist. */
  async get(userId: string): Promise<Tier | undefined> {
    return (await this.getMany([userId])).get(userId);
  }

  /**
   * One user's tier with every change answered anywhere in the cluster before this call applied:
   * the bus is fenced first (a change answered on another instance may still be on its way here).
   * For whatever gates what a user is sent from stored history (a replay, a listing), which no bus
   * message orders behind the change. If the fence fails, the bus counts as down and the tier is
   * read from the database.
   */
  async current(userId: string): Promise<Tier | undefined> {
    await this.bus.fence().catch(() => undefined);
    return this.get(userId);
  }

  /**
   * Tiers of many users; the uncached ones are loaded in one query. Unknown users are absent.
   * The answer is read from the cache after the load, so a tier change that arrived while the
   * query ran (for any of the users) is what the caller sees. A bus recovery while a load ran
   * (the cache was flushed: a change may have been missed) makes that load stale and drops the
   * users that were cached: all of them are read again, never answered as "no such user". If
   * recoveries keep coming, the third load's answer (the database's) is the answer.
   */
  async getMany(userIds: Iterable<string>): Promise<Map<string, Tier>> {
    const ids = [...new Set(userIds)];
    /** What the last load read for each user (`undefined`: no such user), and when it began. */
    const loaded = new Map<string, { tier: Tier | undefined; at: number }>();
    const holds = (id: string) => {
      const load = loaded.get(id);
      return load !== undefined && this.unchangedSince(id, load.at);
    };
    // While the shared bus is down, tier changes made on other instances cannot reach this one: no
    // cached tier is trusted, every lookup reads the database (still one query for all the users).
    let missing = this.bus.status() === 'down' ? ids : ids.filter((id) => !this.cache.has(id));
    this.hits += ids.length - missing.length;
    this.misses += missing.length;
    for (let loads = 1; missing.length > 0; loads++) {
      const at = this.changes;
      const tiers = await this.users.findTiers(missing);
      for (const id of missing) {
        const tier = tiers.get(id);
        loaded.set(id, { tier, at });
        if (tier !== undefined && this.unchangedSince(id, at)) this.cache.set(id, tier);
      }
      if (loads === MAX_LOADS) break;
      missing = ids.filter((id) => !this.cache.has(id) && !holds(id));
    }
    const found = new Map<string, Tier>();
    for (const id of ids) {
      const tier = this.cache.get(id) ?? loaded.get(id)?.tier;
      if (tier) found.set(id, tier);
    }
    return found;
  }

  /** No change to this user's tier, and no flush, after `generation`: a load begun then still holds. */
  private unchangedSince(userId: string, generation: number): boolean {
    return this.flushedAt <= generation && (this.changedAt.get(userId) ?? 0) <= generation;
  }

  onModuleDestroy(): void {
    for (const unsubscribe of this.unsubscribes) unsubscribe();
  }
}
