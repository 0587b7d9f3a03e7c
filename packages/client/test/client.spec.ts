import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { UnauthorizedError } from '../src/index.js';
import { client, fakeListing, FakeSocket, settle, signal } from './harness.js';

beforeEach(() => {
  vi.useFakeTimers();
  FakeSocket.all = [];
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('SignalcastClient: connecting', () => {
  it('is inert until connect(), then builds the URL from the base, the token, since and the filters', async () => {
    const { client: sdk } = client({ since: 41, filters: { symbols: ['BTCUSDT', 'ETHUSDT'], premium: true, min_confidence: 60 } });
    await settle();
    expect(FakeSocket.all).toHaveLength(0);
    sdk.connect();
    await settle();
    const url = new URL(FakeSocket.last.url);
    expect(url.origin + url.pathname).toBe('wss://signals.example.com/base/ws/signals');
    expect(Object.fromEntries(url.searchParams)).toEqual({ token: 'token-1', since: '41', symbols: 'BTCUSDT,ETHUSDT', premium: 'true', min_confidence: '60' });
  });

  it('with `history` and no position, starts that many seqs back from the listing\'s latest_seq', async () => {
    const asked: string[] = [];
    const { client: sdk } = client({
      history: 20,
      filters: { premium: false },
      fetch: async (url) => {
        asked.push(url);
        return { status: 200, headers: { get: () => null }, text: async () => JSON.stringify({ data: [], next_after_seq: 0, has_more: false, latest_seq: 50 }) };
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
  it('drops what is at or below lastSeq and versions it holds, and moves lastSeq after the handlers ran', async () => {
    const { client: sdk, seen } = client();
    const lastSeqInHandler: (number | undefined)[] = [];
    sdk.on('signal', () => lastSeqInHandler.push(sdk.lastSeq));
    sdk.connect();
    await settle();
    const socket = FakeSocket.last;
    socket.welcome(10);
    for (const message of [signal(9), signal(10), signal(11), signal(12, 'a'), signal(13, 'a', 2), signal(14, 'a', 2), signal(15, 'a', 1), signal(12, 'b')]) {
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

  it('keeps a filter change made during a replay and sends it after replay_complete', async () => {
    const { client: sdk } = client({ since: 3 });
    sdk.connect();
    await settle();
    const socket = FakeSocket.last;
    socket.welcome(9);
    const pending = sdk.subscribe({ sides: ['long'] });
    expect(socket.sent.filter((message) => message.type === 'subscribe')).toEqual([]);
    socket.receive({ type: 'replay_complete', last_seq: 9, count: 0 });
    const request = socket.sent.at(-1)!;
    expect(request).toMatchObject({ type: 'subscribe', filters: { sides: ['long'] } });
    socket.receive({ type: 'ack', id: request.id });
    await expect(pending).resolves.toBeUndefined();
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
    expect(socket.sent).toEqual([]);
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
