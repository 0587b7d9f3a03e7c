import { describe, expect, it, vi } from 'vitest';
import { UnauthorizedError } from '../src/index.js';
import { client, fakeListing, FakeSocket, settle, signal, useScriptedClock } from './harness.js';

useScriptedClock();

describe('SignalcastClient: connecting', () => {
  it('is inert until connect(), then builds the URL from the base, the token, since and the filters', async () => {
    const { client: sdk } = client({ since: 41, filters: { symbols: ['BTCUSDT', 'ETHUSDT'], premium: true, min_confidence: 60 } });
    await settle();
    expect(FakeSocket.all).toHaveLength(0);
    sdk.connect();
    await settle();
    const url = new URL(FakeSocket.last.url);
    expect(url.origin + url.pathname).toBe('wss://signals.example.com/base/ws/signals');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      token: 'token-1',
      since: '41',
      symbols: 'BTCUSDT,ETHUSDT',
      premium: 'true',
      min_confidence: '60',
    });
  });

  it("with `history` and no position, starts that many seqs back from the listing's latest_seq", async () => {
    const asked: string[] = [];
    const { client: sdk } = client({
      history: 20,
      filters: { premium: false },
      fetch: async (url) => {
        asked.push(url);
        return {
          status: 200,
          headers: { get: () => null },
          text: async () => JSON.stringify({ data: [], next_after_seq: 0, has_more: false, latest_seq: 50 }),
        };
      },
    });
    sdk.connect();
    await settle();
    expect(asked).toEqual(['https://signals.example.com/base/api/v1/signals?limit=1&premium=false']);
    expect(FakeSocket.last.query.get('since')).toBe('30');
  });

  it('asks getToken once for any number of concurrent callers', async () => {
    let calls = 0;
    let release!: (token: string) => void;
    const { client: sdk } = client({ getToken: () => (calls++, new Promise<string>((resolve) => (release = resolve))) });
    const token = (sdk as unknown as { token(reason: string): Promise<string> }).token.bind(sdk);
    const all = Promise.all(Array.from({ length: 10 }, () => token('connect')));
    await settle();
    release('shared');
    expect(await all).toEqual(Array(10).fill('shared'));
    expect(calls).toBe(1);
    const again = token('connect');
    await settle();
    release('next');
    expect(await again).toBe('next');
    expect(calls).toBe(2); // nothing cached once settled
  });

  it('close() while getToken is pending opens no socket', async () => {
    let release!: (token: string) => void;
    const { client: sdk } = client({ getToken: () => new Promise<string>((resolve) => (release = resolve)) });
    sdk.connect();
    await settle();
    sdk.close();
    release('late');
    await settle();
    expect(FakeSocket.all).toHaveLength(0);
    expect(sdk.state).toBe('closed');
  });

  it('stops in failed when getToken throws UnauthorizedError; retries any other error with the backoff', async () => {
    const failing = client({ getToken: () => Promise.reject(new UnauthorizedError('signed out')) });
    failing.client.connect();
    await settle();
    expect(failing.client.stateInfo).toEqual({ state: 'failed', code: 'unauthorized', reason: 'signed out' });

    let calls = 0;
    const flaky = client({ getToken: () => (++calls < 3 ? Promise.reject(new Error('auth server down')) : 'ok') });
    flaky.client.connect();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(calls).toBe(3);
    expect(flaky.errors).toEqual(['token_unavailable', 'token_unavailable']);
    expect(FakeSocket.all).toHaveLength(1);
  });
});

