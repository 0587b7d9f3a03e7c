import { Logger } from '@nestjs/common';
import type { Result } from 'ioredis';
import { ClusterState, type InstanceSnapshot } from './bus.types.js';
import type { RedisClients } from './redis-clients.js';

/**
 * The membership index: drops the members whose last report is `ttl_ms` old or older, marks
 * `instance_id` (when given) as reporting now, and returns the live members. Report times are on
 * Redis's clock, so the instances' clocks need not agree. The set expires with its newest member.
 */
const MEMBERS_SCRIPT = `
local ttl_ms = tonumber(ARGV[1])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl_ms)
if ARGV[2] then
  redis.call('ZADD', KEYS[1], now, ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ttl_ms)
end
return redis.call('ZRANGE', KEYS[1], 0, -1)
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** `MEMBERS_SCRIPT`, defined on the command connection by `RedisClusterState`. */
    clusterMembers(key: string, ttlMs: number, reporting?: string): Result<string[], Context>;
  }
}

/**
 * Cluster state in Redis:
 * - `<prefix>instances`: the live instances, a sorted set scored by each one's last report time,
 *   so finding the other instances (on every socket connect, for the per-user cap) reads one key
 *   instead of scanning the keyspace;
 * - `<prefix>instance:<id>`: the instance's latest snapshot (string, TTL);
 * - `<prefix>sockets:<id>`: user id → sockets on that instance (hash, TTL refreshed by `report`).
 * An instance that stops reporting drops out of the set after the TTL, and its keys expire.
 * Each instance also keeps its own counts in memory: they answer for itself while Redis is down
 * and rewrite its hash when Redis comes back.
 */
export class RedisClusterState extends ClusterState {
  private readonly logger = new Logger('ClusterState');
  private readonly local = new Map<string, number>();
  private readonly membersKey: string;
  private latest?: InstanceSnapshot;
  /**
   * The hash of this instance's socket counts must be rewritten from `local`: a write to it failed,
   * or the connection dropped. It is also rewritten at the first report (a predecessor with the same
   * id may have left its counts) and after a gap long enough for the hash to have expired.
   */
  private needsResync = true;
  /** When the last report that Redis applied in full was sent (this process's clock). */
  private reportedAt = 0;

  constructor(
    private readonly redis: RedisClients,
    private readonly prefix: string,
    readonly instanceId: string,
    private readonly ttlMs: number,
  ) {
    super();
    this.membersKey = `${prefix}instances`;
    redis.command.on('close', () => (this.needsResync = true));
    redis.command.defineCommand('clusterMembers', { numberOfKeys: 1, lua: MEMBERS_SCRIPT });
  }

  private socketsKey(instanceId = this.instanceId): string {
    return `${this.prefix}sockets:${instanceId}`;
  }

  private snapshotKey(instanceId = this.instanceId): string {
    return `${this.prefix}instance:${instanceId}`;
  }

  socketOpened(userId: string): void {
    this.local.set(userId, (this.local.get(userId) ?? 0) + 1);
    this.redis.command.hincrby(this.socketsKey(), userId, 1).catch(() => (this.needsResync = true));
  }

  socketClosed(userId: string): void {
    const left = (this.local.get(userId) ?? 0) - 1;
    if (left > 0) this.local.set(userId, left);
    else this.local.delete(userId);
    const key = this.socketsKey();
    const command = left > 0 ? this.redis.command.hset(key, userId, left) : this.redis.command.hdel(key, userId);
    command.catch(() => (this.needsResync = true));
  }

  async userSockets(userId: string): Promise<number> {
    const mine = this.local.get(userId) ?? 0;
    try {
      const others = await this.otherInstanceIds();
      if (others.length === 0) return mine;
      const pipeline = this.redis.command.pipeline();
      for (const id of others) pipeline.hget(this.socketsKey(id), userId);
      return mine + resultsOf<string | null>(await pipeline.exec()).reduce((sum, value) => sum + Number(value ?? 0), 0);
    } catch (error) {
      this.logger.warn(`Cluster socket count unavailable, using this instance's: ${(error as Error).message}`);
      return mine;
    }
  }

  async connectedUsers(): Promise<Set<string>> {
    const users = new Set(this.local.keys());
    try {
      const others = await this.otherInstanceIds();
      if (others.length > 0) {
        const pipeline = this.redis.command.pipeline();
        for (const id of others) pipeline.hkeys(this.socketsKey(id));
        for (const userIds of resultsOf<string[]>(await pipeline.exec())) for (const userId of userIds) users.add(userId);
      }
    } catch (error) {
      this.logger.warn(`Cluster users unavailable: ${(error as Error).message}`);
    }
    return users;
  }

  async report(snapshot: InstanceSnapshot): Promise<void> {
    this.latest = snapshot;
    const sentAt = Date.now();
    // Half the TTL: the hash expires a TTL after the last applied report, wherever the clocks are.
    const resync = this.needsResync || sentAt - this.reportedAt >= this.ttlMs / 2;
    try {
      const multi = this.redis.command.multi();
      multi.set(this.snapshotKey(), JSON.stringify(snapshot), 'PX', this.ttlMs);
      if (resync) {
        // Cleared now: a write that fails while this report is under way sets it again.
        this.needsResync = false;
        multi.del(this.socketsKey());
        if (this.local.size > 0) multi.hset(this.socketsKey(), Object.fromEntries(this.local));
      }
      multi.pexpire(this.socketsKey(), this.ttlMs);
      multi.clusterMembers(this.membersKey, this.ttlMs, this.instanceId);
      // A transaction answers even when a command inside it failed: each reply is checked.
      resultsOf(await multi.exec());
      this.reportedAt = sentAt;
    } catch (error) {
      this.needsResync = true;
      this.logger.debug(`Cluster report failed (retried at the next report): ${(error as Error).message}`);
    }
  }

  async instances(): Promise<InstanceSnapshot[]> {
    const mine = this.latest ? [this.latest] : [];
    try {
      const ids = await this.otherInstanceIds();
      if (ids.length === 0) return mine;
      // Socket counts come from the live hashes, not the periodic snapshot, so they add up now.
      const pipeline = this.redis.command.pipeline();
      for (const id of ids) pipeline.get(this.snapshotKey(id)).hvals(this.socketsKey(id));
      const results = resultsOf<string | string[] | null>(await pipeline.exec());
      const others = ids.flatMap((_, i) => {
        const value = results[2 * i] as string | null;
        if (!value) return []; // expired between the two reads
        const other = JSON.parse(value) as InstanceSnapshot;
        const perUser = (results[2 * i + 1] as string[]).map(Number).filter((n) => n > 0);
        other.total_connections = perUser.reduce((sum, n) => sum + n, 0);
        other.active_users = perUser.length;
        return [other];
      });
      return [...mine, ...others].sort((a, b) => a.instance_id.localeCompare(b.instance_id));
    } catch (error) {
      this.logger.warn(`Cluster instances unavailable: ${(error as Error).message}`);
      return mine;
    }
  }

  async leave(): Promise<void> {
    this.latest = undefined;
    await this.redis.command
      .multi()
      .zrem(this.membersKey, this.instanceId)
      .del(this.snapshotKey(), this.socketsKey())
      .exec()
      .catch(() => undefined);
  }

  /** The live instances other than this one (this one answers from memory). */
  private async otherInstanceIds(): Promise<string[]> {
    return (await this.redis.command.clusterMembers(this.membersKey, this.ttlMs)).filter((id) => id !== this.instanceId);
  }
}

/** A pipeline's replies, or its first error. */
function resultsOf<T>(results: [Error | null, unknown][] | null): T[] {
  return (results ?? []).map(([error, value]) => {
    if (error) throw error;
    return value as T;
  });
}
