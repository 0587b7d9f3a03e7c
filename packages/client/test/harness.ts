// Shared by the SDK's unit tests: a scripted socket, a scripted listing, a recording client.
import { afterEach, beforeEach, vi } from 'vitest';
import { SignalcastClient, type ClientOptions, type Signal, type StateChange } from '../src/index.js';
import { FakeSocket, signal } from './fake-socket.js';
export { FakeSocket, signal };

export const settle = () => vi.advanceTimersByTimeAsync(0);

/** A fake REST listing (`GET /api/v1/signals`) over a mutable "database"; `calls` records each request. */
export function fakeListing() {
  const db: Signal[] = [];
  const calls: { url: string; token: string }[] = [];
  let delayMs = 0;
  let status: number | ((token: string) => number) = 200;
  const fetch: ClientOptions['fetch'] = async (input, init) => {
    const url = new URL(input);
    const token = (init?.headers?.authorization ?? '').replace('Bearer ', '');
    calls.push({ url: input, token });
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    const s = typeof status === 'function' ? status(token) : status;
    if (s !== 200)
      return {
        status: s,
        headers: { get: () => null },
        text: async () => JSON.stringify({ code: s === 401 ? 'unauthorized' : `e${s}`, message: 'no' }),
      };
    const after = Number(url.searchParams.get('after_seq') ?? 0);
    const limit = Number(url.searchParams.get('limit') ?? 100);
    const latest = Math.max(0, ...db.map((x) => x.seq));
    const rows = db.filter((x) => x.seq > after).sort((a, b) => a.seq - b.seq);
    const page = rows.slice(0, limit);
    return {
      status: 200,
      headers: { get: () => null },
      text: async () =>
        JSON.stringify({ data: page, has_more: rows.length > limit, next_after_seq: page.at(-1)?.seq ?? after, latest_seq: latest }),
    };
  };
  return {
    db,
    calls,
    fetch,
    setDelay: (ms: number) => (delayMs = ms),
    setStatus: (s: typeof status) => (status = s),
  };
}

/** A client on FakeSocket and no HTTP (unless `fetch` is given), recording states, signals and error codes. */
export function client(options: Partial<ClientOptions> = {}) {
  const created = new SignalcastClient({
    url: 'https://signals.example.com/base',
    getToken: () => 'token-1',
    WebSocket: FakeSocket,
    fetch: () => Promise.reject(new Error('no HTTP in this test')),
    backoff: { minMs: 100, maxMs: 1_000 },
    ...options,
  });
  const states: StateChange[] = [];
  const seen: string[] = [];
  const errors: string[] = [];
  created.on('state', (state) => states.push(state));
  created.on('signal', (delivered) => seen.push(`${delivered.id}@${delivered.version}`));
  created.on('error', (error) => errors.push(error.code));
  return { client: created, states, seen, errors };
}

/** Fake timers and a fresh socket list for every test of the file. */
export function useScriptedClock(): void {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.all = [];
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });
}
