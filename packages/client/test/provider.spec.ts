import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ProviderClient, type SignalInput } from '../src/index.js';
import type { FetchLike } from '../src/types.js';

type Answer = { status: number; body?: string; headers?: Record<string, string> } | 'network';
function scripted(answers: Answer[]) {
  const requests: { url: string; body: unknown; at: number }[] = [];
  const fetch: FetchLike = async (url, init) => {
    requests.push({ url, body: init?.body ? JSON.parse(init.body) : undefined, at: Date.now() });
    const a = answers.shift() ?? { status: 500 };
    if (a === 'network') throw new TypeError('fetch failed');
    return { status: a.status, headers: { get: (n: string) => a.headers?.[n.toLowerCase()] ?? null }, text: async () => a.body ?? '' };
  };
  return { fetch, requests };
}
const input = (id: string): SignalInput => ({
  external_id: id,
  symbol: 'BTCUSDT',
  market: 'crypto',
  side: 'long',
  entry: '1',
  confidence: 50,
  timeframe: '1h',
  issued_at: '2026-01-01T00:00:00Z',
});
const ok = (seq: number) => JSON.stringify({ result: 'created', seq, signal: { seq } });

beforeEach(() => vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') }));
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('ProviderClient', () => {
  it('honours Retry-After in its HTTP-date form (RFC 9110)', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const retryAt = new Date(Date.now() + 10_000).toUTCString();
    const { fetch, requests } = scripted([
      { status: 503, headers: { 'retry-after': retryAt }, body: '{"code":"database_unavailable","message":"down"}' },
      { status: 201, body: ok(1) },
    ]);
    const pending = new ProviderClient({ url: 'https://x', apiKey: 'k', fetch }).sync(input('a'));
    await vi.advanceTimersByTimeAsync(20_000);
    await pending;
    expect(requests[1]!.at - requests[0]!.at).toBeGreaterThanOrEqual(10_000);
  });

  it('a 2xx whose body is cut or not JSON is retried like a network error', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { fetch, requests } = scripted([
      { status: 201, body: '{"result":"crea' },
      { status: 200, body: ok(1) },
    ]);
    const pending = new ProviderClient({ url: 'https://x', apiKey: 'k', fetch }).sync(input('a'));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await pending).toMatchObject({ result: 'created', seq: 1 });
    expect(requests).toHaveLength(2);
  });

  it('syncMany too: an empty 200 is retried, not destructured', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const batch = JSON.stringify({ results: [{ index: 0, status: 201, result: 'created', seq: 7, signal: {} }] });
    const { fetch } = scripted([
      { status: 200, body: '' },
      { status: 200, body: batch },
    ]);
    const pending = new ProviderClient({ url: 'https://x', apiKey: 'k', fetch }).syncMany([input('a')]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect((await pending).map((result) => result.status)).toEqual([201]);
  });

  it('retries 502 and 504 (a proxy in front of a restarting service), and a network error', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { fetch, requests } = scripted([{ status: 502 }, { status: 504 }, 'network', { status: 201, body: ok(3) }]);
    const pending = new ProviderClient({ url: 'https://x', apiKey: 'k', fetch }).sync(input('a'));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(await pending).toMatchObject({ seq: 3 });
    expect(requests).toHaveLength(4);
  });

  it('gives up a request that never answers after its timeout, and retries it', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    let calls = 0;
    const fetch: FetchLike = () =>
      ++calls === 1
        ? new Promise(() => undefined)
        : Promise.resolve({ status: 201, headers: { get: () => null }, text: async () => ok(9) });
    const pending = new ProviderClient({ url: 'https://x', apiKey: 'k', fetch }).sync(input('a'));
    await vi.advanceTimersByTimeAsync(31_000);
    expect(await pending).toMatchObject({ seq: 9 });
    expect(calls).toBe(2);
  });

  it('no fetch at all (a configuration error) is not retried', async () => {
    vi.stubGlobal('fetch', undefined);
    const started = Date.now();
    let settledAt = 0;
    const pending = new ProviderClient({ url: 'https://x', apiKey: 'k' }).sync(input('a')).catch((e) => ((settledAt = Date.now()), e));
    await vi.advanceTimersByTimeAsync(120_000);
    const error = await pending;
    vi.unstubAllGlobals();
    expect(error.code).toBe('fetch_unavailable');
    expect(settledAt - started).toBeLessThan(1_000);
  });

  it('partial batch retry maps sub-batch indexes back to the original positions', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { fetch, requests } = scripted([
      {
        status: 200,
        body: JSON.stringify({
          results: [
            { index: 0, status: 201, result: 'created', seq: 1, signal: {} },
            { index: 1, status: 503, error: { code: 'database_unavailable', message: '' } },
            { index: 2, status: 400, error: { code: 'validation_failed', message: '' } },
            { index: 3, status: 503, error: { code: 'database_unavailable', message: '' } },
          ],
        }),
      },
      {
        status: 200,
        body: JSON.stringify({
          results: [
            { index: 0, status: 201, result: 'created', seq: 2, signal: {} },
            { index: 1, status: 200, result: 'updated', seq: 3, signal: {} },
          ],
        }),
      },
    ]);
    const pending = new ProviderClient({ url: 'https://x', apiKey: 'k', fetch }).syncMany(['a', 'b', 'c', 'd'].map(input));
    await vi.advanceTimersByTimeAsync(5_000);
    const results = await pending;
    expect((requests[1]!.body as { signals: SignalInput[] }).signals.map((s) => s.external_id)).toEqual(['b', 'd']);
    expect(results.map((r) => [r.index, r.status])).toEqual([
      [0, 201],
      [1, 201],
      [2, 400],
      [3, 200],
    ]);
  });

  it('a 4xx is never retried; 429 neither (per the contract, though it carries Retry-After)', async () => {
    const { fetch, requests } = scripted([
      { status: 429, headers: { 'retry-after': '1' }, body: '{"code":"rate_limited","message":"slow"}' },
    ]);
    await expect(new ProviderClient({ url: 'https://x', apiKey: 'k', fetch }).sync(input('a'))).rejects.toMatchObject({
      code: 'rate_limited',
      status: 429,
    });
    expect(requests).toHaveLength(1);
  });

  it('retries stop within maxElapsedMs and a numeric Retry-After is honoured', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const down = { status: 503, headers: { 'retry-after': '2' }, body: '{"code":"database_unavailable","message":"down"}' };
    const { fetch, requests } = scripted(Array(100).fill(down));
    const started = Date.now();
    const pending = new ProviderClient({ url: 'https://x', apiKey: 'k', fetch, retry: { maxElapsedMs: 10_000 } })
      .sync(input('a'))
      .catch((e) => e);
    await vi.advanceTimersByTimeAsync(60_000);
    expect((await pending).status).toBe(503);
    expect(requests.length).toBe(6); // 0,2,4,6,8,10 s
    expect(requests.at(-1)!.at - started).toBeLessThanOrEqual(10_000);
  });
});
