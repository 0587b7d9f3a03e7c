import { describe, expect, it, vi } from 'vitest';
import { client, fakeListing, FakeSocket, settle, signal, useScriptedClock } from './harness.js';

// Races and hostile input found by an adversarial review of the client (each failed before its fix).

useScriptedClock();

describe('an instance behind the database is not a position reset', () => {
  it('reconnecting to an instance one seq behind delivers nothing twice', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { client: sdk, seen, errors } = client({ since: 10 });
    sdk.connect();
    await settle();
    const a = FakeSocket.last;
    a.welcome(10);
    a.receive({ type: 'replay_complete', last_seq: 10, count: 0 });
    a.receive({ type: 'signal', ...signal(11) }); // emitted, lastSeq 11
    a.drop(1006);
    await vi.advanceTimersByTimeAsync(1);
    const b = FakeSocket.last; // since=11, lands on instance B whose deliveredSeq is still 10
    expect(b.query.get('since')).toBe('11');
    b.welcome(10); // -> position_reset, lastSeq := 10, version map cleared
    await settle();
    const c = FakeSocket.last; // reopened with since=10
    c.welcome(11); // B caught up; replays 11
    c.receive({ type: 'signal', ...signal(11) });
    c.receive({ type: 'replay_complete', last_seq: 11, count: 1 });
    expect(seen).toEqual(['s11@1']);
    expect(errors).toEqual([]);
  });

  it('a poll answer newer than the welcome causes no reset and no duplicate', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const rest = fakeListing();
    rest.db.push(signal(10));
    const { client: sdk, seen, errors } = client({ since: 10, fetch: rest.fetch, connectTimeoutMs: 60_000 });
    sdk.connect();
    for (let i = 0; i < 3; i++) {
      await settle();
      FakeSocket.last.drop(1006);
    } // 3 opens that never reach welcome
    await settle();
    expect(sdk.state).toBe('polling');
    await vi.advanceTimersByTimeAsync(5_000); // background WS attempt (5 s + J(max)), since=10
    const ws = FakeSocket.last;
    expect(ws.query.get('since')).toBe('10');
    rest.db.push(signal(11)); // committed; REST sees it before the fan-out delivered it
    await vi.advanceTimersByTimeAsync(19_000); // poll round (30 s * 0.8) delivers s11, lastSeq 11
    expect(seen).toEqual(['s11@1']);
    ws.welcome(10); // the upgrade was served when deliveredSeq was 10
    await settle();
    const again = FakeSocket.last;
    again.welcome(11);
    again.receive({ type: 'signal', ...signal(11) });
    again.receive({ type: 'replay_complete', last_seq: 11, count: 1 });
    expect(seen).toEqual(['s11@1']);
    expect(errors).toEqual([]);
  });
});

it('a REST 401 asks for a token with reason unauthorized, not the plain connect call already in flight', async () => {
  vi.spyOn(Math, 'random').mockReturnValue(0);
  let cached = 'valid';
  const reasons: string[] = [];
  const getToken = async ({ reason }: { reason: string }) => {
    reasons.push(reason);
    await new Promise((r) => setTimeout(r, 200)); // the app reads its store / refresh endpoint
    if (reason !== 'connect') cached = 'fresh'; // bypasses its cache, as the contract intends
    return cached;
  };
  const rest = fakeListing();
  rest.setStatus((token) => (token === 'expired' ? 401 : 200));
  const { client: sdk, errors } = client({ getToken, fetch: rest.fetch, connectTimeoutMs: 60_000 });
  sdk.connect();
  for (let i = 0; i < 3; i++) {
    await vi.advanceTimersByTimeAsync(200);
    FakeSocket.last.drop(1006);
  }
  await vi.advanceTimersByTimeAsync(400);
  expect(sdk.state).toBe('polling');
  await vi.advanceTimersByTimeAsync(5_200); // background socket opened, connecting
  FakeSocket.last.drop(1006); // it fails again; next try in 5 s
  cached = 'expired'; // the cached token has now expired server-side
  rest.setDelay(100);
  reasons.length = 0;
  sdk.subscribe({}); // poll round now: token('connect') -> 'expired' -> GET ...
  await vi.advanceTimersByTimeAsync(250); // ... while the GET is in flight:
  sdk.reconnectNow(); // WS attempt: token('connect') in flight 250..450
  await vi.advanceTimersByTimeAsync(1_000); // GET 401 at 300 -> token('unauthorized') joins the 'connect' call
  expect(sdk.state).toBe('polling');
  expect(reasons).toContain('unauthorized');
  expect(sdk.state).not.toBe('failed');
  expect(errors).not.toContain('unauthorized');
});

