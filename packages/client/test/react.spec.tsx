import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { App, FakeSocket, ids, installDom, makeClient, seen, sig, sleep } from './react-harness.js';

// The hook's store, found wanting by a review: each case failed before its fix.

let rtl: typeof import('@testing-library/react');
beforeAll(async () => ({ rtl } = await installDom()));
afterEach(() => {
  rtl.cleanup();
  FakeSocket.all = [];
});
const tick = (ms = 40) => rtl.act(() => sleep(ms));

async function live(client: ReturnType<typeof makeClient>, props = {}) {
  const view = rtl.render(<App client={client} {...props} />);
  await tick(5);
  const ws = FakeSocket.last;
  ws.welcome(0);
  await tick();
  return { view, ws };
}

describe('useSignals', () => {
  it('keeps its rows when the server refuses a filter change, and shows the refusal until a change succeeds', async () => {
    const client = makeClient();
    const { view, ws } = await live(client);
    ws.receive(sig(1));
    ws.receive(sig(2));
    await tick();
    view.rerender(<App client={client} filters={{ markets: ['Crypto'] }} />);
    await tick();
    let request = ws.sent.filter((message) => message.type === 'subscribe').at(-1)!;
    ws.receive({ type: 'error', id: request.id, code: 'invalid_request', message: 'markets.0: must be a lowercase market name' });
    await tick();
    expect(ids()).toEqual(['s2', 's1']);
    expect(seen.current!.error?.code).toBe('invalid_request');

    view.rerender(<App client={client} filters={{ markets: ['crypto'] }} />);
    await tick();
    request = ws.sent.filter((message) => message.type === 'subscribe').at(-1)!;
    ws.receive({ type: 'ack', id: request.id, subscribed: true });
    await tick();
    expect(seen.current!.error).toBeNull();
    expect(ids()).toEqual(['s2', 's1']); // both are crypto
  });

  it('clears a poll error once a poll succeeds', async () => {
    let fail = true;
    const fetch = async (input: string) => {
      if (fail) {
        fail = false;
        throw new Error('offline');
      }
      const after = Number(new URL(input).searchParams.get('after_seq') ?? 0);
      const data = after < 5 ? [sig(5)].map(({ type: _type, ...signal }) => signal) : [];
      return {
        status: 200,
        headers: { get: () => null },
        text: async () => JSON.stringify({ data, has_more: false, next_after_seq: 5, latest_seq: 5 }),
      };
    };
    const client = makeClient({ useWebSocket: false, fetch, since: 0, poll: { intervalMs: 1_000 } });
    rtl.render(<App client={client} />);
    await tick(50);
    expect(seen.current!.error?.code).toBe('network_error');
    await tick(1_400);
    expect(ids()).toEqual(['s5']);
    expect(seen.current!.error).toBeNull();
  });

  it('keeps rows when the limit goes down and up again', async () => {
    const client = makeClient();
    const { view, ws } = await live(client, { limit: 5 });
    for (let seq = 1; seq <= 5; seq++) ws.receive(sig(seq));
    await tick();
    view.rerender(<App client={client} limit={2} />);
    ws.receive(sig(6));
    await tick();
    expect(ids()).toEqual(['s6', 's5']);
    view.rerender(<App client={client} limit={5} />);
    await tick();
    expect(ids()).toEqual(['s6', 's5', 's4', 's3', 's2']);
  });

  it('a limit that is not a positive integer falls back to the default, for that hook only', async () => {
    const client = makeClient();
    const { ws } = await live(client, { limit: Number.NaN });
    ws.receive(sig(1));
    await tick();
    expect(ids()).toEqual(['s1']);
  });

  it("premiumOnly changes only the premium criterion of the client's filters", async () => {
    const client = makeClient({ filters: { markets: ['crypto'] } });
    const { view, ws } = await live(client, { premiumOnly: false });
    expect(ws.query.get('markets')).toBe('crypto');
    view.rerender(<App client={client} premiumOnly />);
    await tick();
    const request = ws.sent.filter((message) => message.type === 'subscribe').at(-1)!;
    expect(request.filters).toEqual({ markets: ['crypto'], premium: true });
  });

  it('forgets the rows of the previous user when another one signs in on the same client', async () => {
    let token = 'elite-token';
    const client = makeClient({ getToken: () => token });
    const view = rtl.render(<App client={client} />);
    await tick(5);
    FakeSocket.last.welcome(0);
    FakeSocket.last.receive(sig(1, { premium: true }));
    await tick();
    expect(ids()).toEqual(['s1']);
    view.unmount();
    await tick();
    token = 'free-token';
    rtl.render(<App client={client} />);
    await tick(5);
    FakeSocket.last.receive({
      type: 'welcome',
      user_id: 'u2',
      tier: 'free',
      server_time: new Date(0).toISOString(),
      latest_seq: 1,
      token_expires_at: null,
    });
    FakeSocket.last.receive({ type: 'replay_complete', last_seq: 1, count: 0 });
    await tick();
    expect(ids()).toEqual([]);
  });
});