describe('SignalcastClient: reconnecting', () => {
  it('grows the backoff while attempts fail, and resets it only once live', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999);
    // Each socket is welcomed and starts replaying, but none reaches live: the count keeps growing.
    const { client: sdk, states } = client({ since: 5 });
    sdk.connect();
    const waits: number[] = [];
    for (let attempt = 0; attempt < 5; attempt++) {
      await settle();
      FakeSocket.last.welcome(5);
      FakeSocket.last.drop(1006);
      waits.push(states.at(-1)!.retryInMs!);
      await vi.advanceTimersByTimeAsync(states.at(-1)!.retryInMs!);
    }
    expect(waits).toEqual([99, 199, 399, 799, 999]);
    await settle();
    FakeSocket.last.welcome(10);
    FakeSocket.last.receive({ type: 'replay_complete', last_seq: 10, count: 0 });
    expect(sdk.state).toBe('live');
    FakeSocket.last.drop(1006);
    expect(states.at(-1)).toEqual({ state: 'disconnected', retryInMs: 99, code: 1006 });
  });

  it('asks plain HTTP after 3 attempts without welcome; a service that is down too stays disconnected, with the close code', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999);
    const { client: sdk, states, errors } = client({ fetch: () => Promise.reject(new TypeError('fetch failed')) });
    sdk.connect();
    for (let attempt = 0; attempt < 5; attempt++) {
      await settle();
      FakeSocket.last.drop(1006);
      expect(states.at(-1)).toMatchObject({ state: 'disconnected', code: 1006 });
      await vi.advanceTimersByTimeAsync(states.at(-1)!.retryInMs!);
    }
    expect(states.filter((change) => change.state === 'disconnected').map((change) => change.retryInMs)).toEqual([99, 199, 399, 799, 999]);
    expect(errors).toEqual([]); // a failed probe is not news: the state says it
    expect(sdk.state).toBe('connecting');
  });

  it('waits at least 5 s after 1011, 1013 and 4029, and spreads a shutdown over 0–5 s without counting an attempt', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const { client: sdk, states } = client();
    sdk.connect();
    await settle();
    FakeSocket.last.welcome(0);
    FakeSocket.last.drop(1013);
    expect(states.at(-1)).toMatchObject({ state: 'disconnected', retryInMs: 5_050, code: 1013 });
    await vi.advanceTimersByTimeAsync(5_050);
    FakeSocket.last.welcome(0);
    FakeSocket.last.receive({ type: 'reconnect', reason: 'shutdown' });
    FakeSocket.last.drop(1001);
    expect(states.at(-1)).toMatchObject({ state: 'disconnected', retryInMs: 2_500, code: 1001 });
  });

  it('stops on terminal codes: 4529, an unknown 4500–4999 code, 1008', async () => {
    for (const [code, expected] of [
      [4529, 'too_many_sockets'],
      [4650, 'connection_rejected'],
      [1008, 'connection_rejected'],
    ] as const) {
      const { client: sdk, errors } = client();
      sdk.connect();
      await settle();
      FakeSocket.last.welcome(0);
      FakeSocket.last.drop(code, 'why');
      expect(sdk.stateInfo).toEqual({ state: 'failed', code, reason: 'why' });
      expect(errors).toEqual([expected]);
      await vi.advanceTimersByTimeAsync(60_000);
      expect(sdk.state).toBe('failed');
    }
  });

  it('after a 4501 asks for a fresh token once and reconnects at once; a second 4501 in a row fails', async () => {
    const reasons: string[] = [];
    const { client: sdk } = client({ getToken: ({ reason }) => (reasons.push(reason), `t-${reasons.length}`) });
    sdk.connect();
    await settle();
    FakeSocket.last.welcome(5);
    FakeSocket.last.drop(4501, 'token expired');
    await settle();
    expect(reasons).toEqual(['connect', 'unauthorized']);
    expect(FakeSocket.last.query.get('token')).toBe('t-2');
    expect(FakeSocket.last.query.get('since')).toBe('5');
    FakeSocket.last.drop(4501, 'unauthorized');
    expect(sdk.stateInfo).toMatchObject({ state: 'failed', code: 4501 });
  });
});