describe('bad server input', () => {
  it('a frame "null" is reported, never thrown out of onmessage (in Node ws that would be an uncaught exception)', async () => {
    const { client: sdk } = client();
    sdk.connect();
    await settle();
    const ws = FakeSocket.last;
    ws.welcome(0);
    expect(() => ws.onmessage!({ data: 'null' })).not.toThrow();
  });

  it('a signal frame without a numeric seq is ignored: the position holds', async () => {
    const { client: sdk, seen } = client({ since: 10 });
    sdk.connect();
    await settle();
    const ws = FakeSocket.last;
    ws.welcome(10);
    ws.receive({ type: 'replay_complete', last_seq: 10, count: 0 });
    const { seq: _seq, ...noSeq } = signal(11, 'x');
    ws.receive({ type: 'signal', ...noSeq });
    expect(sdk.lastSeq).toBe(10);
    ws.drop(1006);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(FakeSocket.last.query.get('since')).toBe('10'); // would be null: position lost
    void seen;
  });

  it('replay_complete without last_seq keeps an integer position', async () => {
    const { client: sdk } = client({ since: 10 });
    sdk.connect();
    await settle();
    FakeSocket.last.welcome(10);
    FakeSocket.last.receive({ type: 'replay_complete', count: 0 });
    expect(Number.isInteger(sdk.lastSeq)).toBe(true);
  });
});

describe('filters while polling, configure()', () => {
  it('a subscribe the listing refuses (400) while polling rejects the promise and keeps polling', async () => {
    const rest = fakeListing();
    const { client: sdk } = client({ useWebSocket: false, fetch: rest.fetch });
    sdk.connect();
    await settle();
    expect(sdk.state).toBe('polling');
    rest.setStatus(400);
    await expect(sdk.subscribe({ symbols: ['not a symbol'] })).rejects.toMatchObject({ status: 400 });
    expect(sdk.state).toBe('polling');
  });

  it('configure() keeps pending subscribe() promises: the client keeps running', async () => {
    const rest = fakeListing();
    const { client: sdk } = client({ fetch: rest.fetch });
    sdk.connect();
    await settle();
    FakeSocket.last.drop(1006); // disconnected: the filter waits for the next open
    const pending = sdk.subscribe({ markets: ['crypto'] });
    sdk.configure({ useWebSocket: false }); // the hook switches to polling
    await expect(pending).resolves.toBeUndefined();
  });
});

it('getToken rejecting with undefined while polling: the poll loop carries on', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  const rest = fakeListing();
  let calls = 0;
  const { client: sdk } = client({
    useWebSocket: false,
    fetch: rest.fetch,
    poll: { intervalMs: 1_000 },
    getToken: () => (++calls === 2 ? Promise.reject(undefined) : 't'),
  });
  sdk.connect();
  await settle();
  expect(sdk.state).toBe('polling');
  await vi.advanceTimersByTimeAsync(60_000);
  process.off('unhandledRejection', onUnhandled);
  expect(calls).toBeGreaterThan(10);
});

describe('poll-only mode', () => {
  it('reconnectNow() with useWebSocket:false polls, it opens no WebSocket', async () => {
    const rest = fakeListing();
    const { client: sdk } = client({ useWebSocket: false, fetch: rest.fetch });
    sdk.connect();
    await settle();
    expect(sdk.state).toBe('polling');
    sdk.reconnectNow();
    await settle();
    expect(FakeSocket.all).toHaveLength(0);
  });
});

async function toPolling(sdk: { connect(): void; state: string }) {
  sdk.connect();
  for (let i = 0; i < 3; i++) {
    await settle();
    FakeSocket.last.drop(1006);
    await vi.advanceTimersByTimeAsync(0);
  }
  await vi.advanceTimersByTimeAsync(0);
}

