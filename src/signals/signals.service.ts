import {
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { MessageBus, type Unsubscribe } from '../bus/bus.types.js';
import { AppError } from '../common/app-error.js';
import { isDatabaseUnavailable } from '../database/database-errors.js';
import type { Tier } from '../generated/prisma/enums.js';
import { visibleMinTiers } from './entitlement.js';
import type { Signal } from '../generated/prisma/client.js';
import type { SignalFilter } from './signal-filter.js';
import type { SyncSignalInput } from './signal.dto.js';
import type { SignalEvent, SyncOutcome } from './signal.types.js';
import { SignalsRepository, toSignalView, type WriteOutcome } from './signals.repository.js';
import type { WriteRequest } from './sync-plan.js';

interface PendingSync {
  requests: WriteRequest[];
  resolve(outcomes: WriteOutcome[]): void;
  reject(error: unknown): void;
}

/** Upper bound of signals one group-commit transaction takes. */
const GROUP_COMMIT_MAX = 500;

/**
 * Stores signals, then publishes them. Sync calls queue up and are written by one loop in group
 * commits: while one transaction runs, the next calls gather and go together in the next one. The
 * loop publishes each batch in seq order after its commit, before answering the callers: a socket
 * never sees an uncommitted signal, and this instance publishes in seq order.
 */
@Injectable()
export class SignalsService implements OnApplicationBootstrap, OnModuleDestroy, BeforeApplicationShutdown {
  private readonly logger = new Logger(SignalsService.name);
  private readonly queue: PendingSync[] = [];
  /** The running write loop, if any. */
  private writing?: Promise<void>;
  private latest = 0;
  private readonly unsubscribe: Unsubscribe;

  constructor(
    private readonly repository: SignalsRepository,
    private readonly bus: MessageBus,
  ) {
    this.unsubscribe = bus.onSignal((event) => {
      if (event.seq > this.latest) this.latest = event.seq;
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    this.latest = Math.max(this.latest, await this.repository.latestSeq());
  }

  onModuleDestroy(): void {
    this.unsubscribe();
  }

  /** The highest seq stored (as far as this instance knows). */
  get latestSeq(): number {
    return this.latest;
  }

  /** Upserts signals of one provider, in order; one outcome per input. */
  async sync(providerId: string, inputs: SyncSignalInput[]): Promise<SyncOutcome[]> {
    const outcomes = await new Promise<WriteOutcome[]>((resolve, reject) => {
      this.queue.push({ requests: inputs.map((input) => ({ providerId, input })), resolve, reject });
      this.writing ??= this.drain();
    });
    return outcomes.map(({ result, row }) => ({ result, signal: toSignalView(row) }));
  }

  /** Signals after a seq that this tier (and filter) may see, oldest first. */
  async list(tier: Tier, query: { afterSeq: number; limit: number; filter?: SignalFilter }): Promise<Signal[]> {
    return this.repository.list({ ...query, minTiers: visibleMinTiers(tier) });
  }

  /** How many signals `list` would return for this tier and filter, counting up to `cap`. */
  count(tier: Tier, query: { afterSeq: number; filter?: SignalFilter }, cap: number): Promise<number> {
    return this.repository.count({ ...query, minTiers: visibleMinTiers(tier) }, cap);
  }

  /** Shutdown: the syncs already accepted are stored and published before the database closes. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.writing;
  }

  /**
   * Writes until the queue is empty. `writing` is cleared in the same synchronous step that sees
   * the queue empty, so a sync queued at any moment is either seen by this loop or starts a new one.
   */
  private async drain(): Promise<void> {
    for (;;) {
      if (this.queue.length === 0) {
        this.writing = undefined;
        return;
      }
      const group: PendingSync[] = [this.queue.shift()!];
      let size = group[0]!.requests.length;
      while (this.queue.length > 0 && size + this.queue[0]!.requests.length <= GROUP_COMMIT_MAX) {
        const next = this.queue.shift()!;
        size += next.requests.length;
        group.push(next);
      }
      try {
        await this.writeGroup(group);
      } catch (error) {
        for (const pending of group) pending.reject(error);
      }
    }
  }

  private async writeGroup(group: PendingSync[]): Promise<void> {
    let outcomes: WriteOutcome[];
    try {
      outcomes = await this.repository.writeBatch(group.flatMap((pending) => pending.requests));
    } catch (error) {
      if (group.length > 1 && !isDatabaseUnavailable(error)) {
        // One caller's bad data must not fail the others: write them one by one.
        for (const pending of group) await this.writeGroup([pending]);
        return;
      }
      const failure = isDatabaseUnavailable(error)
        ? new AppError('database_unavailable', 'The database is unavailable; the signal was not stored. Retry later.')
        : error;
      if (!(failure instanceof AppError)) this.logger.error(`Signal write failed: ${(error as Error).message}`);
      for (const pending of group) pending.reject(failure);
      return;
    }
    for (const { result, row } of outcomes) {
      if (result === 'unchanged') continue;
      const event: SignalEvent = {
        type: result === 'created' ? 'signal' : 'signal_update',
        seq: Number(row.seq),
        minTier: row.minTier,
        signal: toSignalView(row),
      };
      await this.bus.publishSignal(event).catch((error: Error) => {
        this.logger.error(`Publishing seq ${event.seq} failed: ${error.message}`);
      });
    }
    let offset = 0;
    for (const pending of group) {
      pending.resolve(outcomes.slice(offset, offset + pending.requests.length));
      offset += pending.requests.length;
    }
  }
}
