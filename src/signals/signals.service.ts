import { Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { MessageBus, type Unsubscribe } from '../bus/bus.types.js';
import { AppError } from '../common/app-error.js';
import { isDatabaseUnavailable } from '../database/database-errors.js';
import type { Tier } from '../generated/prisma/enums.js';
import { visibleMinTiers } from './entitlement.js';
import type { ListSignalsQuery, SyncSignalInput } from './signal.dto.js';
import type { SignalEvent, SignalView, SyncOutcome } from './signal.types.js';
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
export class SignalsService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(SignalsService.name);
  private readonly queue: PendingSync[] = [];
  private writing = false;
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
      void this.drain();
    });
    return outcomes.map(({ result, row }) => ({ result, signal: toSignalView(row) }));
  }

  async list(tier: Tier, query: ListSignalsQuery): Promise<SignalView[]> {
    const rows = await this.repository.list({
      afterSeq: query.after_seq,
      symbol: query.symbol,
      minTiers: visibleMinTiers(tier),
      limit: query.limit,
    });
    return rows.map(toSignalView);
  }

  private async drain(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        const group: PendingSync[] = [this.queue.shift()!];
        let size = group[0]!.requests.length;
        while (this.queue.length > 0 && size + this.queue[0]!.requests.length <= GROUP_COMMIT_MAX) {
          const next = this.queue.shift()!;
          size += next.requests.length;
          group.push(next);
        }
        await this.writeGroup(group);
      }
    } finally {
      this.writing = false;
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