describe('interleavings that must stay exact', () => {
  it('a poll page answered after the socket welcomed is dropped (no double feed)', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const rest = fakeListing();
    rest.db.push(signal(10));
    const { client: sdk, seen } = client({ since: 10, fetch: rest.fetch, connectTimeoutMs: 60_000 });
    await toPolling(sdk);
    expect(sdk.state).toBe('polling');
    await vi.advanceTimersByTimeAsync(5_000);
    const ws = FakeSocket.last;
    rest.setDelay(1_000);
    rest.db.push(signal(11));
    await vi.advanceTimersByTimeAsync(19_000); // poll round started, page in flight
    ws.welcome(11); // socket takes over
    ws.receive({ type: 'signal', ...signal(11) });
    ws.receive({ type: 'replay_complete', last_seq: 11, count: 1 });
    await vi.advanceTimersByTimeAsync(2_000); // the page lands: ignored
    expect(seen).toEqual(['s11@1']);
    expect(sdk.state).toBe('live');
  });

  it('close() while a resync page is in flight: nothing delivered after, no resume sent', async () => {
    const rest = fakeListing();
    rest.db.push(signal(11), signal(12));
    rest.setDelay(1_000);
    const { client: sdk, seen } = client({ since: 10, fetch: rest.fetch });
    sdk.connect();
    await settle();
    const ws = FakeSocket.last;
    ws.welcome(12);
    ws.receive({ type: 'resync_required', since: 10, latest_seq: 12, max_replay: 1 });
    await vi.advanceTimersByTimeAsync(500);
    sdk.close();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(seen).toEqual([]);
    expect(ws.sent.filter((m) => m.type === 'resume')).toEqual([]);
  });

  it('resync pages then resume; a handler doing close()+connect() mid-page resumes exactly after the handled signal', async () => {
    const rest = fakeListing();
    rest.db.push(signal(11), signal(12), signal(13));
    const { client: sdk, seen } = client({ since: 10, fetch: rest.fetch });
    sdk.on('signal', (s) => {
      if (s.seq === 12) {
        sdk.close();
        sdk.connect();
      }
    });
    sdk.connect();
    await settle();
    FakeSocket.last.welcome(13);
    FakeSocket.last.receive({ type: 'resync_required', since: 10, latest_seq: 13, max_replay: 1 });
    await vi.advanceTimersByTimeAsync(10);
    expect(seen).toEqual(['s11@1', 's12@1']);
    expect(FakeSocket.last.query.get('since')).toBe('12');
    expect(FakeSocket.all).toHaveLength(2);
  });

  it('token_expiring racing a close: the late token is not sent on the next socket, no error', async () => {
    let release!: (t: string) => void;
    let n = 0;
    const { client: sdk, errors } = client({
      getToken: ({ reason }) => (reason === 'expiring' ? new Promise<string>((r) => (release = r)) : `t${++n}`),
    });
    sdk.connect();
    await settle();
    const a = FakeSocket.last;
    a.welcome(0);
    a.receive({ type: 'token_expiring', expires_at: 'x' });
    a.drop(1006);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(FakeSocket.last).toBe(a); // the reconnect joined the in-flight 'expiring' call (single-flight)
    release('fresh');
    await settle();
    const b = FakeSocket.last;
    expect(b).not.toBe(a);
    expect(b.query.get('token')).toBe('fresh');
    expect(a.sent.filter((m) => m.type === 'auth')).toEqual([]);
    expect(b.sent.filter((m) => m.type === 'auth')).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('reconnectNow()/online while a token is pending or a socket is connecting: still one socket', async () => {
    let release!: (t: string) => void;
    const { client: sdk } = client({ getToken: () => new Promise<string>((r) => (release = r)) });
    sdk.connect();
    await settle();
    FakeSocket.all = [];
    sdk.reconnectNow();
    release('t');
    await settle();
    sdk.reconnectNow();
    await settle();
    expect(FakeSocket.all).toHaveLength(1);
  });

  it('4501 handling: one refresh, a second 4501 in a row fails', async () => {
    const { client: sdk } = client();
    sdk.connect();
    await settle();
    FakeSocket.last.drop(4501, 'unauthorized'); // before welcome
    await settle();
    expect(FakeSocket.all).toHaveLength(2); // design table: should already be failed
    FakeSocket.last.drop(4501, 'unauthorized');
    expect(sdk.state).toBe('failed');
  });

  it('versions: a lower version with a higher seq is not emitted; lastSeq still advances', async () => {
    const { client: sdk, seen } = client();
    sdk.connect();
    await settle();
    FakeSocket.last.welcome(0);
    FakeSocket.last.receive({ type: 'signal_update', ...signal(1, 'a', 3) });
    FakeSocket.last.receive({ type: 'signal_update', ...signal(2, 'a', 2) });
    expect(seen).toEqual(['a@3']);
    expect(sdk.lastSeq).toBe(2);
  });
});

describe('close() from a handler is final', () => {
  it('state handler closes on "disconnected": no socket is opened after', async () => {
    const { client: sdk } = client();
    sdk.on('state', (s) => {
      if (s.state === 'disconnected') sdk.close();
    });
    sdk.connect();
    await settle();
    FakeSocket.last.welcome(0);
    FakeSocket.last.drop(1006);
    expect(sdk.state).toBe('closed');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all).toHaveLength(1);
    expect(sdk.state).toBe('closed');
  });

  it('error handler closes on token_unavailable: nothing reconnects', async () => {
    let calls = 0;
    const { client: sdk } = client({ getToken: () => (++calls === 1 ? Promise.reject(new Error('auth down')) : 't') });
    sdk.on('error', (e) => {
      if (e.code === 'token_unavailable') sdk.close();
    });
    sdk.connect();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sdk.state).toBe('closed');
    expect(FakeSocket.all).toHaveLength(0);
  });

  it('state handler closes on a 4501 "disconnected": no refresh socket is opened', async () => {
    const { client: sdk } = client();
    sdk.on('state', (s) => {
      if (s.state === 'disconnected') sdk.close();
    });
    sdk.connect();
    await settle();
    FakeSocket.last.welcome(0);
    FakeSocket.last.drop(4501, 'token expired');
    await settle();
    expect(FakeSocket.all).toHaveLength(1);
  });

  it('error handler closes on a confirmed position_reset: no socket is opened', async () => {
    const rest = fakeListing();
    rest.db.push(signal(30));
    const { client: sdk } = client({ since: 500, fetch: rest.fetch });
    sdk.on('error', (e) => {
      if (e.code === 'position_reset') sdk.close();
    });
    sdk.connect();
    await settle();
    FakeSocket.last.welcome(30);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all).toHaveLength(1);
    expect(sdk.state).toBe('closed');
  });
});

