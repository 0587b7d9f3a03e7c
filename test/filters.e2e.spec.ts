import { describe, expect, it } from 'vitest';
import { flush, markerBody, signalBody, UpgradeRefused, WsClient } from './support/clients.js';
import { useTestApp } from './support/test-app.js';

/** The same subscription filter on the connection URL, on `subscribe` and on the listing, `premium` included. */
describe('filters everywhere, premium included', () => {
  const t = useTestApp();

  it('narrows a socket to premium or regular signals, on the URL and by subscribe, never widening the tier', async () => {
    const pro = await t.api.user('pro');
    const free = await t.api.user('free');
    const premiumOnly = await WsClient.connect(`${t.app.wsUrl}?premium=true`, { token: pro.token });
    const regularOnly = await WsClient.connect(t.app.wsUrl, { token: pro.token });
    const ack = await regularOnly.request({ type: 'subscribe', filters: { premium: false } });
    expect(ack).toMatchObject({ type: 'ack', subscribed: true, filters: { premium: false } });
    const freePremium = await WsClient.connect(`${t.app.wsUrl}?premium=true`, { token: free.token });

    const premium = await t.api.sync(t.provider.apiKey, signalBody({ premium: true }));
    const regular = await t.api.sync(t.provider.apiKey, signalBody());
    // Markers every socket takes: a premium one for the premium-only sockets, a regular one for the other.
    await flush(t.api, t.provider.apiKey, [premiumOnly], markerBody({ premium: true }));
    await flush(t.api, t.provider.apiKey, [regularOnly], markerBody());
    expect(premiumOnly.seqs()).toEqual([premium.body.seq]);
    expect(regularOnly.seqs()).toEqual([regular.body.seq]);
    expect(freePremium.seqs()).toEqual([]);
    await Promise.all([premiumOnly.close(), regularOnly.close(), freePremium.close()]);
  });

  it('filters the listing by the same parameters as the connection URL', async () => {
    const elite = await t.api.user('elite');
    const free = await t.api.user('free');
    const after = (await t.api.sync(t.provider.apiKey, markerBody())).body.seq;
    const wanted = await t.api.sync(t.provider.apiKey, signalBody({ premium: true, symbol: 'SOLUSDT', side: 'short', confidence: 90 }));
    await t.api.sync(t.provider.apiKey, signalBody({ premium: false, symbol: 'SOLUSDT', side: 'short', confidence: 90 }));
    await t.api.sync(t.provider.apiKey, signalBody({ premium: true, symbol: 'SOLUSDT', side: 'long', confidence: 90 }));
    await t.api.sync(t.provider.apiKey, signalBody({ premium: true, symbol: 'SOLUSDT', side: 'short', confidence: 50 }));
    const query = `after_seq=${after}&symbols=solusdt&sides=short,sell&min_confidence=70&premium=true&providers=${t.provider.id}&markets=crypto`;
    const listed = await t.api.request('GET', `/api/v1/signals?${query}`, { token: elite.token });
    expect(listed.status).toBe(200);
    expect(listed.body.data.map((s: { seq: number }) => s.seq)).toEqual([wanted.body.seq]);
    const forFree = await t.api.request('GET', `/api/v1/signals?${query}`, { token: free.token });
    expect(forFree.body.data).toEqual([]);
    const legacy = await t.api.request('GET', `/api/v1/signals?after_seq=${after}&symbol=SOLUSDT&premium=false`, { token: elite.token });
    expect(legacy.body.data).toHaveLength(1);
  });

  it('narrows by status, each version by its own, on the URL, by subscribe and on the listing', async () => {
    const user = await t.api.user('free');
    const closedOnly = await WsClient.connect(`${t.app.wsUrl}?statuses=closed`, { token: user.token });
    const activeOnly = await WsClient.connect(t.app.wsUrl, { token: user.token });
    const ack = await activeOnly.request({ type: 'subscribe', filters: { statuses: ['active'] } });
    expect(ack).toMatchObject({ type: 'ack', subscribed: true, filters: { statuses: ['active'] } });

    const after = (await t.api.sync(t.provider.apiKey, markerBody({ status: 'closed' }))).body.seq;
    const open = await t.api.sync(t.provider.apiKey, signalBody());
    const body = signalBody();
    const created = await t.api.sync(t.provider.apiKey, body);
    const closed = await t.api.sync(t.provider.apiKey, { ...body, status: 'closed' });
    await flush(t.api, t.provider.apiKey, [activeOnly]);
    await flush(t.api, t.provider.apiKey, [closedOnly], markerBody({ status: 'closed' }));
    expect(activeOnly.seqs()).toEqual([open.body.seq, created.body.seq]);
    expect(closedOnly.seqs()).toEqual([closed.body.seq]);

    const listed = async (query: string) =>
      (await t.api.request('GET', `/api/v1/signals?after_seq=${after}&symbols=BTCUSDT&${query}`, { token: user.token })).body.data.map(
        (s: { seq: number }) => s.seq,
      );
    // The listing holds each signal's current version: the closed one is no longer active.
    expect(await listed('status=active')).toEqual([open.body.seq]);
    expect(await listed('statuses=closed')).toEqual([closed.body.seq]);
    expect(await listed('statuses=active&status=closed')).toEqual([open.body.seq, closed.body.seq]);
    await Promise.all([closedOnly.close(), activeOnly.close()]);
  });

  it.each([
    ['statuses=open', 'statuses.0'],
    ['status=active,over', 'statuses.1'],
    ['premium=yes', 'premium'],
    ['premium=', 'premium'],
    ['sides=up', 'sides.0'],
    ['min_confidence=101', 'min_confidence'],
  ])('refuses %s with 400 naming the field, on the listing and the upgrade', async (param, field) => {
    const user = await t.api.user('pro');
    const listed = await t.api.request('GET', `/api/v1/signals?${param}`, { token: user.token });
    expect(listed.status).toBe(400);
    expect(listed.body).toMatchObject({ code: 'validation_failed', details: [{ field }] });
    const refused = await WsClient.open(`${t.app.wsUrl}?${param}&token=${user.token}`).catch((error) => error);
    expect(refused).toBeInstanceOf(UpgradeRefused);
    expect(refused.status).toBe(400);
  });
});
