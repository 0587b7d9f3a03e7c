import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api, flush, markerBody, signalBody, WsClient } from './support/clients.js';
import { createTestDatabase, startApp, type TestApp, type TestDatabase } from './support/test-app.js';

describe('signal sync: validation, batches, ordering', () => {
  let database: TestDatabase;
  let app: TestApp;
  let api: Api;
  let provider: Awaited<ReturnType<Api['provider']>>;
  let watcher: WsClient;

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await startApp(database, { SYNC_BATCH_MAX_ITEMS: '5', HTTP_BODY_LIMIT_BYTES: '4096' });
    api = new Api(app);
    provider = await api.provider();
    watcher = await WsClient.connect(app.wsUrl, { token: (await api.user('elite')).token });
  });

  afterAll(async () => {
    await watcher?.close().catch(() => undefined);
    await app?.close();
    await database?.drop();
  });

  const invalid: [string, Record<string, unknown>, string][] = [
    ['an unknown field', { leverage: 10 }, 'leverage'],
    ['a float price', { entry: 64250.5 }, 'entry'],
    ['a negative price', { stop_loss: '-1' }, 'stop_loss'],
    ['a non-numeric target', { take_profits: ['65000', 'moon'] }, 'take_profits[1]'],
    ['confidence over 100', { confidence: 101 }, 'confidence'],
    ['a fractional confidence', { confidence: 50.5 }, 'confidence'],
    ['an unknown side', { side: 'hodl' }, 'side'],
    ['a bad timeframe', { timeframe: 'forever' }, 'timeframe'],
    ['a bad issued_at', { issued_at: 'yesterday' }, 'issued_at'],
    ['expiry before issue', { expires_at: '2026-11-20T00:00:00Z' }, 'expires_at'],
    ['a missing symbol', { symbol: undefined }, 'symbol'],
    ['a non-boolean premium', { premium: 'yes' }, 'premium'],
    ['a NUL character in the note', { note: 'before\u0000after' }, 'note'],
    ['a lone surrogate in the note', { note: 'broken \ud800 text' }, 'note'],
  ];

  for (const [name, overrides, field] of invalid) {
    it(`rejects ${name} with 400 naming ${field}, storing and sending nothing`, async () => {
      const body = signalBody(overrides);
      const response = await api.sync(provider.apiKey, body);
      expect(response.status).toBe(400);
      expect(response.body.code).toBe('validation_failed');
      expect(response.body.details.map((d: { field: string }) => d.field)).toContain(field);
      expect(response.body.message).toContain(field);
      const stored = await api.request('GET', `/api/v1/signals?after_seq=0&limit=500`, { token: (await api.user('elite')).token });
      expect(stored.body.data.some((s: { external_id: string }) => s.external_id === body.external_id)).toBe(false);
      await flush(api, provider.apiKey, [watcher]);
      expect(watcher.signals().some((m) => m.external_id === body.external_id)).toBe(false);
    });
  }

  it('rejects a non-JSON body and an oversized body with JSON errors', async () => {
    const path = '/api/v1/external-signals/sync/signal';
    const notJson = await api.request('POST', path, {
      apiKey: provider.apiKey,
      rawBody: 'hello',
      headers: { 'content-type': 'application/json' },
    });
    expect(notJson.status).toBe(400);
    expect(notJson.body.code).toBe('bad_request');
    const huge = await api.sync(provider.apiKey, signalBody({ note: 'x'.repeat(5000) }));
    expect(huge.status).toBe(413);
    expect(huge.body.code).toBe('payload_too_large');
  });

  it('answers each item of a batch individually, in order, and broadcasts the stored ones', async () => {
    const existing = signalBody();
    const first = await api.sync(provider.apiKey, existing);
    const fresh = signalBody({ symbol: 'SOLUSDT', premium: true });
    const response = await api.request('POST', '/api/v1/external-signals/sync/signals', {
      apiKey: provider.apiKey,
      body: { signals: [fresh, { ...signalBody(), confidence: 'high' }, existing, { ...existing, confidence: 10 }] },
    });
    expect(response.status).toBe(200);
    const [created, rejected, unchanged, updated] = response.body.results;
    expect(created).toMatchObject({ index: 0, status: 201, result: 'created' });
    expect(rejected).toMatchObject({ index: 1, status: 400, error: { code: 'validation_failed' } });
    expect(rejected.error.details[0].field).toBe('signals[1].confidence');
    expect(unchanged).toMatchObject({ index: 2, status: 200, result: 'unchanged', seq: first.body.seq });
    expect(updated).toMatchObject({ index: 3, status: 200, result: 'updated' });
    expect(updated.signal.version).toBe(2);
    expect(updated.seq).toBe(created.seq + 1);

    await flush(api, provider.apiKey, [watcher]);
    const seen = watcher.signals().filter((m) => [fresh.external_id, existing.external_id].includes(m.external_id));
    expect(seen.map((m) => [m.type, m.seq])).toEqual([
      ['signal', first.body.seq],
      ['signal', created.seq],
      ['signal_update', updated.seq],
    ]);
  });

  it('answers, broadcasts and stores the same signal, for a key created and amended within one batch', async () => {
    const before = (await api.sync(provider.apiKey, markerBody())).body.seq;
    const original = signalBody({ entry: '100.50', stop_loss: null, take_profits: ['101.0', '102'], expires_at: '2099-01-01T00:00:00.5Z' });
    delete original.note;
    const amended = { ...original, confidence: 10, note: 'tightened' };
    const other = signalBody({ premium: true, take_profits: [] });
    const response = await api.request('POST', '/api/v1/external-signals/sync/signals', {
      apiKey: provider.apiKey,
      body: { signals: [original, amended, original, other] },
    });
    const [created, updated, lateRetry, premium] = response.body.results;
    expect([created, updated, lateRetry, premium].map((r) => r.result)).toEqual(['created', 'updated', 'unchanged', 'created']);
    expect(created.signal).toMatchObject({ entry: '100.5', stop_loss: null, take_profits: ['101', '102'], note: null, version: 1 });
    expect(updated.signal).toMatchObject({ id: created.signal.id, version: 2, confidence: 10, note: 'tightened' });
    expect(lateRetry.signal).toEqual(updated.signal);
    expect(premium.signal).toMatchObject({ premium: true, take_profits: [] });

    await flush(api, provider.apiKey, [watcher]);
    const live = watcher.signals().filter((m) => m.seq > before && m.symbol !== 'MARKER');
    expect(live.map(({ type, ...signal }) => [type, signal])).toEqual([
      ['signal', created.signal],
      ['signal_update', updated.signal],
      ['signal', premium.signal],
    ]);
    const { token } = await api.user('elite');
    const stored = await api.request('GET', `/api/v1/signals?after_seq=${before}`, { token });
    expect(stored.body.data.filter((s: any) => s.symbol !== 'MARKER')).toEqual([updated.signal, premium.signal]);
  });

  it('keeps storing after a batch whose every item was invalid', async () => {
    const invalid = await api.request('POST', '/api/v1/external-signals/sync/signals', {
      apiKey: provider.apiKey,
      body: { signals: [signalBody({ side: 'up' }), signalBody({ entry: '0' })] },
    });
    expect(invalid.status).toBe(200);
    expect(invalid.body.results.map((r: { status: number }) => r.status)).toEqual([400, 400]);
    const next = await api.sync(provider.apiKey, signalBody());
    expect(next.status).toBe(201);
    await watcher.next((m) => m.seq === next.body.seq);
  });

  it('bounds the batch size', async () => {
    const response = await api.request('POST', '/api/v1/external-signals/sync/signals', {
      apiKey: provider.apiKey,
      body: { signals: Array.from({ length: 6 }, () => signalBody()) },
    });
    expect(response.status).toBe(400);
    expect(response.body.details[0].field).toBe('signals');
  });

  it('keeps seq gapless and in delivery order under concurrent syncs, each delivered once', async () => {
    const before = watcher.signals().length;
    const bodies = Array.from({ length: 40 }, (_, i) => signalBody({ premium: i % 3 === 0 }));
    const responses = await Promise.all(bodies.map((body) => api.sync(provider.apiKey, body)));
    expect(responses.every((r) => r.status === 201)).toBe(true);
    const seqs = responses.map((r) => r.body.seq).sort((a, b) => a - b);
    expect(seqs.at(-1)! - seqs[0]! + 1).toBe(40);
    await flush(api, provider.apiKey, [watcher]);
    const delivered = watcher
      .signals()
      .slice(before)
      .filter((m) => m.symbol !== 'MARKER')
      .map((m) => m.seq);
    expect(delivered).toEqual(seqs);
  });

  it('keeps external ids separate per provider', async () => {
    const other = await api.provider();
    const body = signalBody();
    const mine = await api.sync(provider.apiKey, body);
    const theirs = await api.sync(other.apiKey, body);
    expect(mine.status).toBe(201);
    expect(theirs.status).toBe(201);
    expect(theirs.body.signal.id).not.toBe(mine.body.signal.id);
    expect(theirs.body.signal.provider).toBe(other.id);
  });
});