describe('subscribe() always settles', () => {
  it('a subscribe the server never answers (rate_limited carries no id) times out: a new socket carries the filters', async () => {
    const { client: sdk } = client();
    sdk.connect();
    await settle();
    const first = FakeSocket.last;
    first.welcome(0);
    const a = sdk.subscribe({ symbols: ['A'] });
    first.receive({ type: 'error', code: 'rate_limited', message: 'Too many requests; slow down' });
    const b = sdk.subscribe({ symbols: ['B'] });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(first.closedWith).toBe(4000);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(FakeSocket.last.query.get('symbols')).toBe('B');
    FakeSocket.last.welcome(0);
    await expect(a).resolves.toBeUndefined(); // superseded by B, which is in force
    await expect(b).resolves.toBeUndefined();
  });

  it('subscribe(A) refused while subscribe(B) waits: A rejects, B is sent and resolves on its ack', async () => {
    const { client: sdk } = client();
    sdk.connect();
    await settle();
    const ws = FakeSocket.last;
    ws.welcome(0);
    const a = sdk.subscribe({ symbols: ['bad symbol'] });
    const b = sdk.subscribe({ symbols: ['ETHUSDT'] });
    a.catch(() => undefined);
    ws.receive({ type: 'error', id: ws.sent.at(-1)!.id, code: 'invalid_request', message: 'symbols.0' });
    await expect(a).rejects.toMatchObject({ code: 'invalid_request' });
    const request = ws.sent.at(-1)!;
    expect(request).toMatchObject({ type: 'subscribe', filters: { symbols: ['ETHUSDT'] } });
    ws.receive({ type: 'ack', id: request.id, subscribed: true });
    await expect(b).resolves.toBeUndefined();
    expect(sdk.filters).toEqual({ symbols: ['ETHUSDT'] });
  });
});

