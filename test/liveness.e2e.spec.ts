import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api, signalBody, WsClient } from './support/clients.js';
import { createTestDatabase, signToken, startApp, type TestApp, type TestDatabase } from './support/test-app.js';

describe('liveness: heartbeats, token expiry, lifetime', () => {
  let database: TestDatabase;
  let app: TestApp;
  let api: Api;

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await startApp(database, { WS_HEARTBEAT_INTERVAL_MS: '150', WS_TOKEN_EXPIRY_WARNING_MS: '1500' });
    api = new Api(app);
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  const stats = async () => (await api.request('GET', '/ws/stats', { token: await api.admin() })).body;

  it('terminates a client that never answers protocol pings, and keeps one that does', async () => {
    const user = await api.user('free');
    const baseline = (await stats()).total_connections;
    const dead = await WsClient.connect(app.wsUrl, { token: user.token, autoPong: false });
    const healthy = await WsClient.connect(app.wsUrl, { token: user.token });
    expect((await stats()).total_connections).toBe(baseline + 2);

    const closed = await dead.waitClose(3_000);
    expect(closed.code).toBe(1006); // terminated: no close handshake with a dead peer
    expect((await stats()).total_connections).toBe(baseline + 1);

    await sleep(500); // several heartbeat rounds
    expect(await healthy.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    await healthy.close();
  });

  it('warns before the token expires, then closes with 4501', async () => {
    const user = await api.user('free');
    const socket = await WsClient.connect(app.wsUrl, { token: signToken(user.id, 'subscriber', 3) });
    expect(socket.messages[0].token_expires_at).toEqual(expect.any(String));
    const warning = await socket.next((m) => m.type === 'token_expiring', 3_000);
    expect(Date.parse(warning.expires_at)).toBe(Date.parse(socket.messages[0].token_expires_at));
    expect(await socket.waitClose(4_000)).toEqual({ code: 4501, reason: 'token expired' });
  });

  it('keeps a socket whose token is refreshed with an auth request', async () => {
    const user = await api.user('pro');
    const socket = await WsClient.connect(app.wsUrl, { token: signToken(user.id, 'subscriber', 2) });
    await socket.next((m) => m.type === 'token_expiring', 3_000);
    const ack = await socket.request({ type: 'auth', token: signToken(user.id, 'subscriber', 600) });
    expect(ack.type).toBe('ack');
    expect(Date.parse(ack.token_expires_at)).toBeGreaterThan(Date.now() + 500_000);
    await sleep(2_500); // past the first token's expiry
    expect(await socket.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    await socket.close();
  });

  it("refuses a refresh with another user's token or an invalid one, and still expires", async () => {
    const user = await api.user('pro');
    const stranger = await api.user('elite');
    const socket = await WsClient.connect(app.wsUrl, { token: signToken(user.id, 'subscriber', 2) });
    expect(await socket.request({ type: 'auth', token: stranger.token })).toMatchObject({
      type: 'error',
      code: 'token_user_mismatch',
    });
    expect(await socket.request({ type: 'auth', token: 'garbage' })).toMatchObject({ type: 'error', code: 'invalid_token' });
    expect((await socket.waitClose(4_000)).code).toBe(4501);
  });
});

describe('maximum connection lifetime', () => {
  let database: TestDatabase;
  let app: TestApp;

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await startApp(database, { WS_MAX_CONNECTION_LIFETIME_MS: '600' });
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  it('asks the client to reconnect, then closes with 4000', async () => {
    const user = await new Api(app).user('free');
    const socket = await WsClient.connect(app.wsUrl, { token: user.token });
    expect(await socket.next((m) => m.type === 'reconnect', 3_000)).toEqual({ type: 'reconnect', reason: 'max_lifetime' });
    expect((await socket.waitClose()).code).toBe(4000);
  });
});

describe('graceful shutdown', () => {
  it('tells clients to reconnect, closes with 1001, and finishes in-flight syncs', async () => {
    const database = await createTestDatabase();
    const app = await startApp(database);
    try {
      const api = new Api(app);
      const provider = await api.provider();
      const sockets = await Promise.all(
        ['free', 'pro'].map(async (tier) => WsClient.connect(app.wsUrl, { token: (await api.user(tier)).token })),
      );
      // Requests still queued on the client when the server stops accepting fail to connect; the
      // ones the server received must all be answered (and, sync being idempotent, are safe to retry).
      const syncs = Array.from({ length: 20 }, () => api.sync(provider.apiKey, signalBody()));
      const outcomes = Promise.allSettled(syncs);
      await syncs[0];
      await app.close();

      for (const socket of sockets) {
        expect(socket.messages.find((m) => m.type === 'reconnect')).toEqual({ type: 'reconnect', reason: 'shutdown' });
        expect((await socket.waitClose()).code).toBe(1001);
      }
      const settled = await outcomes;
      const answered = settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value.status] : []));
      expect(answered.length).toBeGreaterThan(0);
      expect(answered.every((status) => status === 201)).toBe(true);
    } finally {
      await app.close().catch(() => undefined);
      await database.drop();
    }
  });
});
