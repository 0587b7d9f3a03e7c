import { describe, expect, it } from 'vitest';
import { flush, markerBody, signalBody, WsClient } from './support/clients.js';
import { useTestApp } from './support/test-app.js';

describe('subscriber protocol: requests, filters, resume', () => {
  const t = useTestApp({ WS_REPLAY_MAX: '30', WS_REPLAY_PAGE_SIZE: '7' });

  const connect = async (tier: string, options: { since?: number } = {}) => {
    const user = await t.api.user(tier);
    return { user, socket: await WsClient.connect(t.app.wsUrl, { token: user.token, ...options }) };
  };

  it('acknowledges requests with their id and reports invalid filters by field, keeping the previous filter', async () => {
    const { socket } = await connect('elite');
    const ack = await socket.request({ type: 'subscribe', filters: { symbols: ['btcusdt'], min_confidence: 60 } });
    expect(ack).toMatchObject({ type: 'ack', subscribed: true, filters: { symbols: ['BTCUSDT'], min_confidence: 60 } });

    const invalid = [
      [{ type: 'subscribe', filters: { symbols: [] } }, 'filters.symbols'],
      [{ type: 'subscribe', filters: { sides: ['up'] } }, 'filters.sides.0'],
      [{ type: 'subscribe', filters: { min_confidence: 101 } }, 'filters.min_confidence'],
      [{ type: 'subscribe', filters: { providers: ['not-a-uuid'] } }, 'filters.providers.0'],
      [{ type: 'subscribe', filters: { colour: 'red' } }, 'filters.colour'],
      [{ type: 'resume', since: -1 }, 'since'],
      [{ type: 'resume' }, 'since'],
    ] as const;
    for (const [request, field] of invalid) {
      const error = await socket.request(request);
      expect(error).toMatchObject({ type: 'error', code: 'invalid_request', field });
    }

    const low = await t.api.sync(t.provider.apiKey, signalBody({ symbol: 'BTCUSDT', confidence: 10 }));
    const other = await t.api.sync(t.provider.apiKey, signalBody({ symbol: 'ETHUSDT', confidence: 90 }));
    const wanted = await t.api.sync(t.provider.apiKey, signalBody({ symbol: 'BTCUSDT', confidence: 61 }));
    await flush(t.api, t.provider.apiKey, [socket], markerBody({ symbol: 'BTCUSDT', confidence: 100 }));
    expect(socket.seqs()).toEqual([wanted.body.seq]);
    expect(socket.seqs()).not.toContain(low.body.seq);
    expect(socket.seqs()).not.toContain(other.body.seq);
    await socket.close();
  });

  it('applies each filter criterion, and never widens what the tier allows', async () => {
    const other = await t.api.provider();
    const free = await connect('free');
    const pro = await connect('pro');
    const filters = { symbols: ['SOLUSDT'], markets: ['crypto'], providers: [t.provider.id], sides: ['long', 'buy'], min_confidence: 50 };
    await free.socket.request({ type: 'subscribe', filters });
    await pro.socket.request({ type: 'subscribe', filters });

    const base = { symbol: 'SOLUSDT', market: 'crypto', side: 'long', confidence: 50 };
    const match = await t.api.sync(t.provider.apiKey, signalBody(base));
    const premiumMatch = await t.api.sync(t.provider.apiKey, signalBody({ ...base, premium: true }));
    const misses = [
      await t.api.sync(t.provider.apiKey, signalBody({ ...base, symbol: 'ADAUSDT' })),
      await t.api.sync(t.provider.apiKey, signalBody({ ...base, market: 'forex' })),
      await t.api.sync(other.apiKey, signalBody(base)),
      await t.api.sync(t.provider.apiKey, signalBody({ ...base, side: 'short' })),
      await t.api.sync(t.provider.apiKey, signalBody({ ...base, confidence: 49 })),
    ];
    expect(misses.every((m) => m.status === 201)).toBe(true);
    await flush(t.api, t.provider.apiKey, [free.socket, pro.socket], markerBody(base));

    expect(free.socket.seqs()).toEqual([match.body.seq]);
    expect(pro.socket.seqs()).toEqual([match.body.seq, premiumMatch.body.seq]);

    // An empty subscribe drops the filter: everything the tier allows.
    await pro.socket.request({ type: 'subscribe' });
    const any = await t.api.sync(other.apiKey, signalBody({ symbol: 'DOGEUSDT', side: 'sell', confidence: 1 }));
    await pro.socket.next((m) => m.seq === any.body.seq);
    await Promise.all([free.socket.close(), pro.socket.close()]);
  });

  it('stops signals on unsubscribe and resumes them on subscribe', async () => {
    const { socket } = await connect('free');
    expect(await socket.request({ type: 'unsubscribe' })).toMatchObject({ type: 'ack', subscribed: false });
    const missed = await t.api.sync(t.provider.apiKey, signalBody());
    await socket.request({ type: 'ping' });
    await socket.request({ type: 'subscribe' });
    await flush(t.api, t.provider.apiKey, [socket]);
    expect(socket.seqs()).not.toContain(missed.body.seq);
    expect(socket.seqs()).toEqual([]);
    await socket.close();
  });

  it('resumes after a disconnect while signals keep arriving: every signal once, in order', async () => {
    const first = await connect('pro');
    const before = await t.api.sync(t.provider.apiKey, signalBody());
    await first.socket.next((m) => m.seq === before.body.seq);
    const lastSeen = first.socket.seqs().at(-1)!;
    await first.socket.close();

    const synced: number[] = [];
    let stop = false;
    const producer = (async () => {
      for (let i = 0; !stop && i < 60; i++) {
        const response = await t.api.sync(t.provider.apiKey, signalBody({ premium: i % 4 === 0 }));
        synced.push(response.body.seq);
      }
    })();
    while (synced.length < 10) await new Promise((resolve) => setTimeout(resolve, 5));

    const again = await WsClient.connect(t.app.wsUrl, { token: first.user.token, since: lastSeen });
    const complete = await again.next((m) => m.type === 'replay_complete');
    expect(complete.last_seq).toBeGreaterThan(lastSeen);
    await producer;
    stop = true;
    await flush(t.api, t.provider.apiKey, [again]);

    const received = again.seqs();
    expect(new Set(received).size).toBe(received.length);
    expect(received).toEqual([...received].sort((a, b) => a - b));
    expect(received).toEqual(synced.filter((seq) => seq > lastSeen));
    expect(received.length).toBe(60);
    await again.close();
  });

  it('replays by the tier the user has now: a downgrade while away hides premium signals', async () => {
    const { user, socket } = await connect('elite');
    const since = (await t.api.sync(t.provider.apiKey, signalBody())).body.seq;
    await socket.close();
    const premium = await t.api.sync(t.provider.apiKey, signalBody({ premium: true }));
    const regular = await t.api.sync(t.provider.apiKey, signalBody());
    expect((await t.api.setTier(user.id, 'basic')).status).toBe(200);

    const resumed = await WsClient.connect(t.app.wsUrl, { token: user.token, since });
    expect(resumed.messages[0]).toMatchObject({ type: 'welcome', tier: 'basic' });
    const complete = await resumed.next((m) => m.type === 'replay_complete');
    expect(resumed.seqs()).toEqual([regular.body.seq]);
    expect(resumed.seqs()).not.toContain(premium.body.seq);
    expect(complete).toMatchObject({ count: 1, last_seq: regular.body.seq });
    await resumed.close();
  });

  it('replays with the socket filter, and carries versions so stale updates can be ignored', async () => {
    const { socket } = await connect('pro');
    await socket.request({ type: 'subscribe', filters: { symbols: ['XRPUSDT'] } });
    const since = socket.messages[0].latest_seq;
    const body = signalBody({ symbol: 'XRPUSDT' });
    await t.api.sync(t.provider.apiKey, body);
    await t.api.sync(t.provider.apiKey, signalBody({ symbol: 'LTCUSDT' }));
    const amended = await t.api.sync(t.provider.apiKey, { ...body, confidence: 99 });
    await socket.next((m) => m.seq === amended.body.seq);

    const complete = await socket.request({ type: 'resume', since });
    expect(complete).toMatchObject({ type: 'replay_complete', count: 1, last_seq: amended.body.seq });
    const replayed = socket.signals().slice(2);
    expect(replayed).toEqual([expect.objectContaining({ type: 'signal_update', version: 2, seq: amended.body.seq, confidence: 99 })]);
    await socket.close();
  });

  it('answers resync_required past the replay bound instead of dropping silently', async () => {
    const { user, socket } = await connect('free');
    const since = socket.messages[0].latest_seq;
    await socket.close();
    for (let i = 0; i < 31; i++) await t.api.sync(t.provider.apiKey, signalBody());

    const resumed = await WsClient.connect(t.app.wsUrl, { token: user.token, since });
    const resync = await resumed.next((m) => m.type === 'resync_required');
    expect(resync).toMatchObject({ since, max_replay: 30 });
    expect(resync.latest_seq).toBeGreaterThanOrEqual(since + 31);
    expect(resumed.seqs()).toEqual([]);

    // Idle until the client decides: a resume from a recent seq works again.
    const complete = await resumed.request({ type: 'resume', since: resync.latest_seq - 3 });
    expect(complete).toMatchObject({ type: 'replay_complete', count: 3 });
    const live = await t.api.sync(t.provider.apiKey, signalBody());
    await resumed.next((m) => m.seq === live.body.seq);
    await resumed.close();
  });

  it('takes a filter on the connection URL, applied to the replay and to live signals', async () => {
    const { user, socket } = await connect('pro');
    const since = socket.messages[0].latest_seq;
    await socket.close();
    const wanted = await t.api.sync(t.provider.apiKey, signalBody({ symbol: 'AVAXUSDT', side: 'short' }));
    await t.api.sync(t.provider.apiKey, signalBody({ symbol: 'AVAXUSDT', side: 'long' }));
    await t.api.sync(t.provider.apiKey, signalBody({ symbol: 'DOTUSDT', side: 'short' }));
    const resumed = await WsClient.connect(`${t.app.wsUrl}?symbols=avaxusdt&sides=short,sell`, { token: user.token, since });
    expect(await resumed.next((m) => m.type === 'replay_complete')).toMatchObject({ count: 1 });
    const live = await t.api.sync(t.provider.apiKey, signalBody({ symbol: 'AVAXUSDT', side: 'sell' }));
    await t.api.sync(t.provider.apiKey, signalBody({ symbol: 'AVAXUSDT', side: 'buy' }));
    await flush(t.api, t.provider.apiKey, [resumed], markerBody({ symbol: 'AVAXUSDT', side: 'short' }));
    expect(resumed.seqs()).toEqual([wanted.body.seq, live.body.seq]);
    const refused = await WsClient.open(`${t.app.wsUrl}?sides=up&token=${user.token}`).catch((error) => error);
    expect(refused.status).toBe(400);
    await resumed.close();
  });

  it('refuses a malformed since at the upgrade', async () => {
    const user = await t.api.user('free');
    const refused = await WsClient.open(`${t.app.wsUrl}?since=abc&token=${user.token}`).catch((error) => error);
    expect(refused.status).toBe(400);
  });
});
