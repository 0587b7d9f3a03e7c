import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api, flush, signalBody, WsClient } from './support/clients.js';
import { waitFor } from './support/processes.js';
import { createTestDatabase, startApp, type TestApp, type TestDatabase } from './support/test-app.js';

describe('delivery receipts: latency per tier, the acknowledged position, disputes', () => {
  let database: TestDatabase;
  let app: TestApp;
  let api: Api;
  let provider: Awaited<ReturnType<Api['provider']>>;

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await startApp(database, { RECEIPT_FLUSH_INTERVAL_MS: '100', DELIVERY_SLO_MS: '500' });
    api = new Api(app);
    provider = await api.provider();
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  const stats = async () => (await api.request('GET', '/ws/stats', { token: await api.admin() })).body;
  const dispute = async (userId: string, signalId: string) =>
    api.request('GET', `/api/v1/admin/users/${userId}/receipts?signal=${signalId}`, { token: await api.admin() });

  it('measures a receipt of the newest live signal per tier in /ws/stats, with the SLO share', async () => {
    const before = await stats();
    expect(before.slo.target_ms).toBe(500);
    const elite = await api.user('elite');
    const socket = await WsClient.connect(app.wsUrl, { token: elite.token });
    const synced = await api.sync(provider.apiKey, signalBody({ premium: true }));
    const signal = await socket.next((m) => m.type === 'signal' && m.seq === synced.body.seq);
    socket.send({ type: 'received', seq: signal.seq });
    const after = await waitFor(
      async () => {
        const now = await stats();
        return now.delivery_latency_ms.elite.count > before.delivery_latency_ms.elite.count ? now : undefined;
      },
      5_000,
      'the receipt never showed in /ws/stats',
    );
    expect(after.delivery_latency_ms.elite.count).toBe(before.delivery_latency_ms.elite.count + 1);
    expect(after.delivery_latency_ms.elite.p50).toBeGreaterThanOrEqual(0);
    expect(after.delivery_latency_ms.elite.p99).toBeGreaterThanOrEqual(after.delivery_latency_ms.elite.p50);
    expect(after.slo.count).toBe(before.slo.count + 1);
    expect(after.slo.within).toBeGreaterThanOrEqual(0);
    expect(after.slo.within).toBeLessThanOrEqual(1);
    // The same receipt again, or an older one, measures nothing more.
    socket.send({ type: 'received', seq: signal.seq });
    socket.send({ type: 'received', seq: signal.seq - 1 });
    await flush(api, provider.apiKey, [socket]);
    expect((await stats()).delivery_latency_ms.elite.count).toBe(after.delivery_latency_ms.elite.count);
    await socket.close();
  });

  it('refuses a receipt for a seq never sent on the socket, and changes nothing', async () => {
    const user = await api.user('pro');
    const socket = await WsClient.connect(app.wsUrl, { token: user.token });
    const before = await stats();
    socket.send({ type: 'received', seq: 10_000_000, id: 'r1' });
    const error = await socket.next((m) => m.type === 'error' && m.id === 'r1');
    expect(error).toMatchObject({ code: 'invalid_request', field: 'seq' });
    for (const seq of [-1, 1.5, '3', null]) {
      socket.send({ type: 'received', seq, id: `bad-${String(seq)}` });
      expect(await socket.next((m) => m.type === 'error' && m.id === `bad-${String(seq)}`)).toMatchObject({ code: 'invalid_request' });
    }
    expect((await stats()).slo.count).toBe(before.slo.count);
    await socket.close();
  });

  it('answers a dispute after a downgrade: entitled before it, not after; acknowledged as far as the receipt goes', async () => {
    const user = await api.user('pro');
    const socket = await WsClient.connect(app.wsUrl, { token: user.token });
    const before = await api.sync(provider.apiKey, signalBody({ premium: true }));
    const delivered = await socket.next((m) => m.type === 'signal' && m.seq === before.body.seq);
    socket.send({ type: 'received', seq: delivered.seq });
    const acked = await waitFor(
      async () => {
        const answer = await dispute(user.id, before.body.signal.id);
        return answer.body.acknowledged ? answer : undefined;
      },
      5_000,
      'the receipt was never stored',
    );
    expect(acked.status).toBe(200);
    expect(acked.body).toMatchObject({
      user_id: user.id,
      signal_id: before.body.signal.id,
      version: 1,
      seq: before.body.seq,
      min_tier: 'pro',
      tier_then: 'pro',
      entitled: true,
      acknowledged: true,
      receipt: { seq: delivered.seq },
    });

    expect((await api.setTier(user.id, 'free')).status).toBe(200);
    const after = await api.sync(provider.apiKey, signalBody({ premium: true }));
    const answer = await dispute(user.id, after.body.signal.id);
    expect(answer.body).toMatchObject({ tier_then: 'free', entitled: false, acknowledged: false, receipt: { seq: delivered.seq } });
    // The earlier signal's answer is unchanged by the downgrade.
    expect((await dispute(user.id, before.body.signal.id)).body).toMatchObject({ tier_then: 'pro', entitled: true, acknowledged: true });
    await socket.close();
  });

  it('does not count a signal sent while the user was away as acknowledged by a later fresh connection', async () => {
    const user = await api.user('pro');
    const first = await WsClient.connect(app.wsUrl, { token: user.token });
    const before = await api.sync(provider.apiKey, signalBody());
    first.send({ type: 'received', seq: (await first.next((m) => m.type === 'signal' && m.seq === before.body.seq)).seq });
    await first.close();
    const missed = await api.sync(provider.apiKey, signalBody());
    // A fresh connection (no ?since=): it starts past the missed signal, which it is never sent.
    const fresh = await WsClient.connect(app.wsUrl, { token: user.token });
    const after = await api.sync(provider.apiKey, signalBody());
    fresh.send({ type: 'received', seq: (await fresh.next((m) => m.type === 'signal' && m.seq === after.body.seq)).seq });
    await waitFor(async () => (await dispute(user.id, after.body.signal.id)).body.acknowledged, 5_000, 'never acknowledged');
    expect((await dispute(user.id, missed.body.signal.id)).body).toMatchObject({ entitled: true, acknowledged: false });
    const answer = (await dispute(user.id, after.body.signal.id)).body;
    expect(answer.receipt).toMatchObject({ from_seq: missed.body.seq, seq: after.body.seq });
    await fresh.close();
  });

  it('joins the receipts of a resumed connection to the ones before it', async () => {
    const user = await api.user('pro');
    const first = await WsClient.connect(app.wsUrl, { token: user.token });
    const before = await api.sync(provider.apiKey, signalBody());
    const seen = await first.next((m) => m.type === 'signal' && m.seq === before.body.seq);
    first.send({ type: 'received', seq: seen.seq });
    await waitFor(async () => (await dispute(user.id, before.body.signal.id)).body.acknowledged, 5_000, 'never acknowledged');
    await first.close();
    const whileAway = await api.sync(provider.apiKey, signalBody());
    const resumed = await WsClient.connect(app.wsUrl, { token: user.token, since: seen.seq });
    const replayed = await resumed.next((m) => m.type === 'signal' && m.seq === whileAway.body.seq);
    resumed.send({ type: 'received', seq: replayed.seq });
    await waitFor(async () => (await dispute(user.id, whileAway.body.signal.id)).body.acknowledged, 5_000, 'never acknowledged');
    expect((await dispute(user.id, before.body.signal.id)).body.acknowledged).toBe(true);
    await resumed.close();
  });

  it('does not take a resume position for an acknowledgement: a client may start from one it never reached', async () => {
    const user = await api.user('pro');
    const first = await WsClient.connect(app.wsUrl, { token: user.token });
    const before = await api.sync(provider.apiKey, signalBody());
    first.send({ type: 'received', seq: (await first.next((m) => m.type === 'signal' && m.seq === before.body.seq)).seq });
    await waitFor(async () => (await dispute(user.id, before.body.signal.id)).body.acknowledged, 5_000, 'never acknowledged');
    await first.close();
    const missed = await api.sync(provider.apiKey, signalBody());
    // As the SDK's `history` option or a polled `latest_seq` does: a position past what it processed.
    const resumed = await WsClient.connect(app.wsUrl, { token: user.token, since: missed.body.seq });
    await resumed.next((m) => m.type === 'replay_complete');
    const after = await api.sync(provider.apiKey, signalBody());
    resumed.send({ type: 'received', seq: (await resumed.next((m) => m.type === 'signal' && m.seq === after.body.seq)).seq });
    await waitFor(async () => (await dispute(user.id, after.body.signal.id)).body.acknowledged, 5_000, 'never acknowledged');
    expect((await dispute(user.id, missed.body.signal.id)).body.acknowledged).toBe(false);
    await resumed.close();
  });

  it('refuses a receipt past what the service delivered, even after a resume from a position in the future', async () => {
    const user = await api.user('pro');
    const socket = await WsClient.connect(app.wsUrl, { token: user.token, since: 9_000_000_000_000 });
    await socket.next((m) => m.type === 'replay_complete');
    socket.send({ type: 'received', seq: 9_000_000_000_000, id: 'future' });
    expect(await socket.next((m) => m.type === 'error' && m.id === 'future')).toMatchObject({ code: 'invalid_request', field: 'seq' });
    await socket.close();
  });

  it('answers each version of an amended signal, and a user created after it as not entitled', async () => {
    const body = signalBody();
    const first = await api.sync(provider.apiKey, body);
    const second = await api.sync(provider.apiKey, { ...body, premium: true, confidence: 12 });
    const late = await api.user('elite');
    const answer = await dispute(late.id, first.body.signal.id);
    expect(answer.status).toBe(200);
    expect(answer.body.tier_then).toBeNull();
    expect(answer.body.entitled).toBe(false);
    expect(answer.body.versions.map((v: { seq: number; min_tier: string }) => [v.seq, v.min_tier])).toEqual([
      [first.body.seq, 'free'],
      [second.body.seq, 'pro'],
    ]);
  });

  it('answers 404 for an unknown user or signal and 400 for a bad id, as JSON', async () => {
    const user = await api.user('free');
    const signal = await api.sync(provider.apiKey, signalBody());
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect((await dispute(unknown, signal.body.signal.id)).status).toBe(404);
    expect((await dispute(user.id, unknown)).body.code).toBe('not_found');
    expect((await dispute(user.id, 'nope')).body).toMatchObject({ code: 'validation_failed' });
    const missing = await api.request('GET', `/api/v1/admin/users/${user.id}/receipts`, { token: await api.admin() });
    expect(missing.status).toBe(400);
    const notAdmin = await api.request('GET', `/api/v1/admin/users/${user.id}/receipts?signal=${signal.body.signal.id}`, {
      token: user.token,
    });
    expect(notAdmin.status).toBe(403);
  });
});
