import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { flush, signalBody, WsClient } from './support/clients.js';
import { useTestApp } from './support/test-app.js';

/**
 * The rule: once a tier change is answered, no signal the new tier forbids is written to the
 * user's sockets, whatever path it takes (live, replay pages, or the backlog parked during a
 * replay). Here the replay is held back by a reader that does not read, so the downgrade lands in
 * the middle of it.
 */
describe('a tier change during a replay', () => {
  const t = useTestApp({ WS_MAX_BUFFERED_BYTES: String(256 * 1024), WS_REPLAY_PAGE_SIZE: '100' });
  const NOTE = 'x'.repeat(2000);

  async function storeBacklog(count: number): Promise<number> {
    let last = 0;
    for (let start = 0; start < count; start += 100) {
      const signals = Array.from({ length: Math.min(100, count - start) }, (_, i) =>
        signalBody({ note: NOTE, premium: (start + i) % 10 === 0, symbol: 'ETHUSDT' }),
      );
      const response = await t.api.request('POST', '/api/v1/external-signals/sync/signals', {
        apiKey: t.provider.apiKey,
        body: { signals },
      });
      expect(response.status).toBe(200);
      last = Math.max(...response.body.results.map((r: { seq: number }) => r.seq));
    }
    return last;
  }

  it('sends no premium signal after a downgrade is answered, neither from the pages nor from the backlog', async () => {
    const user = await t.api.user('pro');
    const backlogEnd = await storeBacklog(2500);

    const client = await WsClient.open(t.app.wsUrl, { token: user.token, since: 0 });
    const tcp = (client.socket as unknown as { _socket: Socket })._socket;
    tcp.pause();
    // Let the replay fill the socket's buffers and wait for it to drain.
    await new Promise((resolve) => setTimeout(resolve, 1_000));

    // Parked in the backlog while the user may still see it...
    const parked = await t.api.sync(t.provider.apiKey, signalBody({ premium: true, external_id: 'parked-premium' }));
    expect(parked.status).toBe(201);
    // ...then the downgrade is answered, and another premium signal is stored.
    expect((await t.api.setTier(user.id, 'free')).status).toBe(200);
    const after = await t.api.sync(t.provider.apiKey, signalBody({ premium: true, external_id: 'after-premium' }));
    const regular = await t.api.sync(t.provider.apiKey, signalBody({ premium: false, external_id: 'after-regular' }));
    expect(after.status).toBe(201);
    tcp.resume();

    await client.next((m) => m.type === 'replay_complete', 20_000);
    await flush(t.api, t.provider.apiKey, [client]);
    const seqs = client.seqs();
    // The replay was still running when the downgrade was answered: it had not reached its end.
    expect(seqs).toContain(backlogEnd);
    expect(seqs).not.toContain(parked.body.seq);
    expect(seqs).not.toContain(after.body.seq);
    expect(seqs).toContain(regular.body.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    await client.close();
  });
});
