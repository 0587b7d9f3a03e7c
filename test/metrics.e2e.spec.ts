import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetricsServer } from '../src/metrics/metrics-endpoint.js';
import { waitFor } from './support/processes.js';
import { Api, flush, markerBody, signalBody, UpgradeRefused, WsClient } from './support/clients.js';
import { parsePrometheusText, scrape, type Scrape } from './support/prometheus.js';
import { createTestDatabase, startApp, type TestApp, type TestDatabase } from './support/test-app.js';

const TOKEN = 'metrics-token-for-the-tests-0001';

/** The families an operator's dashboards and alerts are built on. */
const FAMILIES = {
  counter: [
    'signalcast_connections_opened_total',
    'signalcast_connections_closed_total',
    'signalcast_upgrades_refused_total',
    'signalcast_sync_requests_total',
    'signalcast_signals_broadcast_total',
    'signalcast_messages_sent_total',
    'signalcast_sent_bytes_total',
    'signalcast_replays_total',
    'signalcast_signals_replayed_total',
    'signalcast_slow_consumers_cut_total',
    'signalcast_rate_limited_total',
    'signalcast_tier_cache_hits_total',
    'signalcast_tier_cache_misses_total',
    'signalcast_gaps_refilled_total',
    'signalcast_write_conflicts_total',
    'signalcast_signals_expired_total',
    'signalcast_delivery_receipts_total',
    'process_cpu_seconds_total',
  ],
  gauge: [
    'signalcast_connections',
    'signalcast_users',
    'signalcast_bus_up',
    'nodejs_heap_size_used_bytes',
    'process_open_fds',
    'nodejs_eventloop_lag_p99_seconds',
  ],
  histogram: [
    'signalcast_sync_duration_seconds',
    'signalcast_write_group_size',
    'signalcast_fanout_duration_seconds',
    'signalcast_delivery_latency_seconds',
    'nodejs_gc_duration_seconds',
  ],
};

describe('/metrics behind METRICS_TOKEN on the service port', () => {
  let database: TestDatabase;
  let app: TestApp;
  let api: Api;
  let provider: Awaited<ReturnType<Api['provider']>>;
  const read = async (): Promise<Scrape> => {
    const answer = await scrape(`${app.baseUrl}/metrics`, TOKEN);
    expect(answer.status).toBe(200);
    return answer.scrape!;
  };

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await startApp(database, { METRICS_TOKEN: TOKEN, WS_RATE_LIMIT_BURST: '2', WS_RATE_LIMIT_PER_SECOND: '1' });
    api = new Api(app);
    provider = await api.provider();
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  it('refuses a scraper without the token, or with another, with a JSON 401', async () => {
    for (const token of [undefined, 'metrics-token-for-the-tests-0002', `${TOKEN}x`]) {
      const answer = await scrape(`${app.baseUrl}/metrics`, token);
      expect(answer.status).toBe(401);
      expect(answer.type).toContain('application/json');
      expect(JSON.parse(answer.body).code).toBe('unauthorized');
    }
  });

  it('serves the Prometheus text format with the process and signalcast families, typed', async () => {
    const answer = await scrape(`${app.baseUrl}/metrics`, TOKEN);
    expect(answer.type).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const [type, names] of Object.entries(FAMILIES)) {
      for (const name of names) expect(answer.scrape!.family(name).type, name).toBe(type.toUpperCase());
    }
    expect(answer.scrape!.value('signalcast_bus_up')).toBe(1);
  });

  it('moves with real traffic: sockets by tier, syncs by result, broadcasts, messages, replays, closes, refusals', async () => {
    const before = await read();
    const pro = await api.user('pro');
    const free = await api.user('free');
    const proSocket = await WsClient.connect(app.wsUrl, { token: pro.token });
    const freeSocket = await WsClient.connect(app.wsUrl, { token: free.token });
    await expect(WsClient.open(app.wsUrl, { token: 'not-a-token' })).rejects.toBeInstanceOf(UpgradeRefused);

    const body = signalBody({ premium: true });
    const premium = await api.sync(provider.apiKey, body);
    expect(premium.status).toBe(201);
    expect((await api.sync(provider.apiKey, { ...body, confidence: 11 })).status).toBe(200);
    expect((await api.sync(provider.apiKey, signalBody({ confidence: 'high' }))).status).toBe(400);
    const marker = markerBody();
    await flush(api, provider.apiKey, [proSocket, freeSocket], marker);
    const during = await read();

    expect(during.value('signalcast_connections', { tier: 'pro' }) - before.value('signalcast_connections', { tier: 'pro' })).toBe(1);
    expect(during.value('signalcast_users', { tier: 'free' }) - before.value('signalcast_users', { tier: 'free' })).toBe(1);
    const moved = (name: string, labels: Record<string, string> = {}) => during.value(name, labels) - before.value(name, labels);
    expect(moved('signalcast_connections_opened_total')).toBe(2);
    expect(moved('signalcast_upgrades_refused_total', { status: '401' })).toBe(1);
    expect(moved('signalcast_sync_requests_total', { result: 'created' })).toBe(2);
    expect(moved('signalcast_sync_requests_total', { result: 'updated' })).toBe(1);
    expect(moved('signalcast_sync_requests_total', { result: 'invalid' })).toBe(1);
    expect(moved('signalcast_signals_broadcast_total', { type: 'signal' })).toBe(2);
    expect(moved('signalcast_signals_broadcast_total', { type: 'signal_update' })).toBe(1);
    // The pro socket gets the premium signal, its update and the marker; the free one the marker.
    expect(moved('signalcast_messages_sent_total')).toBe(4);
    expect(moved('signalcast_sent_bytes_total')).toBeGreaterThan(4 * 200);
    const histogramMoved = (name: string, labels: Record<string, string> = {}) => during.count(name, labels) - before.count(name, labels);
    expect(histogramMoved('signalcast_sync_duration_seconds', { endpoint: 'single' })).toBe(4);
    expect(histogramMoved('signalcast_fanout_duration_seconds')).toBe(3);
    expect(histogramMoved('signalcast_write_group_size')).toBeGreaterThanOrEqual(1);

    // A resume from before the premium signal replays it and its update as one current version.
    const resumed = await WsClient.connect(app.wsUrl, { token: pro.token, since: premium.body.seq - 1 });
    await resumed.next((m) => m.type === 'replay_complete');
    for (let i = 0; i < 4; i++) freeSocket.send({ type: 'ping' });
    await freeSocket.next((m) => m.type === 'error' && m.code === 'rate_limited');
    await proSocket.close();
    await resumed.close();
    await freeSocket.close();
    // A client's close() without a code is 1005 (no status) at the server; its close event may come a moment later.
    const closed = (scrape: Scrape) => scrape.value('signalcast_connections_closed_total', { code: '1005' });
    let after = await read();
    await waitFor(async () => closed((after = await read())) - closed(during) >= 3, 5_000, 'the closes were never counted');
    expect(
      after.value('signalcast_replays_total', { outcome: 'complete' }) - during.value('signalcast_replays_total', { outcome: 'complete' }),
    ).toBe(1);
    expect(after.value('signalcast_signals_replayed_total') - during.value('signalcast_signals_replayed_total')).toBe(2);
    expect(
      after.value('signalcast_rate_limited_total', { scope: 'ws' }) - during.value('signalcast_rate_limited_total', { scope: 'ws' }),
    ).toBeGreaterThan(0);
    expect(closed(after) - closed(during)).toBe(3);
    expect(after.value('signalcast_connections', { tier: 'pro' })).toBe(0);
  });
});

