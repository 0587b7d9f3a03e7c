import { Logger } from '@nestjs/common';
import type { Redis, Result } from 'ioredis';
import { InMemoryRateLimiter, RateLimiter, retryAfterSeconds, type TakeResult } from './rate-limiter.js';

/**
 * One bucket: a hash (`tokens`, `updated_ms`) read, refilled and taken from in one script, so two
 * instances can never both take the last token. The clock is Redis's (`TIME`), so the instances'
 * clocks need not agree. The key expires when the bucket would be full again: no key, full bucket.
 * Returns 0 when a token was taken, else the milliseconds until the next one.
 */
const TAKE_SCRIPT = `
local capacity = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local refill_per_ms = capacity / window_ms
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local tokens = capacity
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated_ms')
if state[1] then
  tokens = math.min(capacity, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * refill_per_ms)
end
local wait_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait_ms = math.ceil((1 - tokens) / refill_per_ms)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated_ms', tostring(now))
redis.call('PEXPIRE', KEYS[1], window_ms)
return wait_ms
`;

/** How long a starting instance waits for its first connection before counting in memory. */
const FIRST_CONNECTION_WAIT_MS = 1_000;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** `TAKE_SCRIPT`, defined on the connection by `RedisRateLimiter`. */
    takeToken(key: string, capacity: number, windowMs: number): Result<number, Context>;
  }
}

export interface RedisRateLimiterOptions {
  /** Prepended to every key, e.g. `signalcast:rate:auth-token:`. */
  keyPrefix: string;
  capacity: number;
  windowMs: number;
}

/**
 * The same buckets for every instance on one Redis, on the instance's command connection
 * (`RedisClients.command`, owned and closed by the bus): it fails fast while Redis is down and
 * never sends a command again after a reconnect, so a late take cannot count a request already
 * answered.
 *
 * While Redis cannot be reached (or does not answer within the command timeout), each instance
 * limits on its own, in memory, with the same capacity and window: a cluster of N instances then
 * allows up to N times the limit. That is deliberate. Refusing every request would turn a Redis
 * outage into a login outage, and letting every request through would drop the brute-force limit
 * exactly when Redis is away. The switch is logged once each way (a warning when it starts, a line
 * when Redis answers again); Redis's buckets then apply again, and what the instances counted
 * meanwhile is not carried over.
 */
export class RedisRateLimiter extends RateLimiter {
  private readonly logger = new Logger('RateLimiter');
  private readonly fallback: InMemoryRateLimiter;
  private degraded = false;
  /**
   * Settles when the connection is ready, or after a second if it is not: the requests of a
   * starting instance wait for Redis instead of being counted in memory.
   */
  private readonly firstConnection: Promise<unknown>;

  constructor(
    private readonly redis: Redis,
    private readonly options: RedisRateLimiterOptions,
  ) {
    super();
    this.fallback = new InMemoryRateLimiter(options.capacity, options.windowMs);
    redis.defineCommand('takeToken', { numberOfKeys: 1, lua: TAKE_SCRIPT });
    this.firstConnection =
      redis.status === 'ready'
        ? Promise.resolve()
        : new Promise((resolve) => {
            redis.once('ready', resolve);
            setTimeout(resolve, FIRST_CONNECTION_WAIT_MS).unref();
          });
  }

  async take(key: string): Promise<TakeResult> {
    const { keyPrefix, capacity, windowMs } = this.options;
    await this.firstConnection;
    let waitMs: number;
    try {
      waitMs = Number(await this.redis.takeToken(keyPrefix + key, capacity, windowMs));
    } catch (error) {
      if (!this.degraded) {
        this.degraded = true;
        this.logger.warn(`Redis unavailable (${(error as Error).message}): rate limits apply per instance until it is back`);
      }
      return this.fallback.take(key);
    }
    if (this.degraded) {
      this.degraded = false;
      this.logger.log('Redis answers again: rate limits apply across the cluster');
    }
    return waitMs === 0 ? { allowed: true, retryAfterSeconds: 0 } : { allowed: false, retryAfterSeconds: retryAfterSeconds(waitMs) };
  }
}
