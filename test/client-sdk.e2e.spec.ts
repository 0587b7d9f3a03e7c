import { afterEach, describe, expect, it } from 'vitest';
import { SignalcastError, UnauthorizedError, type TokenContext } from '@signalcast/client';
import { startHttpGate } from './support/http-gate.js';
import { sleep, waitFor } from './support/processes.js';
import { RecordingClient, StoredSignals, expectExactlyOnce } from './support/sdk.js';
import { startTcpProxy } from './support/tcp-proxy.js';
import { signToken, useTestApp } from './support/test-app.js';

/**
 * The client SDK against the real service, through its public API only: every case counts the
 * (id, version) pairs the handlers saw and checks them against what the service stored.
 */
const ctx = useTestApp({
  WS_REPLAY_MAX: '20',
  SIGNALS_PAGE_MAX: '50',
  WS_MAX_BUFFERED_BYTES: String(256 * 1024),
  WS_TOKEN_EXPIRY_WARNING_MS: '1500',
});

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function subscriber(tier = 'elite') {
  const user = await ctx.api.user(tier);
  return { ...user, token: (lifetimeSeconds = 3600) => signToken(user.id, 'subscriber', lifetimeSeconds) };
}

function recorder(options: ConstructorParameters<typeof RecordingClient>[0]): RecordingClient {
  const recording = new RecordingClient(options);
  cleanups.push(() => recording.client.close());
  return recording;
}

function stored(): StoredSignals {
  return new StoredSignals(ctx.app.baseUrl, ctx.provider.apiKey);
}

describe('client SDK: exactly once across reconnects', () => {
  it('resumes after the connection is cut, without loss or duplicate', async () => {
    const proxy = await startTcpProxy(new URL(ctx.app.baseUrl).port as unknown as number);
    cleanups.push(() => proxy.close());
    const user = await subscriber();
    const signals = stored();
    const sdk = recorder({ url: `http://127.0.0.1:${proxy.port}`, getToken: () => user.token() });
    const from = await sdk.start();

    const first = await signals.syncMany(5);
    await sdk.waitForVersion(first[4]!.id, 1);
    proxy.cut();
    await sdk.reach('disconnected');
    // Stored while the subscriber is away: new signals and an amendment of one it already has.
    await signals.syncMany(5);
    const amended = await signals.sync({ ...signalOf(first[0]!), note: 'amended while away' });
    proxy.restore();
    const after = await signals.sync();
    await sdk.waitForVersion(after.id, 1);
    await sdk.waitForVersion(amended.id, 2);

    await sdk.reach('live');
    expect(sdk.stateNames()).toMatch(/live > disconnected.* > replaying > live$/);
    expectExactlyOnce(sdk, signals, from);
    expect(sdk.client.lastSeq).toBe(after.seq);
  });

  it('pages a long absence over HTTP (resync_required), then resumes on the same socket', async () => {
    const user = await subscriber();
    const signals = stored();
    const pages: string[] = [];
    const sdk = recorder({
      url: ctx.app.baseUrl,
      getToken: () => user.token(),
      fetch: (url, init) => {
        pages.push(new URL(url).search);
        return fetch(url, init);
      },
    });
    const from = await sdk.start();
    const before = await signals.syncMany(3);
    await sdk.waitForVersion(before[2]!.id, 1);

    sdk.client.close();
    // 130 versions: more than WS_REPLAY_MAX (20), more than a page (SIGNALS_PAGE_MAX 50).
    const away = await signals.syncMany(125);
    await signals.syncMany(5, (index) => ({ ...signalOf(away[index]!), note: `amended ${index}` }));
    sdk.client.connect();
    const last = await signals.sync();
    await sdk.waitForVersion(last.id, 1);

    await sdk.reach('live'); // the last signal may arrive with the replay, before replay_complete
    expect(sdk.sockets.constructed()).toBe(2);
    expect(sdk.stateNames()).toMatch(/closed > connecting > replaying > live$/);
    expect(pages.length, 'REST pages after resync_required').toBeGreaterThanOrEqual(3);
    expectExactlyOnce(sdk, signals, from);
  });

  it('is cut as a slow consumer (4008) when it stops reading, reports it, and resumes', async () => {
    const proxy = await startTcpProxy(new URL(ctx.app.baseUrl).port as unknown as number);
    cleanups.push(() => proxy.close());
    const user = await subscriber();
    const signals = stored();
    const sdk = recorder({ url: `http://127.0.0.1:${proxy.port}`, getToken: () => user.token() });
    const from = await sdk.start();

    proxy.pause();
    const note = 'x'.repeat(2_000);
    await waitFor(
      async () => {
        await signals.syncMany(200, () => ({ note }));
        const stats = await ctx.api.request('GET', '/ws/stats', { token: await ctx.api.admin() });
        return stats.body.slow_consumers_disconnected > 0;
      },
      60_000,
      'the server never cut the paused socket',
      0,
    );
    proxy.resume();
    const last = await signals.sync();
    await sdk.waitForVersion(last.id, 1, 30_000);

    expect(sdk.states.some((change) => change.state === 'disconnected' && change.code === 4008)).toBe(true);
    expect(sdk.errors.map((error) => error.code)).toContain('slow_consumer');
    expectExactlyOnce(sdk, signals, from);
  }, 120_000);

  it('never delivers a premium signal to a basic user, live or replayed', async () => {
    const user = await subscriber('basic');
    const signals = stored();
    const sdk = recorder({ url: ctx.app.baseUrl, getToken: () => user.token() });
    const from = await sdk.start();
    await signals.syncMany(6, (index) => ({ premium: index % 2 === 0 }));
    sdk.client.close();
    await signals.syncMany(6, (index) => ({ premium: index % 2 === 1 }));
    sdk.client.connect();
    const last = await signals.sync();
    await sdk.waitForVersion(last.id, 1);

    expect(sdk.seen.filter((signal) => signal.premium)).toEqual([]);
    expectExactlyOnce(sdk, signals, from, (version) => !version.premium);
  });
});

