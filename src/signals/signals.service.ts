import { setImmediate } from 'node:timers/promises';
import { Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import type { Histogram } from 'prom-client';
import { MessageBus } from '../bus/bus.types.js';
import { Metrics } from '../metrics/metrics.js';
import { AppError } from '../common/app-error.js';
import { isDatabaseUnavailable } from '../database/database-errors.js';
import type { Tier } from '../generated/prisma/enums.js';
import { visibleMinTiers } from './entitlement.js';
import { eventOf } from './signal-fields.js';
import type { SignalFilter } from './signal-filter.js';
import type { SyncSignalInput } from './signal.dto.js';
import type { SignalEvent, SyncOutcome } from './signal.types.js';
import { SignalsRepository, type WriteOutcome } from './signals.repository.js';
import type { ExpiryRequest, WriteRequest } from './sync-plan.js';

interface PendingWrite {
  request: WriteRequest;
  resolve(outcome: WriteOutcome): void;
  reject(error: unknown): void;
}

/** Upper bound of signals one group commit takes. */
const GROUP_COMMIT_MAX = 500;
const GROUP_SIZE_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, GROUP_COMMIT_MAX];

/**
 * Stores signals, then publishes them. Sync calls queue up and one loop writes them in group
 * commits: while one group is written, the next calls gather and go together in the next one. After
 * each commit the loop answers the group's callers, then publishes the group in seq order: a socket
 * never sees an uncommitted signal, this instance publishes in seq order, and a provider's answer
 * does not wait for the delivery to this instance's sockets (the fan-out to thousands of sockets
 * takes far longer than the commit).
 */
@Injectable()
export class SignalsService implements BeforeApplicationShutdown {
  private readonly logger = new Logger(SignalsService.name);
  private readonly queue: PendingWrite[] = [];
  /** The running write loop, if any. */
  private writing?: Promise<void>;
  /** Settles once the last committed group has been published: groups publish in commit order. */
  private published: Promise<void> = Promise.resolve();

  private readonly groupSize: Histogram;

  constructor(
    private readonly repository: SignalsRepository,
    private readonly bus: MessageBus,
    metrics: Metrics,
  ) {
    this.groupSize = metrics.histogram(
      'signalcast_write_group_size',
      'Signals written per group commit (syncs and expiries)',
      GROUP_SIZE_BUCKETS,
    );
    metrics.total(
      'signalcast_write_conflicts_total',
      'Write groups read and planned again because another instance wrote first',
      () => this.writeConflicts,
    );
  }

  /** Sync groups read and planned again because another writer committed first. */
  get writeConflicts(): number {
    return this.repository.writeConflicts;
  }

  /** The highest seq stored, read from the database. */
  latestStoredSeq(): Promise<number> {
    return this.repository.latestSeq();
  }

  /** Stored versions with a seq strictly between the two, as broadcast: see `revisionsBetween`. */
  revisionsBetween(afterSeq: number, beforeSeq: number, limit: number): Promise<SignalEvent[]> {
    return this.repository.revisionsBetween(afterSeq, beforeSeq, limit);
  }

  /** Upserts signals of one provider, in order; each item settles on its own. */
  syncEach(providerId: string, inputs: SyncSignalInput[]): Promise<PromiseSettledResult<SyncOutcome>[]> {
    const results = this.submit(inputs.map((input) => ({ kind: 'sync', providerId, input })));
    return Promise.allSettled(results.map((result) => result.then(({ result, signal }) => ({ result, signal }))));
  }

  /**
   * Stores expiries (the sweep's), in the same queue and group commits as syncs: each takes the next
   * seq and is published like an amendment, or writes nothing (`unchanged`) when the signal changed
   * since the sweep read it. Each settles on its own.
   */
  expire(requests: Omit<ExpiryRequest, 'kind'>[]): Promise<PromiseSettledResult<WriteOutcome>[]> {
    return Promise.allSettled(this.submit(requests.map((request) => ({ kind: 'expire', ...request }))));
  }

