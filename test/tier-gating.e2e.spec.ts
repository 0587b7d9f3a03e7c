import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api, flush, signalBody, WsClient } from './support/clients.js';
import { createTestDatabase, startApp, type TestApp, type TestDatabase } from './support/test-app.js';

describe('tier-gated delivery', () => {
  let database: TestDatabase;
  let app: TestApp;
  let api: Api;
  let provider: Awaited<ReturnType<Api['provider']>>;
  const sockets: WsClient[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await startApp(database);
    api = new Api(app);
    provider = await api.provider();
  });

  afterAll(async () => {
    await Promise.all(sockets.map((socket) => socket.close().catch(() => undefined)));
    await app?.close();
    await database?.drop();
  });

  async function subscriber(tier: string) {
    const user = await api.user(tier);
    const socket = await WsClient.connect(app.wsUrl, { token: user.token });
    sockets.push(socket);
    return { user, socket };
  }

  it('delivers regular signals to every tier and premium ones only to pro and elite', async () => {
    const clients = {
      free: await subscriber('free'),
      basic: await subscriber('basic'),
      pro: await subscriber('pro'),
      elite: await subscriber('elite'),
    };
    for (const [tier, { socket, user }] of Object.entries(clients)) {
      const welcome = socket.messages[0];
      expect(welcome).toMatchObject({ type: 'welcome', user_id: user.id, tier });
      expect(typeof welcome.latest_seq).toBe('number');
    }

    const premium = await api.sync(provider.apiKey, signalBody({ premium: true, symbol: 'ETHUSDT' }));
    const regular = await api.sync(provider.apiKey, signalBody({ premium: false }));
    expect(premium.status).toBe(201);
    expect(regular.status).toBe(201);
    expect(regular.body.seq).toBeGreaterThan(premium.body.seq);

    const all = Object.values(clients).map((c) => c.socket);
    await flush(api, provider.apiKey, all);

    const seen = (socket: WsClient) =>
      socket
        .signals()
        .filter((m) => m.symbol !== 'MARKER')
        .map((m) => m.seq);
    expect(seen(clients.free.socket)).toEqual([regular.body.seq]);
    expect(seen(clients.basic.socket)).toEqual([regular.body.seq]);
    expect(seen(clients.pro.socket)).toEqual([premium.body.seq, regular.body.seq]);
    expect(seen(clients.elite.socket)).toEqual([premium.body.seq, regular.body.seq]);

    const delivered = clients.pro.socket.signals()[0];
    expect(delivered).toMatchObject({
      type: 'signal',
      id: premium.body.signal.id,
      seq: premium.body.seq,
      provider: provider.id,
      symbol: 'ETHUSDT',
      market: 'crypto',
      side: 'long',
      entry: '64250.5',
      stop_loss: '63100',
      take_profits: ['65500', '67000.25'],
      confidence: 80,
      timeframe: '4h',
      premium: true,
      status: 'active',
      version: 1,
      issued_at: '2026-11-21T10:00:00.000Z',
    });
    expect(typeof delivered.received_at).toBe('string');
  });

  it('delivers an identical re-send once and an amendment as a signal_update with a new version', async () => {
    const { socket } = await subscriber('pro');
    const body = signalBody({ premium: true });

    const first = await api.sync(provider.apiKey, body);
    const again = await api.sync(provider.apiKey, body);
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ result: 'unchanged', seq: first.body.seq });
    expect(again.body.signal).toEqual(first.body.signal);

    const amended = await api.sync(provider.apiKey, { ...body, stop_loss: '63500', status: 'closed' });
    expect(amended.status).toBe(200);
    expect(amended.body).toMatchObject({ result: 'updated' });
    expect(amended.body.seq).toBeGreaterThan(first.body.seq);
    expect(amended.body.signal).toMatchObject({ id: first.body.signal.id, version: 2, stop_loss: '63500', status: 'closed' });

    await flush(api, provider.apiKey, [socket]);
    const mine = socket.signals().filter((m) => m.external_id === body.external_id);
    expect(mine.map((m) => [m.type, m.version, m.seq])).toEqual([
      ['signal', 1, first.body.seq],
      ['signal_update', 2, amended.body.seq],
    ]);
  });

  it('does not let a late retry of an earlier version undo an amendment', async () => {
    const v1 = signalBody({ stop_loss: '60000' });
    await api.sync(provider.apiKey, v1);
    const v2 = await api.sync(provider.apiKey, { ...v1, stop_loss: '62000' });
    const late = await api.sync(provider.apiKey, v1);
    expect(late.status).toBe(200);
    expect(late.body).toMatchObject({ result: 'unchanged', seq: v2.body.seq });
    expect(late.body.signal).toMatchObject({ version: 2, stop_loss: '62000' });
  });

  it('treats prices equal in value as identical ("100.50" and "100.5")', async () => {
    const body = signalBody({ entry: '100.50' });
    const first = await api.sync(provider.apiKey, body);
    const again = await api.sync(provider.apiKey, { ...body, entry: '100.5' });
    expect(first.body.signal.entry).toBe('100.5');
    expect(again.body.result).toBe('unchanged');
  });

  it('applies a tier change to open sockets at once, without reconnecting', async () => {
    const up = await subscriber('free');
    const down = await subscriber('elite');

    const before = await api.sync(provider.apiKey, signalBody({ premium: true }));
    await flush(api, provider.apiKey, [up.socket, down.socket]);

    expect((await api.setTier(up.user.id, 'pro')).status).toBe(200);
    expect((await api.setTier(down.user.id, 'basic')).status).toBe(200);
    const after = await api.sync(provider.apiKey, signalBody({ premium: true }));
    await flush(api, provider.apiKey, [up.socket, down.socket]);

    const premiumSeqs = (socket: WsClient) =>
      socket
        .signals()
        .filter((m) => m.premium)
        .map((m) => m.seq);
    expect(premiumSeqs(up.socket)).toEqual([after.body.seq]);
    expect(premiumSeqs(down.socket)).toEqual([before.body.seq]);
  });

  it('serves the same tier rule on GET /api/v1/signals, with seq cursor pagination', async () => {
    const free = await api.user('free');
    const elite = await api.user('elite');
    const start = (await api.sync(provider.apiKey, signalBody({ symbol: 'PAGEUSD' }))).body.seq - 1;
    await api.sync(provider.apiKey, signalBody({ symbol: 'PAGEUSD', premium: true }));
    await api.sync(provider.apiKey, signalBody({ symbol: 'PAGEUSD' }));

    const forFree = await api.request('GET', `/api/v1/signals?symbol=pageusd&after_seq=${start}`, { token: free.token });
    expect(forFree.status).toBe(200);
    expect(forFree.body.data.map((s: any) => s.premium)).toEqual([false, false]);

    const page1 = await api.request('GET', `/api/v1/signals?symbol=PAGEUSD&after_seq=${start}&limit=2`, { token: elite.token });
    expect(page1.body.data).toHaveLength(2);
    expect(page1.body.has_more).toBe(true);
    const page2 = await api.request('GET', `/api/v1/signals?symbol=PAGEUSD&after_seq=${page1.body.next_after_seq}&limit=2`, {
      token: elite.token,
    });
    expect(page2.body.data).toHaveLength(1);
    expect(page2.body.has_more).toBe(false);
    const seqs = [...page1.body.data, ...page2.body.data].map((s: any) => s.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(3);
    // Where a client with no position starts: the highest seq stored, even past what the filter shows.
    await api.sync(provider.apiKey, signalBody({ symbol: 'OTHERUSD' }));
    const latest = (await api.sync(provider.apiKey, signalBody({ symbol: 'OTHERUSD' }))).body.seq;
    expect((await api.request('GET', '/api/v1/signals?symbol=PAGEUSD&limit=1', { token: elite.token })).body.latest_seq).toBe(latest);

    expect((await api.request('GET', '/api/v1/signals')).status).toBe(401);
    expect((await api.request('GET', '/api/v1/signals?limit=0', { token: free.token })).status).toBe(400);
  });
});
