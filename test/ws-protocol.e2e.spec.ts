import { describe, expect, it } from 'vitest';
import { flush, signalBody, UpgradeRefused, WsClient } from './support/clients.js';
import { useTestApp } from './support/test-app.js';

describe('WebSocket protocol and stats', () => {
  const t = useTestApp({
    WS_MAX_SOCKETS_PER_USER: '2',
    WS_MAX_PAYLOAD_BYTES: '1024',
    CORS_ORIGINS: 'https://app.example.com',
  });

  it('answers ping with pong, echoing the request id', async () => {
    const user = await t.api.user('free');
    const client = await WsClient.connect(t.app.wsUrl, { token: user.token });
    client.send({ type: 'ping', id: 'abc' });
    expect(await client.next((m) => m.type === 'pong')).toEqual({ type: 'pong', id: 'abc' });
    await client.close();
  });

  it('answers malformed frames and unknown types with an error and keeps the socket working', async () => {
    const user = await t.api.user('pro');
    const client = await WsClient.connect(t.app.wsUrl, { token: user.token });
    client.send('{not json');
    client.send('[1,2]');
    client.send({ no_type: true });
    client.send({ type: 'launch_rockets', id: 7 });
    client.socket.send(Buffer.from([1, 2, 3]), { binary: true });
    await client.next((m) => m.type === 'error' && m.code === 'binary_not_supported');
    const errors = client.messages.filter((m) => m.type === 'error');
    expect(errors.map((e) => e.code)).toEqual([
      'malformed_message',
      'malformed_message',
      'malformed_message',
      'unknown_type',
      'binary_not_supported',
    ]);
    expect(errors[3]).toMatchObject({ id: 7 });

    const synced = await t.api.sync(t.provider.apiKey, signalBody({ premium: true }));
    const delivered = await client.next((m) => m.type === 'signal' && m.seq === synced.body.seq);
    expect(delivered.premium).toBe(true);
    await client.close();
  });

  it('closes a socket that sends a frame over the size limit with 1009, and others are unaffected', async () => {
    const user = await t.api.user('free');
    const big = await WsClient.connect(t.app.wsUrl, { token: user.token });
    const other = await WsClient.connect(t.app.wsUrl, { token: user.token });
    big.send({ type: 'ping', padding: 'x'.repeat(2048) });
    expect((await big.waitClose()).code).toBe(1009);
    await flush(t.api, t.provider.apiKey, [other]);
    await other.close();
  });

  it('caps sockets per user with close code 4529', async () => {
    const user = await t.api.user('free');
    const first = await WsClient.connect(t.app.wsUrl, { token: user.token });
    const second = await WsClient.connect(t.app.wsUrl, { token: user.token });
    const third = await WsClient.open(t.app.wsUrl, { token: user.token });
    expect(await third.waitClose()).toEqual({ code: 4529, reason: 'too many connections for this user' });
    await first.close();
    const again = await WsClient.connect(t.app.wsUrl, { token: user.token });
    await Promise.all([second.close(), again.close()]);
  });

  it('checks a browser Origin against CORS_ORIGINS on the upgrade', async () => {
    const user = await t.api.user('free');
    const refused = await WsClient.open(t.app.wsUrl, { token: user.token, headers: { origin: 'https://evil.example' } }).catch(
      (error) => error,
    );
    expect(refused).toBeInstanceOf(UpgradeRefused);
    expect(refused.status).toBe(403);
    const allowed = await WsClient.connect(t.app.wsUrl, { token: user.token, headers: { origin: 'https://app.example.com' } });
    await allowed.close();
    const cors = await fetch(`${t.app.baseUrl}/health`, { headers: { origin: 'https://app.example.com' } });
    expect(cors.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
  });

  it('reports live connection statistics to admins as sockets come and go', async () => {
    const admin = await t.api.admin();
    const stats = async () => (await t.api.request('GET', '/ws/stats', { token: admin })).body;
    const baseline = await stats();
    expect(Object.keys(baseline.users_by_tier)).toEqual(['free', 'basic', 'pro', 'elite']);

    const elite = await t.api.user('elite');
    const basic = await t.api.user('basic');
    const sockets = [
      await WsClient.connect(t.app.wsUrl, { token: elite.token }),
      await WsClient.connect(t.app.wsUrl, { token: elite.token }),
      await WsClient.connect(t.app.wsUrl, { token: basic.token }),
    ];
    const during = await stats();
    expect(during.total_connections).toBe(baseline.total_connections + 3);
    expect(during.active_users).toBe(baseline.active_users + 2);
    expect(during.users_by_tier.elite).toBe(baseline.users_by_tier.elite + 1);
    expect(during.users_by_tier.basic).toBe(baseline.users_by_tier.basic + 1);

    const regular = await t.api.sync(t.provider.apiKey, signalBody());
    await Promise.all(sockets.map((s) => s.next((m) => m.seq === regular.body.seq)));
    const afterSignal = await stats();
    expect(afterSignal.signals_broadcast).toBe(during.signals_broadcast + 1);
    expect(afterSignal.messages_delivered).toBe(during.messages_delivered + during.total_connections);
    expect(afterSignal.uptime_seconds).toBeGreaterThanOrEqual(0);
    const [self] = afterSignal.instances;
    expect(self.rss_bytes).toBeGreaterThan(self.heap_used_bytes);
    expect(self.heap_used_bytes).toBeGreaterThan(1_000_000);
    expect(self.event_loop_delay_ms).toEqual({ p50: expect.any(Number), p99: expect.any(Number), max: expect.any(Number) });
    expect(self.event_loop_delay_ms.max).toBeGreaterThanOrEqual(self.event_loop_delay_ms.p99);

    await sockets[0]!.close();
    await sockets[2]!.close();
    const after = await stats();
    expect(after.total_connections).toBe(baseline.total_connections + 1);
    expect(after.active_users).toBe(baseline.active_users + 1);
    expect(after.users_by_tier.basic).toBe(baseline.users_by_tier.basic);
    await sockets[1]!.close();
  });

  it('keeps delivering to healthy sockets when another socket dies abruptly', async () => {
    const user = await t.api.user('pro');
    const dying = await WsClient.connect(t.app.wsUrl, { token: user.token });
    const healthy = await WsClient.connect(t.app.wsUrl, { token: (await t.api.user('pro')).token });
    dying.socket.terminate();
    const synced = await t.api.sync(t.provider.apiKey, signalBody({ premium: true }));
    await healthy.next((m) => m.seq === synced.body.seq);
    await healthy.close();
  });
});
