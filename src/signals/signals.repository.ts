import { Injectable } from '@nestjs/common';
import { DatabaseService } from '../database/database.service.js';
import { Prisma, type Signal } from '../generated/prisma/client.js';
import type { Tier } from '../generated/prisma/enums.js';
import type { SignalFilter } from './signal-filter.js';
import type { SignalEvent, SignalView, SyncResult } from './signal.types.js';
import { planWrites, signalKey, type WriteRequest } from './sync-plan.js';

export interface WriteOutcome {
  result: SyncResult;
  row: Signal;
}

export function toSignalView(row: Signal): SignalView {
  return {
    id: row.id,
    seq: Number(row.seq),
    provider: row.providerId,
    external_id: row.externalId,
    symbol: row.symbol,
    market: row.market,
    side: row.side,
    entry: row.entry.toFixed(),
    stop_loss: row.stopLoss?.toFixed() ?? null,
    take_profits: row.takeProfits.map((price) => price.toFixed()),
    confidence: row.confidence,
    timeframe: row.timeframe,
    note: row.note,
    premium: row.minTier !== 'free',
    status: row.status,
    version: row.version,
    issued_at: row.issuedAt.toISOString(),
    received_at: row.receivedAt.toISOString(),
    expires_at: row.expiresAt?.toISOString() ?? null,
  };
}

export interface SignalQuery {
  afterSeq: number;
  minTiers: Tier[];
  filter?: SignalFilter;
}

function whereOf({ afterSeq, minTiers, filter }: SignalQuery): Prisma.SignalWhereInput {
  return {
    seq: { gt: BigInt(afterSeq) },
    minTier: { in: minTiers },
    ...(filter?.symbols && { symbol: { in: [...filter.symbols] } }),
    ...(filter?.markets && { market: { in: [...filter.markets] } }),
    ...(filter?.providers && { providerId: { in: [...filter.providers] } }),
    ...(filter?.sides && { side: { in: [...filter.sides] } }),
    ...(filter?.minConfidence !== undefined && { confidence: { gte: filter.minConfidence } }),
  };
}

@Injectable()
export class SignalsRepository {
  constructor(private readonly database: DatabaseService) {}

