import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api, signalBody, WsClient } from './support/clients.js';
import { startApp, useTestApp, type TestApp } from './support/test-app.js';

/**
 * PostgreSQL only: two instances writing to one database. Each group is read, then written on
 * condition that the counter has not moved; here both instances read the same counter and then
 * queue on its row lock, so one of them must find its plan stale, read again and write after.
 */
describe('two instances writing at the same moment', () => {
  // A seq written by the other instance and not followed by one of this instance's is caught up by the timer.
  const context = useTestApp({ BUS_CATCHUP_INTERVAL_MS: '300' });
  let other: TestApp;
  let locker: pg.Client;
  /** Outside the locker's transaction, whose view of pg_stat_activity would stay as first read. */
  let observer: pg.Client;

  beforeAll(async () => {
    other = await startApp(context.database, { BUS_CATCHUP_INTERVAL_MS: '300' });
    locker = new pg.Client({ connectionString: context.database.url });
    await locker.connect();
    observer = new pg.Client({ connectionString: context.database.url });
    await observer.connect();
  });

  afterAll(async () => {
    await locker?.end();
    await observer?.end();
    await other?.close();
  });

  async function waitingWrites(): Promise<number> {
    const { rows } = await observer.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%claimed%'`,
    );
    return rows[0]!.n;
  }

  it('stores both amendments as successive versions, with gapless seq, each delivered once in order', async () => {
    const { api, provider, app } = context;
    const first = await api.sync(provider.apiKey, signalBody({ external_id: 'contested', entry: '100' }));
    expect(first.status).toBe(201);
    const user = await api.user('pro');
    const watcher = await WsClient.connect(app.wsUrl, { token: user.token });

    // Hold the counter row: both instances read the same state, and their writes wait for it.
    await locker.query('BEGIN');
    await locker.query(`SELECT value FROM sequence_counters WHERE name = 'signal' FOR UPDATE`);
    const viaThis = api.sync(provider.apiKey, signalBody({ external_id: 'contested', entry: '101' }));
    const viaOther = new Api(other).sync(provider.apiKey, signalBody({ external_id: 'contested', entry: '102' }));
    await expect.poll(waitingWrites, { timeout: 5_000 }).toBe(2);
    await locker.query('ROLLBACK');

    const answers = await Promise.all([viaThis, viaOther]);
    expect(answers.map((r) => r.status)).toEqual([200, 200]);
    expect(answers.map((r) => r.body.result)).toEqual(['updated', 'updated']);
    const base = first.body.seq as number;
    expect(answers.map((r) => r.body.seq).sort()).toEqual([base + 1, base + 2]);
    expect(answers.map((r) => r.body.signal.version).sort()).toEqual([2, 3]);
    // Each instance counts the groups it had to read again, and `/ws/stats` shows it.
    const token = await api.admin();
    const conflicts = await Promise.all(
      [api, new Api(other)].map(async (client) => (await client.request('GET', '/ws/stats', { token })).body.instances[0].write_conflicts),
    );
    expect(conflicts.sort()).toEqual([0, 1]);

    const { rows } = await locker.query<{ version: number; seq: string }>(
      `SELECT r.version, r.seq FROM signal_revisions r JOIN signals s ON s.id = r.signal_id
       WHERE s.external_id = 'contested' ORDER BY r.version`,
    );
    expect(rows.map((row) => [row.version, Number(row.seq)])).toEqual([
      [1, base],
      [2, base + 1],
      [3, base + 2],
    ]);
    // The socket is on this instance; the other instance's signal reaches it from the database.
    await watcher.next((m) => m.seq === base + 2, 10_000);
    expect(watcher.seqs()).toEqual([base + 1, base + 2]);
    await watcher.close();
  });
});
