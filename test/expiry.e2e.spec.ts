import { describe, expect, it } from 'vitest';
import { flush, markerBody, signalBody, WsClient } from './support/clients.js';
import { useTestApp } from './support/test-app.js';

/** An ISO timestamp `ms` from now. */
const inMs = (ms: number) => new Date(Date.now() + ms).toISOString();

/**
 * Signal expiry: past its `expires_at`, a signal is stored again with status `expired` (a new version
 * with a seq) and broadcast as `signal_update`; the `status` filter. The sweep runs every 250 ms
 * (the default); every wait below is for a message, never for a duration.
 */
describe('signal expiry', () => {
  const t = useTestApp();

  const expiredUpdate = (id: string) => (m: any) => m.type === 'signal_update' && m.id === id && m.status === 'expired';
  const versionsOf = (client: WsClient, id: string) => client.signals().filter((m) => m.id === id);

  it('delivers a signal, then its expired update once, live and in a later replay, and lists it as expired', async () => {
    const user = await t.api.user('pro');
    const everything = await WsClient.connect(t.app.wsUrl, { token: user.token });
    const activeOnly = await WsClient.connect(`${t.app.wsUrl}?statuses=active`, { token: user.token });
    const expiredOnly = await WsClient.connect(`${t.app.wsUrl}?status=expired`, { token: user.token });

    const due = await t.api.sync(t.provider.apiKey, signalBody({ premium: true, expires_at: inMs(1_000) }));
    expect(due.status).toBe(201);
    const { id, seq } = due.body.signal;
    await everything.next((m) => m.type === 'signal' && m.id === id);
    // Expires later: once its expiry arrives, every sweep that could have expired the first again has run.
    const later = await t.api.sync(t.provider.apiKey, signalBody({ expires_at: inMs(1_500) }));
    const expired = await everything.next(expiredUpdate(id), 5_000);
    await everything.next(expiredUpdate(later.body.signal.id), 5_000);
    await expiredOnly.next(expiredUpdate(later.body.signal.id), 5_000);
    await flush(t.api, t.provider.apiKey, [everything, activeOnly]);

    expect(expired).toEqual({
      ...due.body.signal,
      type: 'signal_update',
      status: 'expired',
      version: 2,
      seq: expired.seq,
      received_at: expired.received_at,
    });
    expect(expired.seq).toBeGreaterThan(seq);
    expect(versionsOf(everything, id).map((m) => [m.type, m.version, m.status])).toEqual([
      ['signal', 1, 'active'],
      ['signal_update', 2, 'expired'],
    ]);
    // A status filter matches each version by its own status (docs/protocol.md, "Filters").
    expect(versionsOf(activeOnly, id).map((m) => m.status)).toEqual(['active']);
    expect(versionsOf(expiredOnly, id).map((m) => m.seq)).toEqual([expired.seq]);

    // A replay from before it sends the signal's current state, the expired version, once.
    const resumed = await WsClient.connect(t.app.wsUrl, { token: user.token, since: seq - 1 });
    await resumed.next((m) => m.type === 'replay_complete');
    expect(versionsOf(resumed, id)).toEqual([{ ...expired }]);

    const list = async (query: string) => {
      const page = await t.api.request('GET', `/api/v1/signals?after_seq=${seq - 1}${query}`, { token: user.token });
      expect(page.status).toBe(200);
      return page.body.data.filter((s: { id: string }) => s.id === id);
    };
    const { type: _type, ...stored } = expired;
    expect(await list('')).toEqual([stored]);
    expect(await list('&status=active')).toEqual([]);
    expect(await list('&statuses=active,expired')).toEqual([stored]);
    await Promise.all([everything, activeOnly, expiredOnly, resumed].map((client) => client.close()));
  });

  it('lets an amendment before the expiry postpone it, and a close prevent it', async () => {
    const user = await t.api.user('free');
    const socket = await WsClient.connect(t.app.wsUrl, { token: user.token });
    const postponedBody = signalBody({ expires_at: inMs(1_000) });
    const closedBody = signalBody({ expires_at: inMs(1_000) });
    const postponed = (await t.api.sync(t.provider.apiKey, postponedBody)).body.signal;
    const closed = (await t.api.sync(t.provider.apiKey, closedBody)).body.signal;
    const newExpiry = inMs(3_500);
    expect((await t.api.sync(t.provider.apiKey, { ...postponedBody, expires_at: newExpiry })).body).toMatchObject({ result: 'updated' });
    expect((await t.api.sync(t.provider.apiKey, { ...closedBody, status: 'closed' })).body).toMatchObject({ result: 'updated' });
    // Expires after the original expiry of both, before the new one.
    const sentinel = (await t.api.sync(t.provider.apiKey, signalBody({ expires_at: inMs(2_000) }))).body.signal;

    await socket.next(expiredUpdate(sentinel.id), 5_000);
    expect(versionsOf(socket, postponed.id).map((m) => [m.version, m.status])).toEqual([
      [1, 'active'],
      [2, 'active'],
    ]);
    const update = await socket.next(expiredUpdate(postponed.id), 6_000);
    expect(update).toMatchObject({ version: 3, expires_at: new Date(newExpiry).toISOString() });
    await flush(t.api, t.provider.apiKey, [socket]);
    expect(versionsOf(socket, closed.id).map((m) => [m.version, m.status])).toEqual([
      [1, 'active'],
      [2, 'closed'],
    ]);
    expect(versionsOf(socket, postponed.id)).toHaveLength(3);
    await socket.close();
  });

  it('refuses expired from a provider, and answers a sync of an expired signal like any amendment', async () => {
    const user = await t.api.user('free');
    const socket = await WsClient.connect(t.app.wsUrl, { token: user.token });
    const refused = await t.api.sync(t.provider.apiKey, signalBody({ status: 'expired' }));
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ code: 'validation_failed', details: [{ field: 'status' }] });
    const batch = await t.api.request('POST', '/api/v1/external-signals/sync/signals', {
      apiKey: t.provider.apiKey,
      body: { signals: [signalBody({ status: 'expired' })] },
    });
    expect(batch.body.results).toMatchObject([{ index: 0, status: 400, error: { details: [{ field: 'signals[0].status' }] } }]);

    const body = signalBody({ expires_at: inMs(500) });
    const { id } = (await t.api.sync(t.provider.apiKey, body)).body.signal;
    await socket.next(expiredUpdate(id), 5_000);
    // A retry of the body it was created with cannot undo the expiry...
    const retry = await t.api.sync(t.provider.apiKey, body);
    expect(retry.status).toBe(200);
    expect(retry.body).toMatchObject({ result: 'unchanged', signal: { version: 2, status: 'expired' } });
    // ...a change is a new version, with the body's status.
    const revived = await t.api.sync(t.provider.apiKey, { ...body, expires_at: inMs(3_600_000) });
    expect(revived.status).toBe(200);
    expect(revived.body).toMatchObject({ result: 'updated', signal: { version: 3, status: 'active' } });
    await socket.next((m) => m.seq === revived.body.seq);
    await flush(t.api, t.provider.apiKey, [socket], markerBody());
    expect(versionsOf(socket, id).map((m) => [m.version, m.status])).toEqual([
      [1, 'active'],
      [2, 'expired'],
      [3, 'active'],
    ]);
    await socket.close();
  });
});
