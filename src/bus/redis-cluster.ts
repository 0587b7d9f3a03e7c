import { Logger } from '@nestjs/common';
import { ClusterState, type InstanceSnapshot } from './bus.types.js';
import type { RedisClients } from './redis-clients.js';

/**
 * Cluster state in Redis, all of it expiring, so a dead instance drops out by itself:
 * - `<prefix>instance:<id>`: the instance's latest snapshot (string, TTL);
 * - `<prefix>sockets:<id>`: user id → sockets on that instance (hash, TTL refreshed by `report`).
 * Each instance also keeps its own counts in memory: they answer for itself while Redis is down
 * and rewrite its hash when Redis comes back.
 */
export class RedisClusterState extends ClusterState {
  private readonly logger = new Logger('ClusterState');
  private readonly local = new Map<string, number>();
  private latest?: InstanceSnapshot;
  private needsResync = false;

  constructor(
    private readonly redis: RedisClients,
    private readonly prefix: string,
    readonly instanceId: string,
    private readonly ttlMs: number,
  ) {
    super();
    redis.command.on('close', () => (this.needsResync = true));
  }

  private get socketsKey(): string {
    return `${this.prefix}sockets:${this.instanceId}`;
  }

  socketOpened(userId: string): void {
    this.local.set(userId, (this.local.get(userId) ?? 0) + 1);
    this.redis.command.hincrby(this.socketsKey, userId, 1).catch(() => (this.needsResync = true));
  }

  socketClosed(userId: string): void {
    const left = (this.local.get(userId) ?? 0) - 1;
    if (left > 0) this.local.set(userId, left);
    else this.local.delete(userId);
    const command = left > 0 ? this.redis.command.hset(this.socketsKey, userId, left) : this.redis.command.hdel(this.socketsKey, userId);
    command.catch(() => (this.needsResync = true));
  }

  async userSockets(userId: string): Promise<number> {
    const mine = this.local.get(userId) ?? 0;
    try {
      const others = (await this.liveInstanceIds()).filter((id) => id !== this.instanceId);
      if (others.length === 0) return mine;
      const pipeline = this.redis.command.pipeline();
      for (const id of others) pipeline.hget(`${this.prefix}sockets:${id}`, userId);
      const results = (await pipeline.exec()) ?? [];
      return mine + results.reduce((sum, [, value]) => sum + Number(value ?? 0), 0);
    } catch (error) {
      this.logger.warn(`Cluster socket count unavailable, using this instance's: ${(error as Error).message}`);
      return mine;
    }
  }

  async connectedUsers(): Promise<Set<string>> {
    const users = new Set(this.local.keys());
    try {
      for (const id of await this.liveInstanceIds()) {
        if (id === this.instanceId) continue;
        for (const userId of await this.redis.command.hkeys(`${this.prefix}sockets:${id}`)) users.add(userId);
      }
    } catch (error) {
      this.logger.warn(`Cluster users unavailable: ${(error as Error).message}`);
    }
    return users;
  }

  async report(snapshot: InstanceSnapshot): Promise<void> {
    this.latest = snapshot;
    try {
      const multi = this.redis.command.multi();
      multi.set(`${this.prefix}instance:${this.instanceId}`, JSON.stringify(snapshot), 'PX', this.ttlMs);
      if (this.needsResync) {
        multi.del(this.socketsKey);
        if (this.local.size > 0) multi.hset(this.socketsKey, Object.fromEntries(this.local));
      }
      multi.pexpire(this.socketsKey, this.ttlMs);
      await multi.exec();
      this.needsResync = false;
    } catch (error) {
      this.needsResync = true;
      this.logger.debug(`Cluster report failed: ${(error as Error).message}`);
    }
  }

  async instances(): Promise<InstanceSnapshot[]> {
    const mine = this.latest ? [this.latest] : [];
    try {
      const keys = (await this.instanceKeys()).filter((key) => !key.endsWith(`:${this.instanceId}`));
      if (keys.length === 0) return mine;
      const values = await this.redis.command.mget(keys);
      const others = values.flatMap((value) => (value ? [JSON.parse(value) as InstanceSnapshot] : []));
      // Socket counts come from the live hashes, not the periodic snapshot, so they add up now.
      const pipeline = this.redis.command.pipeline();
      for (const other of others) pipeline.hvals(`${this.prefix}sockets:${other.instance_id}`);
      const counts = (await pipeline.exec()) ?? [];
      others.forEach((other, i) => {
        const perUser = ((counts[i]?.[1] as string[] | undefined) ?? []).map(Number).filter((n) => n > 0);
        other.total_connections = perUser.reduce((sum, n) => sum + n, 0);
        other.active_users = perUser.length;
      });
      return [...mine, ...others].sort((a, b) => a.instance_id.localeCompare(b.instance_id));
    } catch (error) {
      this.logger.warn(`Cluster instances unavailable: ${(error as Error).message}`);
      return mine;
    }
  }

  async leave(): Promise<void> {
    await this.redis.command.del(`${this.prefix}instance:${this.instanceId}`, this.socketsKey).catch(() => undefined);
  }

  private async liveInstanceIds(): Promise<string[]> {
    const marker = `${this.prefix}instance:`;
    return (await this.instanceKeys()).map((key) => key.slice(marker.length));
  }

  private async instanceKeys(): Promise<string[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.command.scan(cursor, 'MATCH', `${this.prefix}instance:*`, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    return keys;
  }
}
