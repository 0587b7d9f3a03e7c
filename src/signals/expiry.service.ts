import { Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { Metrics } from '../metrics/metrics.js';
import { AppError } from '../common/app-error.js';
import { throttled } from '../common/log-throttle.js';
import { AppConfig } from '../config/app-config.js';
import { isDatabaseUnavailable } from '../database/database-errors.js';
import { SignalsRepository, type DueSignals, type ExpiryFloor } from './signals.repository.js';
import { SignalsService } from './signals.service.js';

/** Before every signal: `expires_at` is later than `issued_at`, which is 1970-01-01 or later. */
export const FLOOR_START: ExpiryFloor = { expiresAt: new Date(-1), seq: 0 };

/** One line per this long while sweeps keep failing. */
const FAILURE_LOG_INTERVAL_MS = 10_000;

/**
 * Where the next sweep may start, after one that read `due` at `now` (see `dueForExpiry`). The floor
 * promises that no current version with a seq at or below its seq and an `expires_at` at or before
 * its time is active. It moves only when every expiry submitted was settled by the writer (stored,
 * or found changed since, which gave the signal a later seq):
 * - nothing cut off: to `now` and the counter read;
 * - the part by `expires_at` cut off at the limit: to just before the last `expires_at` read (every
 *   earlier one was read; ties with it may not have been), and the counter read;
 * - the part by seq cut off: not at all (what it did not read may be anywhere below the floor).
 */
export function nextFloor(floor: ExpiryFloor, now: Date, due: DueSignals, limit: number, allSettled: boolean): ExpiryFloor {
  if (!allSettled || due.byChange.length >= limit) return floor;
  if (due.byExpiry.length < limit) return { expiresAt: now, seq: due.lastSeq };
  // Later than the floor's time by at least 1 ms (the part reads after it; timestamps are in ms).
  return { expiresAt: new Date(due.byExpiry.at(-1)!.expiresAt.getTime() - 1), seq: due.lastSeq };
}

const isUnavailable = (error: unknown) =>
  error instanceof AppError ? error.code === 'database_unavailable' : isDatabaseUnavailable(error);

/**
 * Stores every active signal whose `expires_at` has passed as a new version with status `expired`,
 * through the writer (`SignalsService.expire`): it takes a seq, is published as a `signal_update`,
 * and is replayed and listed like any change. Every instance sweeps, every
 * `SIGNAL_EXPIRY_INTERVAL_MS`; each expiry is conditional on the version the sweep read, so however
 * many instances find a signal due, one version is stored, and an amendment or close that lands
 * first wins. A sweep that fails (the database is down) is logged, at most every 10 s, and the next
 * one tries again. On shutdown the sweeps stop, and the one running finishes, before the writer
 * drains and the database closes.
 */
@Injectable()
export class ExpiryService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(ExpiryService.name);
  private readonly intervalMs: number;
  private readonly limit: number;
  private floor = FLOOR_START;
  private timer?: NodeJS.Timeout;
  private sweeping?: Promise<void>;
  private stopped = false;
  /** Sweeps have been failing since (for the line that says they work again). */
  private failingSince?: number;
  /** Expired versions this instance stored. */
  expiredCount = 0;
  private readonly warnUnavailable = throttled(FAILURE_LOG_INTERVAL_MS, (what: string, message: string) =>
    this.logger.warn(`Expiry sweep: the database is unavailable (${what}: ${message}); trying again every ${this.intervalMs} ms`),
  );
  private readonly reportFailure = throttled(FAILURE_LOG_INTERVAL_MS, (what: string, message: string) =>
    this.logger.error(`Expiry sweep failed (${what}): ${message}; trying again every ${this.intervalMs} ms`),
  );

  constructor(
    private readonly repository: SignalsRepository,
    private readonly signals: SignalsService,
    config: AppConfig,
    metrics: Metrics,
  ) {
    metrics.total(
      'signalcast_signals_expired_total',
      'Signals this instance stored as expired (one per expiry across the cluster)',
      () => this.expiredCount,
    );
    this.intervalMs = config.get('SIGNAL_EXPIRY_INTERVAL_MS');
    this.limit = config.get('SIGNAL_EXPIRY_BATCH');
  }

  onApplicationBootstrap(): void {
    this.schedule(0);
  }

  /** First of the shutdown hooks: no sweep starts, and the running one (its expiries included) ends before the writer drains. */
  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.sweeping;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.sweeping = this.sweep().then((more) => {
        this.sweeping = undefined;
        this.schedule(more ? 0 : this.intervalMs);
      });
    }, delayMs);
    this.timer.unref();
  }

  /**
   * Finds what is due at `now` and submits its expiries; never throws. True when a limit cut the
   * read short, so the rest is due at once.
   */
  async sweep(now = new Date()): Promise<boolean> {
    let due: DueSignals;
    try {
      due = await this.repository.dueForExpiry(now, this.floor, this.limit);
    } catch (error) {
      this.failed('reading due signals', error);
      return false;
    }
    const requests = [...due.byExpiry, ...due.byChange].map(({ providerId, externalId, version }) => ({ providerId, externalId, version }));
    const settled = requests.length > 0 ? await this.signals.expire(requests) : [];
    const rejected = settled.find((outcome) => outcome.status === 'rejected');
    this.expiredCount += settled.filter((outcome) => outcome.status === 'fulfilled' && outcome.value.result === 'updated').length;
    this.floor = nextFloor(this.floor, now, due, this.limit, !rejected);
    if (rejected) {
      this.failed('storing expiries', rejected.reason);
      return false;
    }
    if (this.failingSince !== undefined) {
      this.logger.log(`Expiry sweep works again (it had failed for ${Math.round((performance.now() - this.failingSince) / 1000)} s)`);
      this.failingSince = undefined;
    }
    return due.byExpiry.length >= this.limit || due.byChange.length >= this.limit;
  }

  private failed(what: string, error: unknown): void {
    this.failingSince ??= performance.now();
    const message = (error as Error | undefined)?.message ?? String(error);
    if (isUnavailable(error)) this.warnUnavailable(what, message);
    else this.reportFailure(what, message);
  }
}
