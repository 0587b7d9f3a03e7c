import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api, signalBody, WsClient } from './support/clients.js';
import { createTestDatabase, startApp, type TestApp, type TestDatabase } from './support/test-app.js';

/** PostgreSQL only: takes the service's database away and gives it back. */
describe('database outage', () => {
  let database: TestDatabase;
  let app: TestApp;
  let api: Api;
  let superuser: pg.Client;
  let name: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await startApp(database, { DB_POOL_SIZE: '3' });
    api = new Api(app);
    superuser = new pg.Client({ connectionString: process.env.TEST_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres' });
    await superuser.connect();
    name = new URL(database.url!).pathname.slice(1);
  });

  afterAll(async () => {
    await superuser?.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`).catch(() => undefined);
    await superuser?.end();
    await app?.close();
    await database?.drop();
  });

  async function takeDatabaseAway(): Promise<void> {
    await superuser.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
    await superuser.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name]);
  }

  it('answers 503, broadcasts nothing, keeps sockets open, reports not ready, and recovers by itself', async () => {
    const provider = await api.provider();
    const user = await api.user('elite');
    const socket = await WsClient.connect(app.wsUrl, { token: user.token });
    // The provider's key is verified (and cached) before the outage, so the outage hits the writer.
    const before = await api.sync(provider.apiKey, signalBody());
    expect(before.status).toBe(201);

    await takeDatabaseAway();
    const lost = signalBody();
    const during = await api.sync(provider.apiKey, lost);
    expect(during.status).toBe(503);
    expect(during.body).toEqual({
      code: 'database_unavailable',
      message: 'The database is unavailable; the signal was not stored. Retry later.',
    });
    const batch = await api.request('POST', '/api/v1/external-signals/sync/signals', {
      apiKey: provider.apiKey,
      body: { signals: [signalBody(), signalBody()] },
    });
    expect(batch.status).toBe(503);
    const health = await api.request('GET', '/health');
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ database: 'down' });

    socket.send({ type: 'ping', id: 1 });
    await socket.next((m) => m.type === 'pong');
    expect(socket.socket.readyState).toBe(socket.socket.OPEN);

    await superuser.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
    const after = await api.sync(provider.apiKey, signalBody());
    expect(after.status).toBe(201);
    expect((await api.request('GET', '/health')).status).toBe(200);
    await socket.next((m) => m.type === 'signal' && m.seq === after.body.seq);
    // Nothing from the outage was broadcast, and seq stayed gapless.
    expect(socket.seqs()).toEqual([before.body.seq, after.body.seq]);
    expect(after.body.seq).toBe(before.body.seq + 1);
    expect(socket.signals().map((m) => m.external_id)).not.toContain(lost.external_id);
    await socket.close();
  });
});