describe('every wait has a deadline', () => {
  it('a getToken that never settles is given up after connectTimeoutMs and asked again', async () => {
    let calls = 0;
    const { client: sdk, errors } = client({ connectTimeoutMs: 2_000, getToken: () => (calls++, new Promise<string>(() => undefined)) });
    sdk.connect();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(errors).toEqual(['token_unavailable']);
    expect(sdk.state).toBe('disconnected');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(calls).toBe(2);
  });

  it('close() drops a hung getToken: connect() asks again', async () => {
    let calls = 0;
    const { client: sdk } = client({ getToken: () => (++calls === 1 ? new Promise<string>(() => undefined) : 'fresh') });
    sdk.connect();
    await settle();
    sdk.close();
    sdk.connect();
    await settle();
    expect(calls).toBe(2);
    expect(FakeSocket.all).toHaveLength(1);
  });

  it('a resync page that never answers is given up (30 s), and the socket replaced', async () => {
    const hung = () => new Promise<never>(() => undefined);
    const { client: sdk, states } = client({ since: 10, fetch: hung });
    sdk.connect();
    await settle();
    const ws = FakeSocket.last;
    ws.welcome(50_000);
    ws.receive({ type: 'resync_required', since: 10, latest_seq: 50_000, max_replay: 10_000 });
    await vi.advanceTimersByTimeAsync(30_000);
    expect(ws.closedWith).toBe(4000);
    expect(states.at(-1)).toMatchObject({ state: 'disconnected', reason: 'catch-up failed' });
  });

  it('a resume refused without an id (rate_limited) stalls the replay: after 30 s the socket is replaced', async () => {
    const rest = fakeListing();
    const { client: sdk, states } = client({ since: 10, fetch: rest.fetch });
    sdk.connect();
    await settle();
    const ws = FakeSocket.last;
    ws.welcome(50_000);
    ws.receive({ type: 'resync_required', since: 10, latest_seq: 50_000, max_replay: 10_000 });
    await settle();
    expect(ws.sent.at(-1)).toMatchObject({ type: 'resume', since: 10 });
    ws.receive({ type: 'error', code: 'rate_limited', message: 'Too many requests; slow down' });
    await vi.advanceTimersByTimeAsync(25_000);
    ws.receive({ type: 'pong', id: ws.sent.at(-1)!.id }); // alive, but the replay does not move
    await vi.advanceTimersByTimeAsync(5_000);
    expect(ws.closedWith).toBe(4000);
    expect(states.at(-1)).toMatchObject({ state: 'disconnected', reason: 'the replay stalled' });
  });

  it('a replay that keeps sending is not a stall, however long it takes', async () => {
    const { client: sdk } = client({ since: 0 });
    sdk.connect();
    await settle();
    const ws = FakeSocket.last;
    ws.welcome(100);
    for (let seq = 1; seq <= 10; seq++) {
      await vi.advanceTimersByTimeAsync(20_000);
      ws.receive({ type: 'signal', ...signal(seq) });
    }
    ws.receive({ type: 'replay_complete', last_seq: 100, count: 10 });
    expect(sdk.state).toBe('live');
    expect(FakeSocket.all).toHaveLength(1);
  });
});

describe('the poll to WebSocket seam', () => {
  it('a socket opened without a position, welcomed after polling set one, is opened again from the position', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const rest = fakeListing();
    rest.db.push(signal(10));
    rest.setDelay(2_000); // the first poll is slow
    const { client: sdk, seen } = client({ fetch: rest.fetch, connectTimeoutMs: 60_000 });
    sdk.connect();
    for (let i = 0; i < 3; i++) {
      await settle();
      FakeSocket.last.drop(1006);
    }
    // A retry timer from before polling started may still open a socket without since.
    (sdk as unknown as { open(): Promise<void> }).open();
    await settle();
    const early = FakeSocket.last;
    expect(early.query.get('since')).toBeNull();
    await vi.advanceTimersByTimeAsync(2_000); // the first poll: position 10
    expect(sdk.lastSeq).toBe(10);
    rest.db.push(signal(11), signal(12));
    early.welcome(12);
    await settle();
    expect(early.closedWith).toBe(1000);
    const again = FakeSocket.last;
    expect(again.query.get('since')).toBe('10');
    again.welcome(12);
    again.receive({ type: 'signal', ...signal(11) });
    again.receive({ type: 'signal', ...signal(12) });
    again.receive({ type: 'replay_complete', last_seq: 12, count: 2 });
    expect(seen).toEqual(['s11@1', 's12@1']);
    expect(sdk.lastSeq).toBe(12);
  });
});

describe('the per-user cap across a cluster', () => {
  it('closes with 4429 before the welcome are retried on the WebSocket, never turned into polling (which has no cap)', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const rest = fakeListing();
    const { client: sdk } = client({ fetch: rest.fetch, connectTimeoutMs: 60_000 });
    sdk.connect();
    for (let i = 0; i < 4; i++) {
      await settle();
      FakeSocket.last.drop(4429);
      await vi.advanceTimersByTimeAsync(5_000); // the 5 s floor
    }
    expect(sdk.state).not.toBe('polling');
    expect(rest.calls).toEqual([]);
  });
});