describe('client SDK: a first visit with history', () => {
  it('starts `history` seqs back from the newest, then continues live', async () => {
    const user = await subscriber();
    const signals = stored();
    const earlier = await signals.syncMany(5);
    const sdk = recorder({ url: ctx.app.baseUrl, getToken: () => user.token(), history: 3 });
    sdk.client.connect();
    await sdk.reach('live');
    expect(sdk.seen.map((signal) => signal.id)).toEqual(earlier.slice(2).map((signal) => signal.id));
    const next = await signals.sync();
    await sdk.waitForVersion(next.id, 1);
    expect(sdk.stateNames()).toBe('connecting > replaying > live');
    expectExactlyOnce(sdk, signals, earlier[1]!.seq);
  });
});

describe('client SDK: tokens', () => {
  it('answers token_expiring with auth on the same socket: no reconnect', async () => {
    const user = await subscriber();
    const signals = stored();
    const reasons: string[] = [];
    const sdk = recorder({
      url: ctx.app.baseUrl,
      getToken: ({ reason }: TokenContext) => {
        reasons.push(reason);
        return user.token(reason === 'connect' ? 3 : 3600);
      },
    });
    const from = await sdk.start();
    await sleep(3_500); // past the first token's exp
    const signal = await signals.sync();
    await sdk.waitForVersion(signal.id, 1);

    expect(reasons).toEqual(['connect', 'expiring']);
    expect(sdk.sockets.constructed()).toBe(1);
    expect(sdk.client.state).toBe('live');
    expectExactlyOnce(sdk, signals, from);
  });

  it('after an unauthorized close (4501), asks once for a fresh token and reconnects', async () => {
    const user = await subscriber();
    const signals = stored();
    const reasons: string[] = [];
    const sdk = recorder({
      url: ctx.app.baseUrl,
      getToken: async ({ reason }: TokenContext) => {
        reasons.push(reason);
        if (reason === 'expiring') throw new Error('the auth server is slow today');
        return user.token(reason === 'connect' ? 3 : 3600);
      },
    });
    const from = await sdk.start();
    await waitFor(() => sdk.states.some((change) => change.code === 4501), 10_000, 'no 4501');
    const signal = await signals.sync();
    await sdk.waitForVersion(signal.id, 1);

    expect(reasons).toEqual(['connect', 'expiring', 'unauthorized']);
    expect(sdk.client.state).toBe('live');
    expect(sdk.errors.map((error) => error.code)).toContain('token_unavailable');
    expectExactlyOnce(sdk, signals, from);
  });

  it('stops in failed when getToken throws UnauthorizedError', async () => {
    const sdk = recorder({
      url: ctx.app.baseUrl,
      getToken: () => {
        throw new UnauthorizedError('session ended');
      },
    });
    sdk.client.connect();
    await sdk.reach('failed');
    expect(sdk.client.stateInfo).toMatchObject({ state: 'failed', code: 'unauthorized', reason: 'session ended' });
    expect(sdk.sockets.constructed()).toBe(0);
    await sleep(300);
    expect(sdk.client.state).toBe('failed'); // nothing retries
  });

  it('retries a getToken that fails while the server is unreachable, then goes live', async () => {
    const proxy = await startTcpProxy(new URL(ctx.app.baseUrl).port as unknown as number);
    cleanups.push(() => proxy.close());
    const user = await subscriber();
    const url = `http://127.0.0.1:${proxy.port}`;
    const password = 'user-password-123';
    let calls = 0;
    const sdk = recorder({
      url,
      getToken: async () => {
        calls++;
        const response = await fetch(`${url}/api/auth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email: user.email, password }),
        });
        return ((await response.json()) as { access_token: string }).access_token;
      },
    });
    proxy.cut();
    sdk.client.connect();
    await waitFor(() => sdk.errors.filter((error) => error.code === 'token_unavailable').length >= 2, 10_000, 'getToken not retried');
    expect(sdk.sockets.constructed()).toBe(0);
    expect(['disconnected', 'connecting']).toContain(sdk.client.state); // between attempts, or in one
    expect(sdk.states.filter((change) => change.state === 'disconnected').length).toBeGreaterThanOrEqual(2);
    proxy.restore();
    await sdk.reach('live', 15_000);
    expect(calls).toBeGreaterThanOrEqual(3);
  });
});

describe('client SDK: polling fallback', () => {
  it('polls when upgrades are refused, and returns to the WebSocket with no gap and no duplicate', async () => {
    const gate = await startHttpGate(Number(new URL(ctx.app.baseUrl).port));
    cleanups.push(() => gate.close());
    const user = await subscriber();
    const signals = stored();
    const sdk = recorder({ url: gate.baseUrl, getToken: () => user.token(), poll: { intervalMs: 200 } });
    const from = await sdk.start();

    gate.refuseUpgrades(true);
    // Lifetime of the live socket ends: every reconnect is now refused.
    (sdk.client as unknown as { ws: { close(): void } }).ws.close();
    await sdk.reach('polling', 15_000);
    const polled = await signals.syncMany(4);
    await signals.sync({ ...signalOf(polled[0]!), note: 'amended while polling' });
    await sdk.waitForVersion(polled[3]!.id, 1);
    await sdk.waitForVersion(polled[0]!.id, 2);
    const upgradesWhilePolling = gate.upgradesSeen;

    gate.refuseUpgrades(false);
    await sdk.reach('live', 15_000);
    const live = await signals.syncMany(3);
    await sdk.waitForVersion(live[2]!.id, 1);

    expect(upgradesWhilePolling).toBeGreaterThanOrEqual(3);
    expect(sdk.stateNames()).toMatch(/polling.* > (replaying > )?live$/);
    expectExactlyOnce(sdk, signals, from);
  }, 60_000);
});

describe('ProviderClient', () => {
  it('retries a 503 (honouring Retry-After) until the service answers, and never retries a 400', async () => {
    const gate = await startHttpGate(Number(new URL(ctx.app.baseUrl).port));
    cleanups.push(() => gate.close());
    const signals = new StoredSignals(gate.baseUrl, ctx.provider.apiKey);

    gate.failRequests(503, 1);
    const pending = signals.sync();
    await waitFor(() => gate.requestsSeen >= 1, 5_000, 'no request');
    await sleep(300);
    const seenWhileFailing = gate.requestsSeen;
    gate.failRequests(null);
    const signal = await pending;
    expect(signal.version).toBe(1);
    expect(seenWhileFailing).toBe(1); // Retry-After: 1 held the retry back
    expect(gate.requestsSeen).toBe(2);

    const before = gate.requestsSeen;
    const refused = await signals.sync({ side: 'sideways' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(SignalcastError);
    expect(refused).toMatchObject({ code: 'validation_failed', status: 400 });
    expect(gate.requestsSeen).toBe(before + 1);
  });
});

/** The provider fields of a stored signal, to amend it. */
function signalOf(signal: Record<string, any>): Record<string, unknown> {
  const { id: _id, seq: _seq, provider: _provider, version: _version, status: _status, received_at: _received, ...fields } = signal;
  return fields;
}
