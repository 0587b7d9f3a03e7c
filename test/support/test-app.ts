import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Writable } from 'node:stream';
import jwt from 'jsonwebtoken';
import pg from 'pg';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { afterAll, beforeAll } from 'vitest';
import { createApp } from '../../src/app.factory.js';
import { Api } from './clients.js';
import { loadEnv } from '../../src/config/app-config.js';
import { DEFAULT_POSTGRES_URL, redact } from './global-setup.js';
import { OpenApiContract } from './openapi-contract.js';

export const TEST_JWT_SECRET = 'test-secret-that-is-long-enough-for-hs256-000000';
export const ADMIN = { email: 'admin@test.signalcast', password: 'admin-password-123' };
// Read when the worker starts: outside CI, when nothing answered at TEST_POSTGRES_URL, the global setup
// (test/support/global-setup.ts) has pointed it at a throwaway PostgreSQL of its own.
const POSTGRES_ADMIN_URL = process.env.TEST_POSTGRES_URL || DEFAULT_POSTGRES_URL;

export interface TestDatabase {
  /** `undefined` for the embedded database. */
  url?: string;
  drop(): Promise<void>;
}

/**
 * A fresh database for one test file: on PostgreSQL a new database (created here, dropped after),
 * otherwise an in-memory PGlite. Chosen by TEST_DATABASE, which the vitest projects set. A
 * PostgreSQL that cannot be reached fails the tests; it never skips them (outside CI the global setup
 * has started a throwaway one when none answered).
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  if (process.env.TEST_DATABASE !== 'postgres') return { drop: async () => undefined };
  const name = `signalcast_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  try {
    await admin.connect();
  } catch (error) {
    const reason = (error as Error).message || (error as { code?: string }).code || String(error);
    throw new Error(`PostgreSQL at ${redact(POSTGRES_ADMIN_URL)} (TEST_POSTGRES_URL) cannot be used: ${reason}`, { cause: error });
  }
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

export interface TestApp {
  app: NestExpressApplication;
  baseUrl: string;
  wsUrl: string;
  /** Every answer of a documented operation, held to the OpenAPI document. */
  contract: OpenApiContract;
  /** Closes the app, then fails if any answer did not match the OpenAPI document. */
  close(): Promise<void>;
}

/** Boots the real application (same factory as main.ts) on an ephemeral port. */
export async function startApp(
  database: TestDatabase,
  overrides: Record<string, string> = {},
  options: { logDestination?: Writable } = {},
): Promise<TestApp> {
  const env = loadEnv({
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    SEED_DEMO: 'false',
    DATABASE_URL: database.url,
    DATA_DIR: 'memory://',
    DB_MIGRATE_ON_START: 'true',
    AUTH_RATE_LIMIT_MAX: '1000',
    ...overrides,
  });
  const app = await createApp(env, options);
  const contract = new OpenApiContract(app);
  try {
    await app.listen(0, '127.0.0.1');
  } catch (error) {
    // A start refused in a bootstrap hook still holds what its modules opened (the data directory's lock).
    await app.close().catch(() => undefined);
    throw error;
  }
  const { port } = app.getHttpServer().address() as AddressInfo;
  return {
    app,
    baseUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws/signals`,
    contract,
    close: async () => {
      await app.close();
      contract.assertHeld();
    },
  };
}

/** An access token as the service would issue it, with a chosen lifetime. */
export function signToken(userId: string, role: string, expiresInSeconds: number): string {
  return jwt.sign({ role }, TEST_JWT_SECRET, {
    algorithm: 'HS256',
    subject: userId,
    issuer: 'signalcast',
    audience: 'signalcast-clients',
    expiresIn: expiresInSeconds,
  });
}

export interface TestContext {
  database: TestDatabase;
  app: TestApp;
  api: Api;
  /** A provider user with an API key, created at start. */
  provider: Awaited<ReturnType<Api['provider']>>;
}

/**
 * Registers `beforeAll`/`afterAll` hooks that boot the app on a fresh database (and create a
 * provider); the returned object's fields are set once the hooks have run, so read them in tests.
 */
export function useTestApp(overrides: Record<string, string> = {}): TestContext {
  const context = {} as TestContext;
  beforeAll(async () => {
    context.database = await createTestDatabase();
    context.app = await startApp(context.database, overrides);
    context.api = new Api(context.app);
    context.provider = await context.api.provider();
  });
  afterAll(async () => {
    await context.app?.close();
    await context.database?.drop();
  });
  return context;
}
