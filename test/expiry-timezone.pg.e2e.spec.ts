import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api, signalBody, WsClient } from './support/clients.js';
import { createTestDatabase, startApp, type TestApp, type TestDatabase } from './support/test-app.js';

/**
 * Expiry on a PostgreSQL whose sessions are not in UTC (a server initialised on a host in Tokyo, or
 * New York): `expires_at` is an instant, and a signal expires at that instant, not hours off.
 */
describe.each([
  ['Asia/Tokyo', ''],
  ['America/New_York', ''],
  // The URL's own `options` replace the service's (which set the session to UTC): the sweep's query still holds.
  ['Asia/Tokyo', 'options=-c%20jit%3Doff'],
])('signal expiry with the database sessions in %s %s', (timeZone, urlOptions) => {
  let database: TestDatabase;
  let app: TestApp;
  let api: Api;

  beforeAll(async () => {
    database = await createTestDatabase();
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    await admin.query(`ALTER DATABASE ${new URL(database.url!).pathname.slice(1)} SET timezone = '${timeZone}'`);
    await admin.end();
    app = await startApp(database, urlOptions ? { DATABASE_URL: `${database.url}?${urlOptions}` } : {});
    api = new Api(app);
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  it('expires a signal at its expires_at, and not one whose expires_at is an hour ahead', async () => {
    const provider = await api.provider();
    const user = await api.user('free');
    const socket = await WsClient.connect(app.wsUrl, { token: user.token });
    const soon = await api.sync(provider.apiKey, signalBody({ expires_at: new Date(Date.now() + 1_000).toISOString() }));
    const later = await api.sync(provider.apiKey, signalBody({ expires_at: new Date(Date.now() + 3_600_000).toISOString() }));
    await socket.next((m) => m.type === 'signal_update' && m.id === soon.body.signal.id && m.status === 'expired', 10_000);
    // Every sweep that could wrongly expire the later one has run by the time a signal due now expires.
    const marker = await api.sync(provider.apiKey, signalBody({ expires_at: new Date(Date.now() + 500).toISOString() }));
    await socket.next((m) => m.type === 'signal_update' && m.id === marker.body.signal.id && m.status === 'expired', 10_000);
    expect(socket.signals().some((m) => m.id === later.body.signal.id && m.status === 'expired')).toBe(false);
    await socket.close();
  });
});
