import { StrictMode, useEffect, type ReactNode } from 'react';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { builtinEnvironments } from 'vitest/runtime';
import { SignalcastClient, type ClientOptions, type Signal } from '@signalcast/client';
import { SignalcastProvider, useSignalcastClient, useSignals, type UseSignalsOptions } from '@signalcast/client/react';
import { Api, signalBody } from './support/clients.js';
import { createProvider, createUser } from './support/ledger.js';
import { migrateOnce, requireBuild, startService, stopAll, type ServiceProcess } from './support/processes.js';
import { createTestDatabase, type TestDatabase } from './support/test-app.js';

/**
 * The React entry in happy-dom against the real service (`node dist/main.js` on a fresh PostgreSQL
 * database, a child process: Nest never runs under DOM globals). The SDK runs its browser path
 * with no injection: happy-dom's own WebSocket and fetch, same-origin because the page's URL is
 * the service's.
 *
 * Why the project runs in Node and this file installs vitest's own happy-dom environment itself:
 * under `environment: 'happy-dom'` every module is transformed for the browser, and vite and
 * vitest then rewrite `new URL('..', import.meta.url)` to a page URL. test/support/processes.ts
 * (REPO_ROOT) and src/database/migrator.ts (reached through test-app.ts) compute paths that way
 * and throw at import. Installed here, after the service is up, the DOM also gets the service's
 * URL from the start.
 */

const WAIT = { timeout: 15_000 };
const BATCH_MAX = 100; // SYNC_BATCH_MAX_ITEMS' default (src/config/config.schema.ts)

interface Row {
  external_id: string;
  version: number;
  premium: boolean;
}

let database: TestDatabase;
let service: ServiceProcess;
let api: Api;
let apiKey: string;
let renders = 0;
let dom: { teardown(global: object): unknown } | undefined;
// Loaded once the DOM exists: react-dom probes for it when it is first imported.
let rtl: typeof import('@testing-library/react');

/** A list as an app would render it; the rows are read back from the DOM. */
function Feed(props: UseSignalsOptions) {
  const { signals, isLoading, error, state, lastSeq } = useSignals(props);
  renders++;
  return (
    <section>
      <p data-testid="state">{state}</p>
      <p data-testid="loading">{String(isLoading)}</p>
      <p data-testid="error">{error?.code ?? ''}</p>
      <p data-testid="last-seq">{lastSeq ?? ''}</p>
      <ol>
        {signals.map((s) => (
          <li key={s.id} data-row={JSON.stringify({ external_id: s.external_id, version: s.version, premium: s.premium } satisfies Row)} />
        ))}
      </ol>
    </section>
  );
}

/** Records what the client itself delivered: proves the server filtered, not only the store. */
function Tap({ into }: { into: Signal[] }) {
  const client = useSignalcastClient();
  useEffect(() => client.on('signal', (signal) => void into.push(signal)), [client, into]);
  return null;
}

const rows = (): Row[] => rtl.screen.queryAllByRole('listitem').map((li) => JSON.parse(li.getAttribute('data-row')!) as Row);
const ids = () => rows().map((row) => row.external_id);
const text = (id: string) => rtl.screen.getByTestId(id).textContent;

async function options(tier: 'free' | 'pro' = 'free'): Promise<ClientOptions> {
  const user = await createUser(api, tier);
  return { url: service.baseUrl, getToken: () => user.token };
}

/** Renders under a provider and waits for `live`: only signals synced after that reach a fresh client. */
async function mount(ui: ReactNode, clientOptions: ClientOptions, strict = false) {
  const wrap = (children: ReactNode) => {
    const tree = <SignalcastProvider options={clientOptions}>{children}</SignalcastProvider>;
    return strict ? <StrictMode>{tree}</StrictMode> : tree;
  };
  const view = rtl.render(wrap(ui));
  expect(text('loading')).toBe('true');
  await rtl.waitFor(() => expect(text('state')).toBe('live'), WAIT);
  expect(text('loading')).toBe('false');
  return { rerender: (next: ReactNode) => view.rerender(wrap(next)) };
}

/** `/ws/stats`' count (the service answers `Cache-Control: no-store`: happy-dom's fetch would cache it otherwise). */
async function connections(): Promise<number> {
  const stats = await api.request('GET', '/ws/stats', { token: await api.admin() });
  return stats.body.total_connections;
}

