import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseEnv } from 'node:util';
import { envSchema, type Env } from './config.schema.js';

/** The validated configuration; `JWT_SECRET` is always set (generated in development). */
export type AppEnv = Env & { JWT_SECRET: string; JWT_SECRET_GENERATED: boolean; INSTANCE_ID: string };

export class ConfigError extends Error {}

/**
 * Reads `.env` (if present), the process environment and explicit overrides (tests, the cluster
 * runner), in rising precedence, and validates them once. Throws a readable list of every problem.
 */
export function loadEnv(overrides: Record<string, string | undefined> = {}): AppEnv {
  const fromFile = existsSync('.env') ? parseEnv(readFileSync('.env', 'utf8')) : {};
  const raw: Record<string, string | undefined> = { ...fromFile, ...process.env, ...overrides };
  for (const key of Object.keys(raw)) if (raw[key] === '') delete raw[key];
  const parsed = envSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  - ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const env = parsed.data;
  if (env.NODE_ENV === 'production' && !env.JWT_SECRET) {
    throw new ConfigError('Invalid configuration:\n  - JWT_SECRET: required when NODE_ENV=production');
  }
  if (env.JWT_SECRET_PREVIOUS && !env.JWT_SECRET) {
    throw new ConfigError('Invalid configuration:\n  - JWT_SECRET_PREVIOUS: set JWT_SECRET too (the previous secret only verifies)');
  }
  if (env.CLUSTER_REPORT_INTERVAL_MS * 2 > env.CLUSTER_INSTANCE_TTL_MS) {
    // An instance must survive a late report: otherwise it drops out of the cluster between reports.
    throw new ConfigError(
      `Invalid configuration:\n  - CLUSTER_INSTANCE_TTL_MS: must be at least twice CLUSTER_REPORT_INTERVAL_MS (${env.CLUSTER_REPORT_INTERVAL_MS})`,
    );
  }
  if ((env.ADMIN_EMAIL === undefined) !== (env.ADMIN_PASSWORD === undefined)) {
    throw new ConfigError('Invalid configuration:\n  - ADMIN_EMAIL and ADMIN_PASSWORD: set both or neither');
  }
  return {
    ...env,
    JWT_SECRET: env.JWT_SECRET ?? randomBytes(48).toString('base64url'),
    JWT_SECRET_GENERATED: env.JWT_SECRET === undefined,
    INSTANCE_ID: env.INSTANCE_ID ?? `${hostname().replace(/[^A-Za-z0-9._-]/g, '')}-${process.pid}-${randomBytes(3).toString('hex')}`,
  };
}

/** Typed access to the configuration `loadEnv` validated (provided by `AppConfigModule`). */
export class AppConfig {
  private readonly env: Readonly<AppEnv>;

  constructor(env: AppEnv) {
    this.env = Object.freeze({ ...env });
  }

  get<K extends keyof AppEnv>(key: K): AppEnv[K] {
    return this.env[key];
  }

  get usesEmbeddedDatabase(): boolean {
    return this.get('DATABASE_URL') === undefined;
  }
}
