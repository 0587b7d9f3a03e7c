import { describe, expect, it } from 'vitest';
import type { AppConfig } from '../config/app-config.js';
import { Metrics } from '../metrics/metrics.js';
import { strictMock } from '../testing/strict-mock.js';
import type { Coverage } from './coverage.js';
import { DeliveryReceipts } from './delivery-receipts.service.js';
import type { ReceiptsRepository } from './receipts.repository.js';

function setup(save: (batch: ReadonlyMap<string, Coverage>) => Promise<void>) {
  const saved: Map<string, Coverage>[] = [];
  const repository = strictMock<ReceiptsRepository>({
    saveCoverage: async (batch: ReadonlyMap<string, Coverage>) => {
      await save(batch);
      saved.push(new Map(batch));
    },
  });
  const config = strictMock<AppConfig>({
    get: ((key: string) => ({ DELIVERY_SLO_MS: 500, RECEIPT_FLUSH_INTERVAL_MS: 60_000 })[key]) as AppConfig['get'],
  });
  return { receipts: new DeliveryReceipts(repository, config, new Metrics()), saved };
}

const receipt = (userId: string, seq: number) => ({ userId, tier: 'pro' as const, from: 0, seq, at: seq });

describe('DeliveryReceipts', () => {
  it('stores at shutdown what arrived while a flush was running, not only what that flush took', async () => {
    let release!: () => void;
    const slow = new Promise<void>((resolve) => (release = resolve));
    const { receipts, saved } = setup(() => (saved.length === 0 ? slow : Promise.resolve()));
    receipts.received(receipt('a', 1));
    const running = receipts.flush();
    receipts.received(receipt('b', 2));
    const shutdown = receipts.beforeApplicationShutdown();
    release();
    await Promise.all([running, shutdown]);
    expect(saved.map((batch) => [...batch.keys()])).toEqual([['a'], ['b']]);
  });

  it('keeps a batch the database refused and stores it, joined with newer receipts, at the next flush', async () => {
    let failing = true;
    const { receipts, saved } = setup(async () => {
      if (failing) throw new Error('database down');
    });
    receipts.received(receipt('a', 1));
    await receipts.flush();
    receipts.received(receipt('a', 3));
    failing = false;
    await receipts.flush();
    expect(saved).toEqual([new Map([['a', { from: 0, seq: 3, at: 3, joins: false }]])]);
  });
});
