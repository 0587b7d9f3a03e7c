import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from './support/processes.js';
import { RecordingClient, StoredSignals } from './support/sdk.js';
import { signToken, useTestApp } from './support/test-app.js';

/**
 * Delivery receipts end to end with the SDK as users run it: it acknowledges what its handlers
 * processed, the service measures the delivery latency per tier and keeps each user's
 * acknowledged position, and the dispute endpoint answers from it.
 */
const ctx = useTestApp({ RECEIPT_FLUSH_INTERVAL_MS: '100' });

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function sdkFor(tier: string) {
  const user = await ctx.api.user(tier);
  const sdk = new RecordingClient({ url: ctx.app.baseUrl, getToken: () => signToken(user.id, 'subscriber', 3600) });
  cleanups.push(() => sdk.client.close());
  await sdk.start();
  return { user, sdk };
}

const admin = async () => ctx.api.admin();
const stats = async () => (await ctx.api.request('GET', '/ws/stats', { token: await admin() })).body;
const dispute = async (userId: string, signalId: string) =>
  (await ctx.api.request('GET', `/api/v1/admin/users/${userId}/receipts?signal=${signalId}`, { token: await admin() })).body;

describe('client SDK: delivery receipts', () => {
  it('acknowledges signals, which /ws/stats shows as delivery latency per tier', async () => {
    const before = await stats();
    const pro = await sdkFor('pro');
    const basic = await sdkFor('basic');
    const signals = new StoredSignals(ctx.app.baseUrl, ctx.provider.apiKey);
    // Spaced beyond the SDK's 250 ms receipt window: each signal is acknowledged on its own.
    for (let i = 0; i < 3; i++) {
      const signal = await signals.sync();
      await pro.sdk.waitForVersion(signal.id, 1);
      await basic.sdk.waitForVersion(signal.id, 1);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    let now = before;
    await waitFor(
      async () => {
        now = await stats();
        return now.delivery_latency_ms.pro.count - before.delivery_latency_ms.pro.count >= 3;
      },
      5_000,
      'the receipts never showed in /ws/stats',
    );
    expect(now.delivery_latency_ms.pro.count - before.delivery_latency_ms.pro.count).toBe(3);
    expect(now.delivery_latency_ms.basic.count - before.delivery_latency_ms.basic.count).toBe(3);
    expect(now.delivery_latency_ms.pro.p99).toBeGreaterThanOrEqual(now.delivery_latency_ms.pro.p50);
    expect(now.slo.count - before.slo.count).toBe(6);
    expect(now.slo.within).toBeGreaterThanOrEqual(0);
    expect(now.slo.within).toBeLessThanOrEqual(1);
  });

  it("answers a dispute from the user's receipts: entitled and acknowledged before a downgrade, not entitled after", async () => {
    const { user, sdk } = await sdkFor('elite');
    const signals = new StoredSignals(ctx.app.baseUrl, ctx.provider.apiKey);
    const premium = await signals.sync({ premium: true });
    await sdk.waitForVersion(premium.id, 1);
    await waitFor(async () => (await dispute(user.id, premium.id)).acknowledged === true, 5_000, 'the receipt was never stored');
    expect(await dispute(user.id, premium.id)).toMatchObject({ tier_then: 'elite', entitled: true, acknowledged: true });

    expect((await ctx.api.setTier(user.id, 'basic')).status).toBe(200);
    const after = await signals.sync({ premium: true });
    // A free signal after it: the user receives and acknowledges it, which covers the premium one's seq too.
    const free = await signals.sync();
    await sdk.waitForVersion(free.id, 1);
    expect(sdk.seen.some((signal) => signal.id === after.id)).toBe(false);
    await waitFor(async () => (await dispute(user.id, after.id)).acknowledged === true, 5_000, 'the later receipt was never stored');
    expect(await dispute(user.id, after.id)).toMatchObject({ tier_then: 'basic', entitled: false, acknowledged: true });
    expect(await dispute(user.id, premium.id)).toMatchObject({ tier_then: 'elite', entitled: true });
  });
});
