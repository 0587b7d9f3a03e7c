import { isIPv6 } from 'node:net';
import { LRUCache } from 'lru-cache';

export interface TakeResult {
  allowed: boolean;
  /** Seconds until one token is available again (0 when allowed). */
  retryAfterSeconds: number;
}

/** Whole seconds to wait for the next token, at least 1: what `Retry-After` says. */
export function retryAfterSeconds(waitMs: number): number {
  return Math.max(1, Math.ceil(waitMs / 1000));
}

/** `capacity` requests at once, refilled evenly at `capacity / windowMs`. */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;
  private readonly refillPerMs: number;

  constructor(
    private readonly capacity: number,
    windowMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.refillPerMs = capacity / windowMs;
    this.tokens = capacity;
    this.updatedAt = now();
  }

  /** `burst` at once, refilled at `perSecond`. */
  static perSecond(perSecond: number, burst: number): TokenBucket {
    return new TokenBucket(burst, (burst / perSecond) * 1000);
  }

  take(): TakeResult {
    const now = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.updatedAt) * this.refillPerMs);
    this.updatedAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { allowed: true, retryAfterSeconds: 0 };
    }
    return { allowed: false, retryAfterSeconds: retryAfterSeconds((1 - this.tokens) / this.refillPerMs) };
  }
}

/**
 * Whom a per-client limit counts: an IPv4 address, or an IPv6 address's /64 network (one host is
 * usually given a whole /64, and could otherwise take a fresh address for every request).
 */
export function clientKey(ip: string): string {
  if (!isIPv6(ip)) return ip;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1]!;
  const [head = '', tail = ''] = ip.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(':')}::/64`;
}

/**
 * A token bucket per key (e.g. a client IP): `capacity` requests at once, refilled evenly over
 * `windowMs`. Implementations: `InMemoryRateLimiter` (one instance) and `RedisRateLimiter` (every
 * instance sharing one Redis); `rate-limiter.contract.ts` checks both.
 */
export abstract class RateLimiter {
  abstract take(key: string): Promise<TakeResult>;
}

/**
 * The buckets in this process. The keys live in a bounded LRU, so a flood of distinct clients
 * cannot grow memory without bound.
 */
export class InMemoryRateLimiter extends RateLimiter {
  private readonly buckets: LRUCache<string, TokenBucket>;

  constructor(
    private readonly capacity: number,
    private readonly windowMs: number,
    maxKeys = 100_000,
    private readonly now: () => number = Date.now,
  ) {
    super();
    this.buckets = new LRUCache({ max: maxKeys });
  }

  async take(key: string): Promise<TakeResult> {
    let bucket = this.buckets.get(key);
    if (!bucket) this.buckets.set(key, (bucket = new TokenBucket(this.capacity, this.windowMs, this.now)));
    return bucket.take();
  }
}
