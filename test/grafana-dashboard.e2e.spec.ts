import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LATENCY_BUCKETS } from '../src/metrics/metrics.js';
import { Api, signalBody } from './support/clients.js';
import { scrape, type Scrape } from './support/prometheus.js';
import { createTestDatabase, startApp, type TestApp, type TestDatabase } from './support/test-app.js';

/**
 * docs/grafana-dashboard.json against the service's real `/metrics`: every family a panel's PromQL
 * names is one the service registers (a histogram only through its `_bucket`, `_count` or `_sum`
 * series), every selector is filtered by the `instance` variable, and the SLO variable only offers
 * bounds of the delivery-latency buckets (the share within it reads `le="$slo_seconds"`).
 */
const TOKEN = 'grafana-dashboard-check-token-0001';
const PREFIXES = ['signalcast_', 'nodejs_', 'process_'];

interface Target {
  expr: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
}
interface Variable {
  name: string;
  type: string;
  query: unknown;
  current?: { value: unknown };
  options?: { value: string }[];
}
interface Dashboard {
  __inputs: { name: string; type: string; pluginId: string }[];
  panels: Panel[];
  templating: { list: Variable[] };
}

const dashboard = JSON.parse(readFileSync(new URL('../docs/grafana-dashboard.json', import.meta.url), 'utf8')) as Dashboard;
const queried = dashboard.panels.filter((panel) => panel.type !== 'row');
const expressions = queried.flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel: panel.title, expr: target.expr })));

/**
 * The metric names an expression reads, with their label matchers: identifiers that start with one
 * of PREFIXES, outside string literals (label values such as `le="0.5"` are not names). A small
 * tokenizer, not a PromQL parser: this dashboard's expressions name no label or function that way.
 */
