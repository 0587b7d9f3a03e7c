import { Injectable, Logger, type BeforeApplicationShutdown, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { Counter, Histogram } from 'prom-client';
import { throttled } from '../common/log-throttle.js';
import { AppConfig } from '../config/app-config.js';
import type { Tier } from '../generated/prisma/enums.js';
import { LATENCY_BUCKETS, Metrics } from '../metrics/metrics.js';
import { LatencyWindow, type LatencyWindowCounts } from './latency-window.js';
import { ReceiptsRepository } from './receipts.repository.js';

/**
 * What delivery receipts (`{"type":"received","seq":N}`) are turned into:
 * - delivery latency per tier: a Prometheus histogram, and the last 5 minutes in fixed buckets for
 *   `/ws/stats` (each instance reports its window; the cluster's numbers add them up);
 * - per user, the highest seq acknowledged and when, stored in batches every
 *   `RECEIPT_FLUSH_INTERVAL_MS`, only for users whose receipt moved (never a write per receipt).
 */
@Injectable()
export class DeliveryReceipts implements OnModuleInit, OnModuleDestroy, BeforeApplicationShutdown {
  private readonly logger = new Logger(DeliveryReceipts.name);
  private readonly warnUnsaved = throttled(30_000, (count: number, message: string) =>
    this.logger.warn(`${count} users' receipts not stored yet (kept for the next try): ${message}`),
  );
  private readonly window: LatencyWindow;
  private readonly latency: Histogram<'tier'>;
  private readonly receipts: Counter<'tier'>;
  /** Receipts that moved since the last flush: each user's highest seq and its arrival. */
  private pending = new Map<string, { seq: number; at: number }>();
  private flushing?: Promise<void>;
  private timer?: NodeJS.Timeout;
  readonly sloMs: number;

  constructor(
    private readonly repository: ReceiptsRepository,
    private readonly config: AppConfig,
    metrics: Metrics,
  ) {
    this.sloMs = config.get('DELIVERY_SLO_MS');
    this.window = new LatencyWindow(this.sloMs);
    this.latency = metrics.histogram(
      'signalcast_delivery_latency_seconds',
      "From a signal's commit to the client's receipt of it (an upper bound: it includes the receipt's way back), by tier",
      LATENCY_BUCKETS,
      ['tier'],
    );
    this.receipts = metrics.counter('signalcast_delivery_receipts_total', 'Delivery receipts accepted from clients, by tier', ['tier']);
  }

  onModuleInit(): void {
    this.timer = setInterval(() => void this.flush(), this.config.get('RECEIPT_FLUSH_INTERVAL_MS'));
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  /** Shutdown, before the database closes: what is pending is stored. */
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  /**
   * A receipt from one of the user's sockets, arrived at `at`; `latencyMs` when it answered the
   * newest live signal sent there; `tier` unknown when it could not be looked up (only stored then).
   */
  received({
    userId,
    tier,
    seq,
    at,
    latencyMs,
  }: {
    userId: string;
    tier: Tier | undefined;
    seq: number;
    at: number;
    latencyMs?: number;
  }): void {
    if (tier) {
      this.receipts.inc({ tier });
      if (latencyMs !== undefined) {
        this.latency.observe({ tier }, latencyMs / 1000);
        this.window.record(tier, latencyMs);
      }
    }
    const known = this.pending.get(userId);
    if (!known || known.seq < seq) this.pending.set(userId, { seq, at });
  }

  /** This instance's latencies of the last 5 minutes, per tier. */
  latencyCounts(): LatencyWindowCounts {
    return this.window.counts();
  }

  /** Stores what moved since the last flush; on failure it is kept (merged with newer receipts) for the next. */
  flush(): Promise<void> {
    this.flushing ??= this.save().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async save(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    try {
      await this.repository.saveHighest(batch);
    } catch (error) {
      for (const [userId, receipt] of batch) {
        const newer = this.pending.get(userId);
        if (!newer || newer.seq < receipt.seq) this.pending.set(userId, receipt);
      }
      this.warnUnsaved(this.pending.size, (error as Error).message);
    }
  }
}
