import { z } from 'zod';

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((value) => value === 'true' || value === '1' || value === 'yes');
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const secret = z.string().min(32, 'must be at least 32 characters');
const list = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean),
);

/**
 * Every environment variable the service reads, with its default. `.env.example` mirrors this
 * list; nothing else in the code reads `process.env`.
 */
export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().default('0.0.0.0'),
  PORT: int(0, 65535).default(3000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgresql:// URL')
    .optional(),
  DATA_DIR: z.string().default('./data'),
  DB_POOL_SIZE: int(1, 200).default(10),
  /** Apply pending migrations at start. Always on for the embedded database. */
  DB_MIGRATE_ON_START: bool.default(false),
  SEED_DEMO: z.enum(['auto', 'true', 'false']).default('auto'),

  /** Unset: one instance, in-process fan-out. Set: instances share fan-out and state through Redis. */
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .optional(),
  /** Prefix of every Redis key and channel; instances of one cluster share it. */
  REDIS_KEY_PREFIX: z.string().min(1).default('signalcast:'),
  /** This instance's name in the cluster (default: host, pid and a random suffix). */
  INSTANCE_ID: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ -')
    .optional(),
  CLUSTER_REPORT_INTERVAL_MS: int(100).default(2_000),
  /** An instance that has not reported for this long drops out of the cluster's numbers. */
  CLUSTER_INSTANCE_TTL_MS: int(500).default(10_000),
  /** How often an instance compares the stored seq with what it delivered, to fill missed signals. */
  BUS_CATCHUP_INTERVAL_MS: int(100).default(5_000),

  JWT_SECRET: secret.optional(),
  /**
   * The secret before the last rotation: tokens signed with it are still accepted until they
   * expire; new tokens are always signed with `JWT_SECRET`.
   */
  JWT_SECRET_PREVIOUS: secret.optional(),
  JWT_ISSUER: z.string().default('signalcast'),
  JWT_AUDIENCE: z.string().default('signalcast-clients'),
  JWT_TTL_SECONDS: int(60, 30 * 24 * 3600).default(3600),

  ADMIN_EMAIL: z.email().optional(),
  ADMIN_PASSWORD: z.string().min(12, 'must be at least 12 characters').optional(),

  /** Express `trust proxy`: set to the number of proxies in front, so rate limits see the client IP. */
  TRUST_PROXY: int(0, 10).default(0),
  CORS_ORIGINS: list.default([]),
  HTTP_BODY_LIMIT_BYTES: int(1024).default(256 * 1024),
  AUTH_RATE_LIMIT_MAX: int(1).default(10),
  AUTH_RATE_LIMIT_WINDOW_MS: int(1000).default(60_000),

  /** How long a verified API key is trusted without a query; revocation clears it at once. */
  API_KEY_CACHE_TTL_MS: int(0).default(60_000),
  TIER_CACHE_MAX: int(1).default(100_000),
  TIER_CACHE_TTL_MS: int(1000).default(5 * 60_000),

  SYNC_BATCH_MAX_ITEMS: int(1, 1000).default(100),
  SIGNALS_PAGE_MAX: int(1, 5000).default(500),
  /**
   * How often each instance looks for active signals whose `expires_at` has passed and stores them as
   * `expired`: a signal expires at most this long (plus one write) after its `expires_at`.
   */
  SIGNAL_EXPIRY_INTERVAL_MS: int(10, 60_000).default(250),
  /** Most expiries one sweep reads and submits (a larger backlog is swept again at once). */
  SIGNAL_EXPIRY_BATCH: int(1, 5000).default(500),

  WS_MAX_PAYLOAD_BYTES: int(64).default(16 * 1024),
  WS_MAX_SOCKETS_PER_USER: int(1).default(5),
  /** All sockets of this instance; further upgrades get HTTP 503. Keep it under `ulimit -n`. */
  WS_MAX_CONNECTIONS: int(1).default(50_000),
  /** Protocol-level ping interval; a socket that has not answered the previous ping is terminated. */
  WS_HEARTBEAT_INTERVAL_MS: int(50).default(30_000),
  /** How long before its token expires a socket is told so (`token_expiring`). */
  WS_TOKEN_EXPIRY_WARNING_MS: int(0).default(60_000),
  /** Maximum connection lifetime (0: unlimited); the client is told to reconnect, with jitter. */
  WS_MAX_CONNECTION_LIFETIME_MS: int(0).default(0),
  /** Bytes a socket may have waiting to be sent before it is cut off as a slow consumer. */
  WS_MAX_BUFFERED_BYTES: int(1024).default(1024 * 1024),
  /** Per-connection request rate: `WS_RATE_LIMIT_BURST` at once, refilled at this rate per second. */
  WS_RATE_LIMIT_PER_SECOND: int(1).default(20),
  WS_RATE_LIMIT_BURST: int(1).default(40),
  /** Refused requests in a row before the socket is closed. */
  WS_RATE_LIMIT_STRIKES: int(1).default(20),
  /** Most signals one resume replays; beyond it the client gets `resync_required`. */
  WS_REPLAY_MAX: int(1).default(10_000),
  WS_REPLAY_PAGE_SIZE: int(1, 5000).default(500),

  /**
   * `GET /metrics` (Prometheus) on the service's port, for a scraper presenting this bearer token.
   * Unset, and no METRICS_PORT: metrics are not served.
   */
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Serve `/metrics` on this port instead (bound to METRICS_HOST), not on the service's port. */
  METRICS_PORT: int(0, 65535).optional(),
  METRICS_HOST: z.string().default('127.0.0.1'),
  /** The delivery-latency objective: `/ws/stats` reports the share of receipts within it. */
  DELIVERY_SLO_MS: int(1).default(500),
  /** How often the highest seq each user acknowledged is stored (one statement for every user whose receipt moved). */
  RECEIPT_FLUSH_INTERVAL_MS: int(100).default(2_000),
});

export type Env = z.infer<typeof envSchema>;
