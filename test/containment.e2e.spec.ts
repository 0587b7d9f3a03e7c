import { describe, expect, it, vi } from 'vitest';
import { flush, signalBody, UpgradeRefused, WsClient } from './support/clients.js';
import { useTestApp } from './support/test-app.js';

describe('containment: slow consumers, rate limits, connection caps', () => {
  const t = useTestApp({
    WS_MAX_BUFFERED_BYTES: '65536',
    SYNC_BATCH_MAX_ITEMS: '200',
    HTTP_BODY_LIMIT_BYTES: '2000000',
    WS_RATE_LIMIT_PER_SECOND: '5',
    WS_RATE_LIMIT_BURST: '5',
    WS_RATE_LIMIT_STRIKES: '5',
    WS_MAX_CONNECTIONS: '6',
  });

  const stats = async () => (await t.api.request('GET', '/ws/stats', { token: await t.api.admin() })).body;

  it('cuts off a client that stops reading while a normal client gets every signal, in order', async () => {
    const slowUser = await t.api.user('pro');
    const slow = await WsClient.connect(t.app.wsUrl, { token: slowUser.token });
    const normal = await WsClient.connect(t.app.wsUrl, { token: (await t.api.user('pro')).token });
    const before = await stats();
    // The slow client stops reading: the kernel buffers fill, then the server's send buffer grows.
    (slow.socket as unknown as { _socket: { pause(): void } })._socket.pause();

    const note = 'x'.repeat(1900);
    const synced: number[] = [];
    for (let round = 0; round < 40 && (await stats()).slow_consumers_disconnected === before.slow_consumers_disconnected; round++) {
      const response = await t.api.request('POST', '/api/v1/external-signals/sync/signals', {
        apiKey: t.provider.apiKey,
        body: { signals: Array.from({ length: 200 }, () => signalBody({ note, premium: round % 2 === 0 })) },
      });
      synced.push(...response.body.results.map((r: { seq: number }) => r.seq));
    }
    const after = await stats();
    expect(after.slow_consumers_disconnected).toBe(before.slow_consumers_disconnected + 1);
    expect(after.total_connections).toBe(before.total_connections - 1);

    await flush(t.api, t.provider.apiKey, [normal]);
    expect(normal.seqs()).toEqual(synced);

    (slow.socket as unknown as { _socket: { resume(): void } })._socket.resume();
    expect((await slow.waitClose(10_000)).code).toBe(4008);
    // What it did receive before the cut is a gap-free prefix it can resume from.
    const received = slow.seqs();
    expect(received).toEqual(synced.slice(0, received.length));
    await normal.close();
  }, 120_000);

  it('answers requests over the rate limit with an error, then closes with 4029 if they persist', async () => {
    const user = await t.api.user('free');
    const socket = await WsClient.connect(t.app.wsUrl, { token: user.token });
    for (let i = 0; i < 30; i++) socket.send({ type: 'ping', id: i });
    expect((await socket.waitClose()).code).toBe(4029);
    const pongs = socket.messages.filter((m) => m.type === 'pong');
    const limited = socket.messages.filter((m) => m.type === 'error' && m.code === 'rate_limited');
    expect(pongs.length).toBeGreaterThanOrEqual(5);
    expect(pongs.length).toBeLessThan(8);
    expect(limited.length).toBe(4);
  });

  it('stops counting a socket as soon as it closes it for its rate, while the client has not answered the close', async () => {
    const before = (await stats()).total_connections;
    const user = await t.api.user('free');
    const socket = await WsClient.connect(t.app.wsUrl, { token: user.token });
    expect((await stats()).total_connections).toBe(before + 1);
    for (let i = 0; i < 30; i++) socket.send({ type: 'ping', id: i });
    // The client reads nothing more: the close frame (4029) waits, unanswered, in its kernel buffer,
    // and the server keeps the socket (CLOSING) until it answers or for 5 s.
    const net = (socket.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    net.pause();
    try {
      await vi.waitFor(async () => expect((await stats()).total_connections).toBe(before), { timeout: 2_500, interval: 50 });
      await t.api.request('POST', '/api/v1/external-signals/sync/signals', {
        apiKey: t.provider.apiKey,
        body: { signals: [signalBody()] },
      });
    } catch (error) {
      socket.socket.terminate();
      throw error;
    }
    net.resume();
    expect((await socket.waitClose()).code).toBe(4029);
    expect(socket.signals()).toEqual([]);
  });

  it('keeps a client that stays under the rate limit', async () => {
    const user = await t.api.user('free');
    const socket = await WsClient.connect(t.app.wsUrl, { token: user.token });
    for (let i = 0; i < 8; i++) {
      expect(await socket.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await socket.close();
  });

  it('refuses upgrades past the global connection cap with HTTP 503', async () => {
    const open = (await stats()).total_connections;
    const users = await Promise.all(Array.from({ length: 6 - open }, () => t.api.user('free')));
    const sockets = await Promise.all(users.map((u) => WsClient.connect(t.app.wsUrl, { token: u.token })));
    const refused = await WsClient.open(t.app.wsUrl, { token: (await t.api.user('free')).token }).catch((error) => error);
    expect(refused).toBeInstanceOf(UpgradeRefused);
    expect(refused.status).toBe(503);
    await sockets[0]!.close();
    const admitted = await WsClient.connect(t.app.wsUrl, { token: users[0]!.token });
    await Promise.all([admitted, ...sockets.slice(1)].map((s) => s.close()));
  });
});