  /**
   * Upserts a batch in one transaction. The counter row is locked first, so concurrent writers
   * (other instances) queue behind it: seq values are gapless and become visible in order.
   */
  writeBatch(requests: readonly WriteRequest[]): Promise<WriteOutcome[]> {
    return this.database.prisma.$transaction(async (tx) => {
      const [counter] = await tx.$queryRaw<{ value: bigint }[]>`
        SELECT value FROM sequence_counters WHERE name = 'signal' FOR UPDATE`;
      const externalIds = new Map<string, string[]>();
      for (const { providerId, input } of requests) {
        externalIds.set(providerId, [...(externalIds.get(providerId) ?? []), input.external_id]);
      }
      const rows = new Map<string, Signal>();
      const existing = await tx.signal.findMany({
        where: { OR: [...externalIds].map(([providerId, ids]) => ({ providerId, externalId: { in: ids } })) },
      });
      for (const row of existing) rows.set(signalKey(row.providerId, row.externalId), row);
      const hashes = new Map<string, Set<string>>();
      if (existing.length > 0) {
        const revisions = await tx.signalRevision.findMany({
          where: { signalId: { in: existing.map((row) => row.id) } },
          select: { signalId: true, contentHash: true },
        });
        for (const { signalId, contentHash } of revisions) {
          hashes.set(signalId, (hashes.get(signalId) ?? new Set()).add(contentHash));
        }
      }
      const stored = new Map(
        existing.map((row) => [
          signalKey(row.providerId, row.externalId),
          { version: row.version, hashes: hashes.get(row.id) ?? new Set<string>() },
        ]),
      );

      // New signals are inserted together (one statement per run of creates); an update of a
      // signal created earlier in the same batch first flushes the inserts it depends on.
      type Slot = { result: WriteOutcome['result']; key: string; row?: Signal; seq?: bigint; hash?: string; receivedAt?: Date };
      const slots: Slot[] = [];
      const pendingCreates: { slot: Slot; data: Prisma.SignalCreateManyInput }[] = [];
      const flushCreates = async () => {
        if (pendingCreates.length === 0) return;
        const created = await tx.signal.createManyAndReturn({ data: pendingCreates.map((pending) => pending.data) });
        const byKey = new Map(created.map((row) => [signalKey(row.providerId, row.externalId), row]));
        for (const { slot } of pendingCreates) {
          slot.row = byKey.get(slot.key)!;
          rows.set(slot.key, slot.row);
        }
        pendingCreates.length = 0;
      };
      let lastSeq = counter!.value;
      for (const step of planWrites(requests, stored, lastSeq)) {
        const key = signalKey(step.request.providerId, step.request.input.external_id);
        if (step.kind === 'unchanged') {
          if (pendingCreates.some((pending) => pending.slot.key === key)) await flushCreates();
          slots.push({ result: 'unchanged', key, row: rows.get(key) });
          continue;
        }
        const receivedAt = new Date();
        const slot: Slot = { result: step.kind === 'create' ? 'created' : 'updated', key, seq: step.seq, hash: step.hash, receivedAt };
        slots.push(slot);
        lastSeq = step.seq;
        if (step.kind === 'create') {
          pendingCreates.push({
            slot,
            data: {
              ...step.content,
              seq: step.seq,
              providerId: step.request.providerId,
              externalId: step.request.input.external_id,
              receivedAt,
              updatedAt: receivedAt,
            },
          });
          continue;
        }
        if (pendingCreates.some((pending) => pending.slot.key === key)) await flushCreates();
        slot.row = await tx.signal.update({
          where: { id: rows.get(key)!.id },
          data: { ...step.content, seq: step.seq, version: step.version, receivedAt, updatedAt: receivedAt },
        });
        rows.set(key, slot.row);
      }
      await flushCreates();

      const outcomes: WriteOutcome[] = slots.map((slot) => ({ result: slot.result, row: slot.row ?? rows.get(slot.key)! }));
      const revisions: Prisma.SignalRevisionCreateManyInput[] = slots
        .filter((slot) => slot.result !== 'unchanged')
        .map((slot) => ({
          signalId: slot.row!.id,
          version: slot.row!.version,
          seq: slot.seq!,
          contentHash: slot.hash!,
          minTier: slot.row!.minTier,
          payload: toSignalView(slot.row!) as unknown as Prisma.InputJsonValue,
          receivedAt: slot.receivedAt!,
        }));
      if (revisions.length > 0) {
        await tx.signalRevision.createMany({ data: revisions });
        await tx.sequenceCounter.update({ where: { name: 'signal' }, data: { value: lastSeq } });
      }
      return outcomes;
    });
  }

  /** Signals after a seq, oldest first, limited to the tiers a reader may see and a filter. */
  list(query: SignalQuery & { limit: number }): Promise<Signal[]> {
    return this.database.prisma.signal.findMany({ where: whereOf(query), orderBy: { seq: 'asc' }, take: query.limit });
  }

  /** How many signals `list` would return, counting no further than `cap`. */
  count(query: SignalQuery, cap: number): Promise<number> {
    return this.database.prisma.signal.count({ where: whereOf(query), take: cap });
  }

  /**
   * Every version stored with a seq in (afterSeq, beforeSeq), as it was broadcast, oldest first:
   * what an instance that missed bus messages delivers to close the gap.
   */
  async revisionsBetween(afterSeq: number, beforeSeq: number, limit: number): Promise<SignalEvent[]> {
    const rows = await this.database.prisma.signalRevision.findMany({
      where: { seq: { gt: BigInt(afterSeq), lt: BigInt(beforeSeq) } },
      orderBy: { seq: 'asc' },
      take: limit,
      select: { seq: true, version: true, minTier: true, payload: true },
    });
    return rows.map((row) => ({
      type: row.version > 1 ? 'signal_update' : 'signal',
      seq: Number(row.seq),
      minTier: row.minTier,
      signal: row.payload as unknown as SignalView,
    }));
  }

  async latestSeq(): Promise<number> {
    const counter = await this.database.prisma.sequenceCounter.findUnique({ where: { name: 'signal' } });
    return Number(counter?.value ?? 0n);
  }
}