describe('/metrics on METRICS_PORT', () => {
  let database: TestDatabase;
  let apps: TestApp[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
  });

  afterAll(async () => {
    for (const app of apps) await app.close();
    await database?.drop();
  });

  it('is not on the service port without a token or a metrics port', async () => {
    const app = await startApp(database);
    apps.push(app);
    const answer = await scrape(`${app.baseUrl}/metrics`);
    expect(answer.status).toBe(404);
    expect(JSON.parse(answer.body).code).toBe('not_found');
  });

  it('serves on 127.0.0.1:METRICS_PORT only, without a token unless one is set', async () => {
    const open = await startApp(database, { METRICS_PORT: '0' });
    const guarded = await startApp(database, { METRICS_PORT: '0', METRICS_TOKEN: TOKEN });
    apps = [...apps, open, guarded];
    const portOf = (app: TestApp) => app.app.get(MetricsServer).port!;
    expect((await scrape(`${open.baseUrl}/metrics`)).status).toBe(404);
    const served = await scrape(`http://127.0.0.1:${portOf(open)}/metrics`);
    expect(served.status).toBe(200);
    expect(served.scrape!.family('signalcast_connections').type).toBe('GAUGE');
    expect((await scrape(`http://127.0.0.1:${portOf(open)}/other`)).status).toBe(404);
    expect((await scrape(`http://127.0.0.1:${portOf(guarded)}/metrics`)).status).toBe(401);
    expect((await scrape(`http://127.0.0.1:${portOf(guarded)}/metrics`, TOKEN)).status).toBe(200);
    expect((await scrape(`${guarded.baseUrl}/metrics`, TOKEN)).status).toBe(404);
  });
});

describe('the text-format parser the metrics tests read with', () => {
  it('reads families, labelled histograms, escapes, special values and timestamps', () => {
    const families = parsePrometheusText(
      [
        '# HELP a_total A counter.',
        '# TYPE a_total counter',
        'a_total{code="1000"} 3',
        'a_total{code="other",note="quote \\" and \\\\ and \\n"} 4 1700000000000',
        '# a plain comment',
        '# TYPE h histogram',
        'h_bucket{endpoint="single",le="0.1"} 3',
        'h_bucket{endpoint="single",le="+Inf"} 4',
        'h_sum{endpoint="single"} 0.5',
        'h_count{endpoint="single"} 4',
        'h_bucket{endpoint="batch",le="+Inf"} 1',
        'h_sum{endpoint="batch"} NaN',
        'h_count{endpoint="batch"} 1',
      ].join('\n'),
    );
    expect(families.get('a_total')).toMatchObject({ help: 'A counter.', type: 'COUNTER' });
    expect(families.get('a_total')!.samples[1]!.labels.note).toBe('quote " and \\ and \n');
    const h = families.get('h')!;
    expect(h.samples.filter((s) => s.name === 'h_count').map((s) => [s.labels.endpoint, s.value])).toEqual([
      ['single', 4],
      ['batch', 1],
    ]);
    expect(h.samples.find((s) => s.labels.le === '+Inf')!.value).toBe(4);
  });

  it.each([
    ['a sample of an undeclared family', 'x 1'],
    ['a value that is not a number', '# TYPE x gauge\nx one'],
    ['an unterminated label value', '# TYPE x gauge\nx{a="1} 2'],
    ['a bad escape', '# TYPE x gauge\nx{a="\\q"} 2'],
    ['a family declared twice', '# TYPE x gauge\n# TYPE x gauge'],
    ['a bucket without le', '# TYPE h histogram\nh_bucket{a="1"} 2'],
    ['a bad timestamp', '# TYPE x gauge\nx 1 soon'],
  ])('refuses %s', (_, text) => {
    expect(() => parsePrometheusText(text)).toThrow();
  });
});