async function sync(overrides: Record<string, unknown> = {}): Promise<{ seq: number; signal: Signal }> {
  const response = await api.sync(apiKey, signalBody(overrides));
  if (response.status !== 201 && response.status !== 200)
    throw new Error(`sync failed: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body;
}

describe('useSignals in a browser-like DOM against the real service', () => {
  beforeAll(async () => {
    requireBuild();
    database = await createTestDatabase();
    if (!database.url) throw new Error('this file runs on PostgreSQL only (vitest project client-dom)');
    await migrateOnce(database.url);
    service = await startService({ name: 'client-dom', databaseUrl: database.url, readyTimeoutMs: 45_000 });
    api = new Api(service.asTestApp());
    ({ apiKey } = await createProvider(api));
    // The page is on the service's origin: happy-dom's fetch enforces CORS, and the server has no CORS_ORIGINS.
    dom = await builtinEnvironments['happy-dom'].setup(globalThis, { happyDOM: { url: service.baseUrl } });
    rtl = await import('@testing-library/react');
  }, 90_000);

  afterEach(() => rtl?.cleanup());

  afterAll(async () => {
    rtl?.cleanup();
    await dom?.teardown(globalThis);
    await stopAll();
    await database?.drop();
  });

  it('shows rows newest first', async () => {
    await mount(<Feed />, await options());
    const synced: Awaited<ReturnType<typeof sync>>[] = [];
    for (let i = 0; i < 3; i++) synced.push(await sync());
    await rtl.waitFor(() => expect(rows()).toHaveLength(3), WAIT);
    expect(ids()).toEqual(synced.map((s) => s.signal.external_id).reverse());
    await rtl.waitFor(() => expect(text('last-seq')).toBe(String(synced[2]!.seq)), WAIT);
  });

  it('replaces the row of an amended signal with its new version, in place', async () => {
    await mount(<Feed />, await options());
    const [a, b, c] = [signalBody(), signalBody(), signalBody()];
    for (const body of [a, b, c]) await sync(body);
    await rtl.waitFor(() => expect(rows()).toHaveLength(3), WAIT);
    const amended = await sync({ ...b, note: 'stop moved', stop_loss: '63500' });
    expect(amended.signal.version).toBe(2);
    await rtl.waitFor(() => expect(rows()[1]).toEqual({ external_id: b.external_id, version: 2, premium: false }), WAIT);
    expect(ids()).toEqual([c.external_id, b.external_id, a.external_id]);
  });

  it('keeps at most `limit` rows, the newest', async () => {
    await mount(<Feed limit={3} />, await options());
    const synced: Awaited<ReturnType<typeof sync>>[] = [];
    for (let i = 0; i < 5; i++) synced.push(await sync());
    await rtl.waitFor(() => expect(ids()[0]).toBe(synced[4]!.signal.external_id), WAIT);
    expect(ids()).toEqual(
      synced
        .slice(2)
        .map((s) => s.signal.external_id)
        .reverse(),
    );
  });

  it('opens exactly one WebSocket under <StrictMode>', async () => {
    const Original = globalThis.WebSocket;
    let constructed = 0;
    globalThis.WebSocket = class extends Original {
      constructor(...args: ConstructorParameters<typeof WebSocket>) {
        super(...args);
        constructed++;
      }
    };
    try {
      // The earlier tests' clients close on unmount; start from none.
      await rtl.waitFor(async () => expect(await connections()).toBe(0), WAIT);
      await mount(<Feed />, await options(), true);
      // Long enough for a second socket from a second mount to show.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(constructed).toBe(1);
      expect(text('state')).toBe('live');
      expect(await connections()).toBe(1);
      // Still usable: a row arrives.
      const { signal } = await sync();
      await rtl.waitFor(() => expect(ids()).toEqual([signal.external_id]), WAIT);
    } finally {
      globalThis.WebSocket = Original;
    }
  });

  it('connects a client passed in once under <StrictMode> (no close in between), and closes it on unmount', async () => {
    const client = new SignalcastClient(await options());
    const states: string[] = [];
    client.on('state', ({ state }) => void states.push(state));
    rtl.render(
      <StrictMode>
        <SignalcastProvider client={client}>
          <Feed />
        </SignalcastProvider>
      </StrictMode>,
    );
    await rtl.waitFor(() => expect(text('state')).toBe('live'), WAIT);
    expect(states).toEqual(['connecting', 'live']);
    rtl.cleanup();
    await rtl.waitFor(() => expect(states.at(-1)).toBe('closed'), WAIT);
  });

  it('renders a burst of 500 signals in batches, none lost', async () => {
    await mount(<Feed limit={500} />, await options());
    renders = 0;
    const bodies = Array.from({ length: 500 }, () => signalBody());
    const seqs: number[] = [];
    for (let i = 0; i < bodies.length; i += BATCH_MAX) {
      const response = await api.request('POST', '/api/v1/external-signals/sync/signals', {
        apiKey,
        body: { signals: bodies.slice(i, i + BATCH_MAX) },
      });
      expect(response.status).toBe(200);
      for (const result of response.body.results) {
        expect(result.status).toBe(201);
        seqs.push(result.seq);
      }
    }
    await rtl.waitFor(() => expect(rows()).toHaveLength(500), { timeout: 20_000 });
    const expected = bodies.map((body, i) => ({ id: body.external_id as string, seq: seqs[i]! })).sort((x, y) => y.seq - x.seq);
    expect(ids()).toEqual(expected.map((e) => e.id));
    console.log(`[client-dom] 500 signals rendered in ${renders} renders`);
    expect(renders).toBeLessThan(500);
  });

  it('premiumOnly: a pro user sees premium rows only, served so by the server', async () => {
    const delivered: Signal[] = [];
    await mount(
      <>
        <Feed premiumOnly />
        <Tap into={delivered} />
      </>,
      await options('pro'),
    );
    const premium: string[] = [];
    for (let i = 0; i < 6; i++) {
      const { signal } = await sync({ premium: i % 2 === 1 });
      if (signal.premium) premium.push(signal.external_id);
    }
    // In seq order: once the last (premium) one is shown, any regular one would have come before it.
    await rtl.waitFor(() => expect(ids()[0]).toBe(premium.at(-1)), WAIT);
    expect(ids()).toEqual([...premium].reverse());
    expect(rows().every((row) => row.premium)).toBe(true);
    expect(delivered.map((s) => s.external_id)).toEqual(premium);
  });

  it('shows a refused filter change as the error, and keeps the previous filters', async () => {
    const clientOptions = await options();
    const { rerender } = await mount(<Feed filters={{ symbols: ['ETHUSDT'] }} />, clientOptions);
    rerender(<Feed filters={{ markets: ['Not A Market'] }} />);
    await rtl.waitFor(() => expect(text('error')).toBe('invalid_request'), WAIT);
    expect(text('state')).toBe('live');
    await sync({ symbol: 'BTCUSDT' });
    const { signal } = await sync({ symbol: 'ETHUSDT' });
    await rtl.waitFor(() => expect(ids()).toEqual([signal.external_id]), WAIT);
  });
});