describe('SignalcastClient: exactly once', () => {
  it('a resumed socket is not given up while the server prepares its replay (no watchdog before a resume)', async () => {
    const { client: sdk } = client({ since: 5 });
    sdk.connect();
    await settle();
    const ws = FakeSocket.last;
    ws.welcome(500);
    for (let second = 0; second < 60; second += 5) {
      await vi.advanceTimersByTimeAsync(5_000);
      const ping = ws.sent.at(-1);
      if (ping?.type === 'ping') ws.receive({ type: 'pong', id: ping.id });
    }
    expect(ws.closedWith).toBeUndefined();
    expect(sdk.state).toBe('replaying');
  });

  it('another user on the same client: a reset event, and versions seen before are forgotten', async () => {
    let token = 'a';
    const { client: sdk, seen } = client({ getToken: () => token });
    const resets: string[] = [];
    sdk.on('reset', ({ reason }) => resets.push(reason));
    sdk.connect();
    await settle();
    FakeSocket.last.welcome(0);
    FakeSocket.last.receive({ type: 'signal', ...signal(1, 'x') });
    sdk.close();
    token = 'b';
    sdk.connect();
    await settle();
    FakeSocket.last.receive({
      type: 'welcome',
      user_id: 'u2',
      tier: 'free',
      server_time: new Date(0).toISOString(),
      latest_seq: 2,
      token_expires_at: null,
    });
    expect(resets).toEqual(['user_changed']);
    FakeSocket.last.receive({ type: 'signal_update', ...signal(2, 'x', 1) });
    expect(seen).toEqual(['x@1', 'x@1']); // the second user's first sight of x
  });

  it('drops what is at or below lastSeq and versions it holds, and moves lastSeq after the handlers ran', async () => {
    const { client: sdk, seen } = client();
    const lastSeqInHandler: (number | undefined)[] = [];
    sdk.on('signal', () => lastSeqInHandler.push(sdk.lastSeq));
    sdk.connect();
    await settle();
    const socket = FakeSocket.last;
    socket.welcome(10);
    for (const message of [
      signal(9),
      signal(10),
      signal(11),
      signal(12, 'a'),
      signal(13, 'a', 2),
      signal(14, 'a', 2),
      signal(15, 'a', 1),
      signal(12, 'b'),
    ]) {
      socket.receive({ type: message.version > 1 ? 'signal_update' : 'signal', ...message });
    }
    expect(seen).toEqual(['s11@1', 'a@1', 'a@2']);
    expect(lastSeqInHandler).toEqual([10, 11, 12]);
    expect(sdk.lastSeq).toBe(15);
  });

  it('resumes with since: the welcome does not move the position, replay_complete does', async () => {
    const { client: sdk, states } = client({ since: 20 });
    sdk.connect();
    await settle();
    const socket = FakeSocket.last;
    socket.welcome(30);
    expect(sdk.state).toBe('replaying');
    expect(sdk.lastSeq).toBe(20);
    socket.receive({ type: 'signal', ...signal(25) });
    socket.receive({ type: 'replay_complete', last_seq: 30, count: 1 });
    expect(sdk.lastSeq).toBe(30);
    expect(states.map((change) => change.state)).toEqual(['connecting', 'replaying', 'live']);
  });

  it('starts again from the database when since is past its latest seq (another database)', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const rest = fakeListing();
    rest.db.push(signal(30));
    const { client: sdk, errors } = client({ since: 500, fetch: rest.fetch });
    sdk.connect();
    await settle();
    FakeSocket.last.welcome(30);
    await settle();
    expect(errors).toEqual(['position_reset']);
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeSocket.all).toHaveLength(2);
    expect(FakeSocket.last.query.get('since')).toBe('30');
  });

  it('takes an instance behind the database for what it is (lag), not for a reset', async () => {
    const rest = fakeListing();
    rest.db.push(signal(12));
    const { client: sdk, errors } = client({ since: 12, fetch: rest.fetch });
    sdk.connect();
    await settle();
    FakeSocket.last.welcome(11); // this instance's fan-out is one behind
    await settle();
    expect(errors).toEqual([]);
    expect(FakeSocket.all).toHaveLength(1);
    expect(sdk.lastSeq).toBe(12);
  });

  it('a throwing handler becomes an error event and does not stop delivery', async () => {
    const { client: sdk, seen, errors } = client();
    sdk.on('signal', (delivered) => {
      if (delivered.seq === 2) throw new Error('bug in the app');
    });
    sdk.connect();
    await settle();
    FakeSocket.last.welcome(1);
    FakeSocket.last.receive({ type: 'signal', ...signal(2) });
    FakeSocket.last.receive({ type: 'signal', ...signal(3) });
    expect(seen).toEqual(['s2@1', 's3@1']);
    expect(errors).toEqual(['handler_failed']);
    expect(sdk.lastSeq).toBe(3);
  });
});

