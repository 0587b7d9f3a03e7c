import { Injectable, Logger, type BeforeApplicationShutdown, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { throttled } from '../common/log-throttle.js';
import { AppConfig } from '../config/app-config.js';
import type { Tier } from '../generated/prisma/enums.js';
import { LATENCY_BUCKETS, Metrics, type PlainHistogram } from '../metrics/metrics.js';
import { extendCoverage, type Coverage } from './coverage.js';
import { LatencyWindow, type LatencyWindowCounts } from './latency-window.js';
import { ReceiptsRepository } from './receipts.repository.js';

/**
 * What delivery receipts (`{"type":"received","seq":N}`) are turned into:
 * - delivery latency per tier: a Prometheus histogram, and the last 5 minutes in fixed buckets for
 *   `/ws/stats` (each instance reports its window; the cluster's numbers add them up);
 * - per user, the range of seqs acknowledged (see `Coverage`) and when, stored in batches every
 *   `RECEIPT_FLUSH_INTERVAL_MS`, only for users whose receipt moved (never a write per receipt).
 * Receipts are per socket: nothing here calls a metric library per receipt, only plain numbers.
 */
@Injectable()
export class DeliveryReceipts implements OnModuleInit, OnModuleDestroy, BeforeApplicationShutdown {
  private readonly logger = new Logger(DeliveryReceipts.name);
  private readonly warnUnsaved = throttled(30_000, (count: number, message: string) =>
    this.logger.warn(`${count} users' receipts not stored yet (kept for the next try): ${message}`),
  );
  private readonly window: LatencyWindow;
  /** Delivery latency per tier, in seconds, kept as plain numbers and read when Prometheus scrapes. */
  private readonly latency: PlainHistogram<Tier>;
  private readonly receipts = new Map<Tier, number>();
  /** What moved since the last flush: each user's coverage. */
  private pending = new Map<string, Coverage>();
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
    this.latency = metrics.plainHistogram(
      'signalcast_delivery_latency_seconds',
      "From a signal's commit to the client's receipt of it (an upper bound: it includes the receipt's way back), by tier",
      LATENCY_BUCKETS,
      'tier',
    );
    metrics.total(
      'signalcast_delivery_receipts_total',
      'Delivery receipts accepted from clients, by tier',
      () => [...this.receipts].map(([tier, total]) => [{ tier }, total] as const),
      ['tier'],
    );
  }

  onModuleInit(): void {
    this.timer = setInterval(() => void this.flush(), this.config.get('RECEIPT_FLUSH_INTERVAL_MS'));
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  /**
   * Shutdown, after the sockets closed and before the database closes: everything pending is
   * stored (a flush already running took only what was pending when it began). What cannot be
   * stored is said once, with its count.
   */
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    for (let attempt = 0; attempt < 3 && (this.flushing || this.pending.size > 0); attempt++) {
      await this.flushing;
      await this.flush();
    }
    if (this.pending.size > 0) this.logger.error(`${this.pending.size} users' latest receipts could not be stored before shutdown`);
  }

  /**
   * A receipt from one of the user's sockets: it covers `(from, seq]`, what that socket was sent
   * from where it started. `latencyMs` when it answered the newest live signal sent there; `tier`
   * unknown when it could not be looked up (the coverage is stored all the same).
   */
  received({
    userId,
    tier,
    from,
    seq,
    at,
    latencyMs,
  }: {
    userId: string;
    tier: Tier | undefined;
    from: number;
    seq: number;
    at: number;
    latencyMs?: number;
  }): void {
    if (tier) {
      this.receipts.set(tier, (this.receipts.get(tier) ?? 0) + 1);
      if (latencyMs !== undefined) {
        this.latency.observe(tier, latencyMs / 1000);
        this.window.record(tier, latencyMs);
      }
    }
    this.pending.set(userId, extendCoverage(this.pending.get(userId), { from, seq, at, joins: false }));
  }

  /**
   * A receipt an earlier socket owed, arriving on the next one: everything up to `seq` was
   * processed, which extends the range that earlier socket's receipts built (it joins below).
   */
  owed(userId: string, seq: number, at: number): void {
    this.pending.set(userId, extendCoverage(this.pending.get(userId), { from: seq, seq, at, joins: true }));
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
      await this.repository.saveCoverage(batch);
    } catch (error) {
      for (const [userId, coverage] of batch) {
        const newer = this.pending.get(userId);
        this.pending.set(userId, newer ? extendCoverage(coverage, newer) : coverage);
      }
      this.warnUnsaved(this.pending.size, (error as Error).message);
    }
  }
}
