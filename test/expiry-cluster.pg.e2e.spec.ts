import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api, flush, signalBody, WsClient } from './support/clients.js';
import { DEFAULT_POSTGRES_URL } from './support/global-setup.js';
import { sleep } from './support/processes.js';
import { createTestDatabase, startApp, type TestApp, type TestDatabase } from './support/test-app.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** An ISO timestamp `ms` from now. */
const inMs = (ms: number) => new Date(Date.now() + ms).toISOString();

/**
 * Expiry with two instances on one PostgreSQL and one Redis (in one process, as in
 * cluster.pg.e2e.spec.ts). Both sweep every 250 ms; each expiry is written on condition that the
 * version read is still current and active, so one version is stored whichever instance writes it.
 */
describe('signal expiry in a cluster of two instances', () => {
  let database: TestDatabase;
  const apps: Record<'a' | 'b', TestApp> = {} as never;
  let api: Record<'a' | 'b', Api>;
  let provider: Awaited<ReturnType<Api['provider']>>;
  /** Reads the tables, and holds the counter row in the race. */
  let client: pg.Client;
  /** Outside `client`'s transaction, whose view of pg_stat_activity would stay as first read. */
  let observer: pg.Client;
  const prefix = `sc-test-${randomBytes(4).toString('hex')}:`;

  beforeAll(async () => {
    database = await createTestDatabase();
    for (const name of ['a', 'b'] as const) {
      apps[name] = await startApp(database, {
        REDIS_URL,
        REDIS_KEY_PREFIX: prefix,
        INSTANCE_ID: `inst-${name}`,
        CLUSTER_REPORT_INTERVAL_MS: '200',
        CLUSTER_INSTANCE_TTL_MS: '1500',
        BUS_CATCHUP_INTERVAL_MS: '1000',
        DB_POOL_SIZE: '3',
      });
    }
    api = { a: new Api(apps.a), b: new Api(apps.b) };
    provider = await api.a.provider();
    client = new pg.Client({ connectionString: database.url });
    await client.connect();
    observer = new pg.Client({ connectionString: database.url });
    await observer.connect();
  }, 120_000);

  afterAll(async () => {
    await client?.end();
    await observer?.end();
    await Promise.all(Object.values(apps).map((app) => app.close().catch(() => undefined)));
    await database?.drop();
  });

  const expiredUpdate = (id: string) => (m: any) => m.type === 'signal_update' && m.id === id && m.status === 'expired';
  const versionsOf = (socket: WsClient, id: string) => socket.signals().filter((m) => m.id === id);

  async function storedVersions(id: string): Promise<[number, string][]> {
    const { rows } = await observer.query<{ version: number; status: string }>(
      `SELECT version, payload->>'status' AS status FROM signal_revisions WHERE signal_id = $1 ORDER BY version`,
      [id],
    );
    return rows.map((row) => [row.version, row.status]);
  }

  /** Sockets on both instances: one for a pro user on each. */
  async function socketsOnBoth(): Promise<WsClient[]> {
    const user = await api.a.user('pro');
    return [await WsClient.connect(apps.a.wsUrl, { token: user.token }), await WsClient.connect(apps.b.wsUrl, { token: user.token })];
  }

  it('stores one expired version and delivers it once to sockets on both instances, and in a replay on either', async () => {
    const sockets = await socketsOnBoth();
    const synced = await api.a.sync(provider.apiKey, signalBody({ premium: true, expires_at: inMs(1_000) }));
    const { id, seq } = synced.body.signal;
    const later = await api.b.sync(provider.apiKey, signalBody({ expires_at: inMs(1_500) }));
    for (const socket of sockets) {
      await socket.next(expiredUpdate(id), 5_000);
      // Expires later: every sweep that could have expired the first again has run by then.
      await socket.next(expiredUpdate(later.body.signal.id), 5_000);
    }
    await flush(api.b, provider.apiKey, sockets);

    expect(await storedVersions(id)).toEqual([
      [1, 'active'],
      [2, 'expired'],
    ]);
    const [onA, onB] = sockets.map((socket) => versionsOf(socket, id));
    expect(onA!.map((m) => [m.type, m.version, m.status])).toEqual([
      ['signal', 1, 'active'],
      ['signal_update', 2, 'expired'],
    ]);
    expect(onB).toEqual(onA);

    const user = await api.a.user('elite');
    for (const app of [apps.a, apps.b]) {
      const resumed = await WsClient.connect(app.wsUrl, { token: user.token, since: seq - 1 });
      await resumed.next((m) => m.type === 'replay_complete');
      expect(versionsOf(resumed, id)).toEqual([onA![1]]);
      await resumed.close();
    }
    await Promise.all(sockets.map((socket) => socket.close()));
  });

  it('stores one version when both instances sweep the same signal at the same moment', async () => {
    const waitingWrites = async () => {
      const { rows } = await observer.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%claimed%'`,
      );
      return rows[0]!.n;
    };
    const conflicts = async () => {
      const stats = (await api.a.request('GET', '/ws/stats', { token: await api.a.admin() })).body;
      return stats.instances.reduce((sum: number, instance: { write_conflicts: number }) => sum + instance.write_conflicts, 0);
    };
    const sockets = await socketsOnBoth();
    const conflictsBefore = await conflicts();
    const synced = await api.a.sync(provider.apiKey, signalBody({ expires_at: inMs(1_000) }));
    const { id } = synced.body.signal;

    // Hold the counter row: both instances read the signal as due, and both writes wait for the row.
    await client.query('BEGIN');
    await client.query(`SELECT value FROM sequence_counters WHERE name = 'signal' FOR UPDATE`);
    await expect.poll(waitingWrites, { timeout: 10_000 }).toBe(2);
    await client.query('ROLLBACK');

    for (const socket of sockets) await socket.next(expiredUpdate(id), 5_000);
    // The second write found the counter moved, read again under the row lock, and wrote nothing.
    await expect.poll(conflicts, { timeout: 5_000 }).toBe(conflictsBefore + 1);
    await flush(api.a, provider.apiKey, sockets);
    expect(await storedVersions(id)).toEqual([
      [1, 'active'],
      [2, 'expired'],
    ]);
    for (const socket of sockets) expect(versionsOf(socket, id).map((m) => m.version)).toEqual([1, 2]);
    await Promise.all(sockets.map((socket) => socket.close()));
  });

  it('keeps running through a database outage, and stores what fell due during it once the database is back', async () => {
    const superuser = new pg.Client({ connectionString: process.env.TEST_POSTGRES_URL || DEFAULT_POSTGRES_URL });
    await superuser.connect();
    const name = new URL(database.url!).pathname.slice(1);
    try {
      const sockets = await socketsOnBoth();
      const expiresAt = inMs(1_000);
      const synced = await api.a.sync(provider.apiKey, signalBody({ expires_at: expiresAt }));
      const { id } = synced.body.signal;
      await client.end();
      await observer.end();
      await superuser.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
      await superuser.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name]);
      // Both instances sweep (and fail) for a while after the signal fell due.
      await sleep(Date.parse(expiresAt) - Date.now() + 1_000);
      expect((await api.a.request('GET', '/health')).status).toBe(503);
      await superuser.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
      client = new pg.Client({ connectionString: database.url });
      await client.connect();
      observer = new pg.Client({ connectionString: database.url });
      await observer.connect();

      for (const socket of sockets) await socket.next(expiredUpdate(id), 10_000);
      await flush(api.b, provider.apiKey, sockets);
      expect(await storedVersions(id)).toEqual([
        [1, 'active'],
        [2, 'expired'],
      ]);
      for (const socket of sockets) expect(versionsOf(socket, id).map((m) => m.version)).toEqual([1, 2]);
      expect((await api.b.request('GET', '/health')).status).toBe(200);
      await Promise.all(sockets.map((socket) => socket.close()));
    } finally {
      await superuser.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`).catch(() => undefined);
      await superuser.end();
    }
  });
});