describe('SignalcastClient: filters', () => {
  it('sends subscribe when live and settles on the ack; an error restores the previous filters', async () => {
    const { client: sdk } = client({ filters: { markets: ['crypto'] } });
    sdk.connect();
    await settle();
    const socket = FakeSocket.last;
    socket.welcome(0);
    const accepted = sdk.subscribe({ premium: true });
    const request = socket.sent.at(-1)!;
    expect(request).toMatchObject({ type: 'subscribe', filters: { premium: true } });
    socket.receive({ type: 'ack', id: request.id, subscribed: true });
    await expect(accepted).resolves.toBeUndefined();

    const refused = sdk.subscribe({ symbols: ['not a symbol'] });
    socket.receive({ type: 'error', id: socket.sent.at(-1)!.id, code: 'invalid_request', message: 'symbols.0: bad' });
    await expect(refused).rejects.toMatchObject({ code: 'invalid_request' });
    expect(sdk.filters).toEqual({ premium: true });
  });

  it('a filter change during a replay opens again from the position with the new filters (the old socket would replay the old ones)', async () => {
    const { client: sdk, seen } = client({ since: 3 });
    sdk.connect();
    await settle();
    const first = FakeSocket.last;
    first.welcome(9);
    first.receive({ type: 'signal', ...signal(4) });
    const pending = sdk.subscribe({ sides: ['long'] });
    await settle();
    expect(first.closedWith).toBe(1000);
    expect(first.sent.filter((message) => message.type === 'subscribe')).toEqual([]);
    const second = FakeSocket.last;
    expect(second.query.get('since')).toBe('4');
    expect(second.query.get('sides')).toBe('long');
    second.welcome(9);
    await expect(pending).resolves.toBeUndefined();
    second.receive({ type: 'signal', ...signal(4) }); // at or below the position: not again
    second.receive({ type: 'signal', ...signal(5) });
    expect(seen).toEqual(['s4@1', 's5@1']);
  });

  it('subscribe(A) while B is unanswered does not resolve before the server has A again', async () => {
    const { client: sdk } = client({ filters: { markets: ['crypto'] } });
    sdk.connect();
    await settle();
    const ws = FakeSocket.last;
    ws.welcome(0);
    void sdk.subscribe({ markets: ['forex'] });
    let resolved = false;
    void sdk.subscribe({ markets: ['crypto'] }).then(() => (resolved = true));
    await settle();
    expect(resolved).toBe(false);
    ws.receive({ type: 'ack', id: ws.sent.at(-1)!.id });
    await settle();
    const again = ws.sent.at(-1)!;
    expect(again).toMatchObject({ type: 'subscribe', filters: { markets: ['crypto'] } });
    ws.receive({ type: 'ack', id: again.id });
    await settle();
    expect(resolved).toBe(true);
  });

  it('filters the service refuses (the upgrade fails, the probe says 400) are dropped for the last accepted ones; the client carries on', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const rest = fakeListing();
    const { client: sdk, errors } = client({ fetch: rest.fetch, filters: { markets: ['crypto'] } });
    sdk.connect();
    await settle();
    FakeSocket.last.welcome(0);
    FakeSocket.last.drop(1006);
    const refused = sdk.subscribe({ markets: ['Crypto'] });
    refused.catch(() => undefined);
    rest.setStatus((token) => (rest.calls.at(-1)!.url.includes('Crypto') ? 400 : 200) + 0 * token.length);
    for (let attempt = 0; attempt < 3; attempt++) {
      await vi.advanceTimersByTimeAsync(1);
      FakeSocket.last.drop(1006); // the upgrade with markets=Crypto is refused (400, seen as 1006)
    }
    await settle();
    await expect(refused).rejects.toMatchObject({ status: 400 });
    expect(sdk.filters).toEqual({ markets: ['crypto'] });
    expect(errors).toContain('e400');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(FakeSocket.last.query.get('markets')).toBe('crypto');
    expect(sdk.state).not.toBe('failed');
  });

  it('while disconnected, applies the wanted filters on the next open, not by replaying requests', async () => {
    const { client: sdk } = client();
    sdk.connect();
    await settle();
    FakeSocket.last.welcome(0);
    FakeSocket.last.drop(1006);
    const pending = sdk.subscribe({ symbols: ['ETHUSDT'] });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(FakeSocket.last.query.get('symbols')).toBe('ETHUSDT');
    FakeSocket.last.welcome(0);
    await expect(pending).resolves.toBeUndefined();
    expect(FakeSocket.last.sent.filter((message) => message.type === 'subscribe')).toEqual([]);
  });
});

describe('SignalcastClient: liveness', () => {
  it('pings after 25 s of silence and replaces a socket that does not answer within 10 s', async () => {
    const { client: sdk, states } = client();
    sdk.connect();
    await settle();
    const socket = FakeSocket.last;
    socket.welcome(0);
    await vi.advanceTimersByTimeAsync(24_999);
    expect(socket.sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.sent).toEqual([{ type: 'ping', id: expect.any(String) }]);
    await vi.advanceTimersByTimeAsync(9_999);
    expect(FakeSocket.all).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.closedWith).toBe(4000);
    expect(states.at(-1)).toMatchObject({ state: 'disconnected', code: 1006, reason: 'no answer to ping' });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(FakeSocket.all).toHaveLength(2);
    expect(sdk.state).toBe('connecting');
  });

  it('does not ping while frames flow, and an answer keeps the socket', async () => {
    const { client: sdk } = client();
    sdk.connect();
    await settle();
    const socket = FakeSocket.last;
    socket.welcome(0);
    for (let seq = 1; seq <= 6; seq++) {
      await vi.advanceTimersByTimeAsync(20_000);
      socket.receive({ type: 'signal', ...signal(seq) });
    }
    expect(socket.sent.filter((message) => message.type === 'ping')).toEqual([]); // receipts only
    await vi.advanceTimersByTimeAsync(25_000);
    const ping = socket.sent.at(-1)!;
    socket.receive({ type: 'pong', id: ping.id });
    await vi.advanceTimersByTimeAsync(20_000);
    expect(FakeSocket.all).toHaveLength(1);
    expect(sdk.state).toBe('live');
  });

  it('gives up on a socket that never says welcome after connectTimeoutMs', async () => {
    const { client: sdk, states } = client({ connectTimeoutMs: 2_000 });
    sdk.connect();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(states.at(-1)).toMatchObject({ state: 'disconnected', code: 1006, reason: 'no welcome in time' });
    expect(sdk.state).toBe('disconnected');
  });
});