function selectors(expr: string): { name: string; matchers: string }[] {
  const found: { name: string; matchers: string }[] = [];
  const identifier = /[A-Za-z_:][\w:]*/y;
  for (let at = 0; at < expr.length;) {
    const char = expr[at]!;
    if (char === '"' || char === "'" || char === '`') {
      at = endOfString(expr, at);
      continue;
    }
    identifier.lastIndex = at;
    const word = /[A-Za-z_:]/.test(char) ? identifier.exec(expr)?.[0] : undefined;
    if (!word) {
      at++;
      continue;
    }
    at += word.length;
    if (!PREFIXES.some((prefix) => word.startsWith(prefix))) continue;
    let next = at;
    while (/\s/.test(expr[next] ?? '')) next++;
    let matchers = '';
    if (expr[next] === '{') {
      let end = next + 1;
      while (end < expr.length && expr[end] !== '}') end = /["'`]/.test(expr[end]!) ? endOfString(expr, end) : end + 1;
      matchers = expr.slice(next + 1, end);
      at = end + 1;
    }
    found.push({ name: word, matchers });
  }
  return found;
}

function endOfString(expr: string, start: number): number {
  const quote = expr[start];
  let at = start + 1;
  while (at < expr.length && expr[at] !== quote) at += expr[at] === '\\' && quote !== '`' ? 2 : 1;
  return at + 1;
}

/** The family a series name belongs to, and whether that is how such a family is read. */
function family(scraped: Scrape, name: string): string | undefined {
  const direct = scraped.families.get(name);
  if (direct) return direct.type === 'HISTOGRAM' || direct.type === 'SUMMARY' ? undefined : name;
  const suffix = /_(bucket|count|sum)$/.exec(name);
  if (!suffix) return undefined;
  const base = name.slice(0, -suffix[0].length);
  const type = scraped.families.get(base)?.type;
  if (type === 'HISTOGRAM' || (type === 'SUMMARY' && suffix[1] !== 'bucket')) return base;
  return undefined;
}

describe('the tokenizer that reads metric names from PromQL', () => {
  it('finds selectors and their matchers, and ignores label values, labels and functions', () => {
    expect(
      selectors(
        'histogram_quantile(0.99, sum by (tier, le) (rate(signalcast_delivery_latency_seconds_bucket{instance=~"$instance", le="process_x"}[5m])))',
      ),
    ).toEqual([{ name: 'signalcast_delivery_latency_seconds_bucket', matchers: 'instance=~"$instance", le="process_x"' }]);
    expect(selectors('sum(rate(process_cpu_seconds_total [1m])) / nodejs_heap_size_used_bytes{a="}"} + vector($slo_seconds)')).toEqual([
      { name: 'process_cpu_seconds_total', matchers: '' },
      { name: 'nodejs_heap_size_used_bytes', matchers: 'a="}"' },
    ]);
  });
});

describe('docs/grafana-dashboard.json', () => {
  let database: TestDatabase;
  let app: TestApp;
  let scraped: Scrape;

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await startApp(database, { METRICS_TOKEN: TOKEN });
    // One sync first, so that a family registered on first use is there too.
    const api = new Api(app);
    expect((await api.sync((await api.provider()).apiKey, signalBody())).status).toBe(201);
    const answer = await scrape(`${app.baseUrl}/metrics`, TOKEN);
    expect(answer.status).toBe(200);
    scraped = answer.scrape!;
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  it('asks for a Prometheus data source on import, and every panel reads it through the datasource variable', () => {
    expect(dashboard.__inputs).toEqual([expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' })]);
    const variables = new Map(dashboard.templating.list.map((variable) => [variable.name, variable]));
    expect(variables.get('datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(variables.get('instance')).toMatchObject({ type: 'query' });
    for (const panel of queried) {
      expect(panel.datasource, panel.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
    }
  });

  it('reads only families the service registers, each filtered by the instance variable', () => {
    const missing = new Set<string>();
    const unfiltered = new Set<string>();
    const used = new Set<string>();
    for (const { panel, expr } of expressions) {
      for (const { name, matchers } of selectors(expr)) {
        const owner = family(scraped, name);
        if (owner) used.add(owner);
        else missing.add(`${name} (panel "${panel}")`);
        if (!matchers.includes('instance=~"$instance"')) unfiltered.add(`${name} (panel "${panel}")`);
      }
    }
    expect([...missing], 'series that /metrics does not expose (or a histogram read without _bucket/_count/_sum)').toEqual([]);
    expect([...unfiltered], 'selectors without instance=~"$instance"').toEqual([]);
    // The panels the issue asks for read these.
    for (const name of [
      'signalcast_connections',
      'signalcast_messages_sent_total',
      'signalcast_sync_duration_seconds',
      'signalcast_fanout_duration_seconds',
      'signalcast_delivery_latency_seconds',
      'nodejs_eventloop_lag_p99_seconds',
    ]) {
      expect(used, name).toContain(name);
    }
  });

  it('offers as SLO only bounds of the delivery-latency buckets, 0.5 s by default', () => {
    const slo = dashboard.templating.list.find((variable) => variable.name === 'slo_seconds')!;
    expect(slo.current?.value).toBe('0.5');
    const values = String(slo.query).split(',');
    expect(values).toContain('0.5');
    for (const value of values) expect(LATENCY_BUCKETS, `slo_seconds option ${value}`).toContain(Number(value));
    expect(slo.options?.map((option) => option.value) ?? values).toEqual(values);
  });

  it('lays the panels out on the 24-column grid without overlaps, with unique ids', () => {
    const cells = new Map<string, string>();
    for (const panel of dashboard.panels) {
      const { x, y, w, h } = panel.gridPos;
      expect(x + w, panel.title).toBeLessThanOrEqual(24);
      for (let row = y; row < y + h; row++) {
        for (let column = x; column < x + w; column++) {
          const key = `${column},${row}`;
          expect(cells.get(key), `"${panel.title}" overlaps "${cells.get(key)}"`).toBeUndefined();
          cells.set(key, panel.title);
        }
      }
    }
    expect(new Set(dashboard.panels.map((panel) => panel.id)).size).toBe(dashboard.panels.length);
  });
});
