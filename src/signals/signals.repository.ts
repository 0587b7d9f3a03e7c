import { Injectable } from '@nestjs/common';
import { DatabaseService } from '../database/database.service.js';
import { Prisma, type Signal } from '../generated/prisma/client.js';
import type { Tier } from '../generated/prisma/enums.js';
import { PREMIUM_MIN_TIER } from './entitlement.js';
import type { SyncSignalInput } from './signal.dto.js';
import type { SignalView, SyncResult } from './signal.types.js';

export interface WriteRequest {
  providerId: string;
  input: SyncSignalInput;
}

export interface WriteOutcome {
  result: SyncResult;
  row: Signal;
}

type Content = Pick<
  Signal,
  'symbol' | 'market' | 'side' | 'confidence' | 'timeframe' | 'note' | 'minTier' | 'status' | 'issuedAt' | 'expiresAt'
> & { entry: string; stopLoss: string | null; takeProfits: string[] };

function contentOf(input: SyncSignalInput): Content {
  return {
    symbol: input.symbol,
    market: input.market,
    side: input.side,
    entry: input.entry,
    stopLoss: input.stop_loss,
    takeProfits: input.take_profits,
    confidence: input.confidence,
    timeframe: input.timeframe,
    note: input.note,
    minTier: input.premium ? PREMIUM_MIN_TIER : 'free',
    status: input.status,
    issuedAt: input.issued_at,
    expiresAt: input.expires_at,
  };
}

function sameContent(row: Signal, next: Content): boolean {
  return (
    row.symbol === next.symbol &&
    row.market === next.market &&
    row.side === next.side &&
    row.entry.toFixed() === next.entry &&
    (row.stopLoss?.toFixed() ?? null) === next.stopLoss &&
    row.takeProfits.map((price) => price.toFixed()).join(',') === next.takeProfits.join(',') &&
    row.confidence === next.confidence &&
    row.timeframe === next.timeframe &&
    row.note === next.note &&
    row.minTier === next.minTier &&
    row.status === next.status &&
    row.issuedAt.getTime() === next.issuedAt.getTime() &&
    (row.expiresAt?.getTime() ?? null) === (next.expiresAt?.getTime() ?? null)
  );
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

const keyOf = (providerId: string, externalId: string) => `${providerId}\u0000${externalId}`;

@Injectable()
export class SignalsRepository {
  constructor(private readonly database: DatabaseService) {}

  /**
   * Upserts a batch in one transaction. The counter row is locked first, so concurrent writers
   * (other instances) queue behind it: seq values are gapless and become visible in order.
   * An identical re-send takes no seq and writes nothing.
   */
  writeBatch(requests: readonly WriteRequest[]): Promise<WriteOutcome[]> {
    return this.database.prisma.$transaction(async (tx) => {
      const [counter] = await tx.$queryRaw<{ value: bigint }[]>`
        SELECT value FROM sequence_counters WHERE name = 'signal' FOR UPDATE`;
      const current = new Map<string, Signal>();
      const byProvider = new Map<string, string[]>();
      for (const { providerId, input } of requests) {
        byProvider.set(providerId, [...(byProvider.get(providerId) ?? []), input.external_id]);
      }
      const existing = await tx.signal.findMany({
        where: { OR: [...byProvider].map(([providerId, ids]) => ({ providerId, externalId: { in: ids } })) },
      });
      for (const row of existing) current.set(keyOf(row.providerId, row.externalId), row);

      let seq = counter!.value;
      const outcomes: WriteOutcome[] = [];
      const revisions: Prisma.SignalRevisionCreateManyInput[] = [];
      for (const { providerId, input } of requests) {
        const key = keyOf(providerId, input.external_id);
        const previous = current.get(key);
        const content = contentOf(input);
        if (previous && sameContent(previous, content)) {
          outcomes.push({ result: 'unchanged', row: previous });
          continue;
        }
        seq += 1n;
        const now = new Date();
        const row = previous
          ? await tx.signal.update({
              where: { id: previous.id },
              data: { ...content, seq, version: previous.version + 1, receivedAt: now, updatedAt: now },
            })
          : await tx.signal.create({
              data: { ...content, seq, providerId, externalId: input.external_id, receivedAt: now, updatedAt: now },
            });
        current.set(key, row);
        revisions.push({
          signalId: row.id,
          version: row.version,
          seq,
          payload: toSignalView(row) as unknown as Prisma.InputJsonValue,
          receivedAt: now,
        });
        outcomes.push({ result: previous ? 'updated' : 'created', row });
      }
      if (revisions.length > 0) {
        await tx.signalRevision.createMany({ data: revisions });
        await tx.sequenceCounter.update({ where: { name: 'signal' }, data: { value: seq } });
      }
      return outcomes;
    });
  }

  /** Signals after a seq, oldest first, limited to the tiers a reader may see. */
  list(query: { afterSeq: number; symbol?: string; minTiers: Tier[]; limit: number }): Promise<Signal[]> {
    return this.database.prisma.signal.findMany({
      where: {
        seq: { gt: BigInt(query.afterSeq) },
        minTier: { in: query.minTiers },
        ...(query.symbol ? { symbol: query.symbol } : {}),
      },
      orderBy: { seq: 'asc' },
      take: query.limit,
    });
  }

  async latestSeq(): Promise<number> {
    const counter = await this.database.prisma.sequenceCounter.findUnique({ where: { name: 'signal' } });
    return Number(counter?.value ?? 0n);
  }
}
