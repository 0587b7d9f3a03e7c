import { describe, expect, it, vi } from 'vitest';
import { client, fakeListing, FakeSocket, settle, signal, useScriptedClock } from './harness.js';

// Delivery receipts (`{"type":"received","seq":N}`, issue 16): what the client acknowledges, when,
// and over which socket.

useScriptedClock();

const receipts = (socket: FakeSocket) => socket.sent.filter((message) => message.type === 'received').map((message) => message.seq);

async function live(options: Parameters<typeof client>[0] = {}) {
  const recorded = client(options);
  recorded.client.connect();
  await settle();
  FakeSocket.last.welcome(0);
  return { ...recorded, ws: FakeSocket.last };
}

describe('receipts: when', () => {
  it('the first one goes out at once, after the handlers ran, with the seq just processed', async () => {
    const { client: sdk, ws } = await live();
    const sentWhileHandling: unknown[][] = [];
    sdk.on('signal', () => sentWhileHandling.push(receipts(ws)));
    ws.receive({ type: 'signal', ...signal(1) });
    expect(sentWhileHandling).toEqual([[]]); // not before the handler returned
    expect(ws.sent).toEqual([{ type: 'received', seq: 1 }]); // synchronously, no id
  });

  it('a burst of 100 within 250 ms: one at once, one at the end of the window with the highest seq', async () => {
    const { ws } = await live();
    for (let seq = 1; seq <= 100; seq++) {
      ws.receive({ type: seq % 2 ? 'signal' : 'signal_update', ...signal(seq) });
      await vi.advanceTimersByTimeAsync(2); // 200 ms in all
    }
    expect(receipts(ws)).toEqual([1]);
    await vi.advanceTimersByTimeAsync(49); // 249 ms after the first
    expect(receipts(ws)).toEqual([1]);
    await vi.advanceTimersByTimeAsync(1);
    expect(receipts(ws)).toEqual([1, 100]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(receipts(ws)).toEqual([1, 100]);
  });

  it('a receipt held past its signal says for how long (the server leaves it out of the latency); one sent at once says nothing', async () => {
    const { ws } = await live();
    ws.receive({ type: 'signal', ...signal(1) });
    await vi.advanceTimersByTimeAsync(100);
    ws.receive({ type: 'signal', ...signal(2) }); // processed 100 ms into the window
    await vi.advanceTimersByTimeAsync(150);
    expect(ws.sent.filter((message) => message.type === 'received')).toEqual([
      { type: 'received', seq: 1 },
      { type: 'received', seq: 2, held_ms: 150 },
    ]);
  });

  it('a steady stream: at most one every 250 ms, each with the highest seq processed by then', async () => {
    const { ws } = await live();
    for (let seq = 1; seq <= 10; seq++) {
      ws.receive({ type: 'signal', ...signal(seq) });
      await vi.advanceTimersByTimeAsync(100);
    }
    await vi.advanceTimersByTimeAsync(1_000);
    // Signal n arrives at (n - 1) * 100 ms; the windows end at 250, 500, 750 and 1000 ms (the one
    // at 500 ms fires before signal 6 arrives), and the last one closes at 1250 ms with nothing owed.
    expect(receipts(ws)).toEqual([1, 3, 5, 8, 10]);
  });

  it('signals spaced by more than the window each get their own receipt at once', async () => {
    const { ws } = await live();
    for (let seq = 1; seq <= 5; seq++) {
      ws.receive({ type: 'signal', ...signal(seq) });
      expect(receipts(ws)).toEqual(Array.from({ length: seq }, (_, i) => i + 1));
      await vi.advanceTimersByTimeAsync(300);
    }
  });

  it('receipts: false sends none', async () => {
    const { ws } = await live({ receipts: false });
    for (let seq = 1; seq <= 5; seq++) {
      ws.receive({ type: 'signal', ...signal(seq) });
      await vi.advanceTimersByTimeAsync(100);
    }
    await vi.advanceTimersByTimeAsync(1_000);
    expect(ws.sent).toEqual([]);
  });
});

describe('receipts: what counts as processed', () => {
  it('a signal whose handler throws counts (as for lastSeq): the error event, and the receipt', async () => {
    const { client: sdk, ws, errors } = await live();
    sdk.on('signal', () => {
      throw new Error('bug in the app');
    });
    ws.receive({ type: 'signal', ...signal(1) });
    expect(errors).toEqual(['handler_failed']);
    expect(sdk.lastSeq).toBe(1);
    expect(receipts(ws)).toEqual([1]);
  });

  it('a version the client already holds (not emitted) still moves the acknowledged position', async () => {
    const { ws, seen } = await live();
    ws.receive({ type: 'signal_update', ...signal(1, 'a', 3) });
    await vi.advanceTimersByTimeAsync(300);
    ws.receive({ type: 'signal_update', ...signal(2, 'a', 2) });
    expect(seen).toEqual(['a@3']);
    expect(receipts(ws)).toEqual([1, 2]);
  });

  it('a seq at or below the position (handled before, dropped now) is acknowledged too', async () => {
    const { client: sdk, seen } = client({ since: 5 });
    sdk.connect();
    await settle();
    const ws = FakeSocket.last;
    ws.welcome(6);
    ws.receive({ type: 'signal', ...signal(5) });
    expect(seen).toEqual([]);
    expect(receipts(ws)).toEqual([5]);
  });

  it('never the same seq twice, never a lower one: a repeated or older seq sends nothing', async () => {
    const { ws } = await live();
    ws.receive({ type: 'signal', ...signal(5) });
    await vi.advanceTimersByTimeAsync(300);
    ws.receive({ type: 'signal', ...signal(5) });
    ws.receive({ type: 'signal', ...signal(4) });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(receipts(ws)).toEqual([5]);
  });
});

describe('receipts: which socket', () => {
  it('none before the welcome', async () => {
    const { client: sdk } = client();
    sdk.connect();
    await settle();
    const ws = FakeSocket.last;
    ws.receive({ type: 'signal', ...signal(1) }); // a server that broke the protocol
    await vi.advanceTimersByTimeAsync(300);
    expect(ws.sent).toEqual([]);
    ws.welcome(1);
    expect(ws.sent).toEqual([]);
    ws.receive({ type: 'signal', ...signal(2) });
    expect(receipts(ws)).toEqual([2]);
  });

  it('none for signals read over HTTP (polling): the next socket acknowledges what comes over it', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const rest = fakeListing();
    rest.db.push(signal(10));
    const { client: sdk, seen } = client({ since: 9, fetch: rest.fetch, connectTimeoutMs: 60_000 });
    sdk.connect();
    for (let attempt = 0; attempt < 3; attempt++) {
      await settle();
      FakeSocket.last.drop(1006); // the upgrade is refused
    }
    await settle();
    expect(sdk.state).toBe('polling');
    expect(seen).toEqual(['s10@1']);
    await vi.advanceTimersByTimeAsync(5_000); // the WebSocket is tried again
    const ws = FakeSocket.last;
    expect(ws.query.get('since')).toBe('10');
    ws.welcome(10);
    ws.receive({ type: 'replay_complete', last_seq: 10, count: 0 });
    expect(sdk.state).toBe('live');
    for (const socket of FakeSocket.all) expect(receipts(socket)).toEqual([]);
    ws.receive({ type: 'signal', ...signal(11) });
    expect(receipts(ws)).toEqual([11]);
  });

  it('replayed signals are acknowledged as they are processed, during the replay', async () => {
    const { client: sdk } = client({ since: 3 });
    sdk.connect();
    await settle();
    const ws = FakeSocket.last;
    ws.welcome(6);
    ws.receive({ type: 'signal', ...signal(4) });
    expect(sdk.state).toBe('replaying');
    expect(receipts(ws)).toEqual([4]);
    ws.receive({ type: 'signal', ...signal(5) });
    ws.receive({ type: 'signal', ...signal(6) });
    ws.receive({ type: 'replay_complete', last_seq: 6, count: 3 });
    await vi.advanceTimersByTimeAsync(250);
    expect(receipts(ws)).toEqual([4, 6]);
  });

  it('close() with a receipt window open leaves no timer and sends nothing after', async () => {
    const { client: sdk, ws } = await live();
    ws.receive({ type: 'signal', ...signal(1) });
    ws.receive({ type: 'signal', ...signal(2) }); // owed at the window's end
    sdk.close();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(receipts(ws)).toEqual([1]);
  });

  it('a receipt the lost socket still owed goes out once on the next socket, after its replay_complete', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { ws: first } = await live();
    first.receive({ type: 'signal', ...signal(1) });
    first.receive({ type: 'signal', ...signal(2) }); // owed at 250 ms
    first.drop(1006);
    await vi.advanceTimersByTimeAsync(1); // reconnect (backoff 0)
    expect(receipts(first)).toEqual([1]);
    const second = FakeSocket.last;
    expect(second.query.get('since')).toBe('2');
    second.welcome(2);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(second.sent).toEqual([]); // not before the replay is done
    second.receive({ type: 'replay_complete', last_seq: 2, count: 0 });
    expect(receipts(second)).toEqual([2]);
    second.receive({ type: 'signal', ...signal(3) }); // inside the new window: at its end
    expect(receipts(second)).toEqual([2]);
    await vi.advanceTimersByTimeAsync(250);
    expect(receipts(second)).toEqual([2, 3]);
  });

  it('nothing is acknowledged again on the next socket when the lost one owed nothing', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { ws: first } = await live();
    first.receive({ type: 'signal', ...signal(1) });
    await vi.advanceTimersByTimeAsync(300);
    first.drop(1006);
    await vi.advanceTimersByTimeAsync(1);
    const second = FakeSocket.last;
    second.welcome(1);
    second.receive({ type: 'replay_complete', last_seq: 1, count: 0 });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(second.sent).toEqual([]);
    second.receive({ type: 'signal', ...signal(2) });
    expect(receipts(second)).toEqual([2]);
  });

  it('a server that does not know `received` (unknown_type, no id): no more receipts on that socket, no error event', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { ws: old, errors } = await live();
    old.receive({ type: 'signal', ...signal(1) });
    old.receive({ type: 'error', code: 'unknown_type', message: 'Unknown message type' });
    await vi.advanceTimersByTimeAsync(300);
    old.receive({ type: 'signal', ...signal(2) });
    await vi.advanceTimersByTimeAsync(300);
    expect(receipts(old)).toEqual([1]);
    expect(errors).toEqual([]);
    old.receive({ type: 'error', id: 'c1', code: 'unknown_type', message: 'x' }); // answers a request: not about receipts
    old.receive({ type: 'error', code: 'invalid_request', field: 'seq', message: 'seq is past what was sent' });
    expect(errors).toEqual(['unknown_type', 'invalid_request']);
    old.drop(1006); // another instance may know them
    await vi.advanceTimersByTimeAsync(1);
    const next = FakeSocket.last;
    next.welcome(2);
    next.receive({ type: 'replay_complete', last_seq: 2, count: 0 });
    expect(receipts(next)).toEqual([2]);
  });

  it('after a position reset (another database) lower seqs are acknowledged again', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const rest = fakeListing();
    rest.db.push(signal(30));
    const { ws: first, errors } = await live({ fetch: rest.fetch });
    first.receive({ type: 'signal', ...signal(500) });
    first.drop(1006);
    await vi.advanceTimersByTimeAsync(1);
    FakeSocket.last.welcome(30); // since=500 on a database whose latest is 30
    await vi.advanceTimersByTimeAsync(1);
    expect(errors).toEqual(['position_reset']);
    const fresh = FakeSocket.last;
    expect(fresh.query.get('since')).toBe('30');
    fresh.welcome(30);
    fresh.receive({ type: 'replay_complete', last_seq: 30, count: 0 });
    fresh.receive({ type: 'signal', ...signal(31) });
    expect(receipts(fresh)).toEqual([31]);
  });
});