  private submit(requests: WriteRequest[]): Promise<WriteOutcome>[] {
    const results = requests.map(
      (request) => new Promise<WriteOutcome>((resolve, reject) => this.queue.push({ request, resolve, reject })),
    );
    // Only with something to write: a drain of an empty queue clears `writing` before it returns, and
    // `writing` would then hold its settled promise, so no later call would start a loop again.
    if (this.queue.length > 0) this.writing ??= this.drain();
    return results;
  }

  /** Upserts one signal. */
  async sync(providerId: string, input: SyncSignalInput): Promise<SyncOutcome> {
    const [settled] = await this.syncEach(providerId, [input]);
    if (settled!.status === 'rejected') throw settled!.reason;
    return settled!.value;
  }

  /** Signals after a seq that this tier (and filter) may see, oldest first: their current versions. */
  list(tier: Tier, query: { afterSeq: number; throughSeq?: number; limit: number; filter?: SignalFilter }): Promise<SignalEvent[]> {
    return this.repository.list({ ...query, minTiers: visibleMinTiers(tier) });
  }

  /** How many signals `list` would return for this tier and filter, counting up to `cap`. */
  count(tier: Tier, query: { afterSeq: number; throughSeq?: number; filter?: SignalFilter }, cap: number): Promise<number> {
    return this.repository.count({ ...query, minTiers: visibleMinTiers(tier) }, cap);
  }

  /** Shutdown: the syncs already accepted are stored and published before the database closes. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.writing;
  }

  /**
   * Writes until the queue is empty, one group at a time: whatever queued while a group was being
   * written goes in the next. `writing` is cleared in the same synchronous step that sees the queue
   * empty, so a sync queued at any moment is either taken by this loop or starts a new one.
   */
  private async drain(): Promise<void> {
    while (this.queue.length > 0) await this.write(this.queue.splice(0, GROUP_COMMIT_MAX));
    this.writing = undefined;
  }

  /** Commits one group, or item by item when it fails. */
  private async write(group: PendingWrite[]): Promise<void> {
    this.groupSize.observe(group.length);
    let outcomes: WriteOutcome[];
    try {
      outcomes = await this.repository.writeGroup(group.map((pending) => pending.request));
    } catch (error) {
      return this.fail(group, error);
    }
    await this.answerAndPublish(group, outcomes);
  }

  private async fail(group: PendingWrite[], error: unknown): Promise<void> {
    if (isDatabaseUnavailable(error)) {
      const unavailable = new AppError('database_unavailable', 'The database is unavailable; the signal was not stored. Retry later.');
      for (const pending of group) pending.reject(unavailable);
      return;
    }
    if (group.length > 1) {
      // One bad item must not fail the others: write them one by one.
      for (const pending of group) await this.write([pending]);
      return;
    }
    this.logger.error(`Signal write failed: ${(error as Error).message}`);
    group[0]!.reject(new AppError('internal_error', 'The signal could not be stored'));
  }

  /**
   * Answers a committed group's callers, then, one event-loop turn later (the answers go out
   * first), publishes it, after the group before it.
   */
  private answerAndPublish(group: PendingWrite[], outcomes: WriteOutcome[]): Promise<void> {
    const committedAt = Date.now();
    group.forEach((pending, i) => pending.resolve(outcomes[i]!));
    this.published = this.published.then(() => setImmediate()).then(() => this.publish(outcomes, committedAt));
    return this.published;
  }

  /** Publishes a group's stored signals; a failed publish is logged (the fan-out's catch-up covers it). */
  private async publish(outcomes: WriteOutcome[], committedAt: number): Promise<void> {
    // Published back to back (each call hands its event on synchronously, in call order), so this
    // instance's fan-out sees the whole group queued and can coalesce each socket's frames.
    const publishing = outcomes
      .filter(({ result }) => result !== 'unchanged')
      .map(({ signal, minTier }) => {
        const event: SignalEvent = { ...eventOf(signal, minTier), committedAt };
        return this.bus.publishSignal(event).catch((error: Error) => {
          this.logger.error(`Publishing seq ${event.seq} failed: ${error.message}`);
        });
      });
    await Promise.all(publishing);
  }
}
