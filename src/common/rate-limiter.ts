import { LRUCache } from 'lru-cache';

export interface TakeResult {
  allowed: boolean;
  /** Seconds until one token is available again (0 when allowed). */
  retryAfterSeconds: number;
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
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - this.tokens) / this.refillPerMs / 1000)) };
  }
}

/**
 * A token bucket per key. The keys live in a bounded LRU, so a flood of distinct clients cannot
 * grow memory without bound.
 */
export class RateLimiter {
  private readonly buckets: LRUCache<string, TokenBucket>;

  constructor(
    private readonly capacity: number,
    private readonly windowMs: number,
    maxKeys = 100_000,
    private readonly now: () => number = Date.now,
  ) {
    this.buckets = new LRUCache({ max: maxKeys });
  }

  take(key: string): TakeResult {
    let bucket = this.buckets.get(key);
    if (!bucket) this.buckets.set(key, (bucket = new TokenBucket(this.capacity, this.windowMs, this.now)));
    return bucket.take();
  }
}
