import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { DatabaseService } from '../database/database.service.js';
import { Prisma, type Signal } from '../generated/prisma/client.js';
import type { Tier } from '../generated/prisma/enums.js';
import type { SignalFilter } from './signal-filter.js';
import type { SignalEvent, SignalView, SyncResult } from './signal.types.js';
import { planWrites, signalKey, type SignalContent, type WriteRequest } from './sync-plan.js';

export interface WriteOutcome {
  result: SyncResult;
  /** The signal as stored after this step (for `unchanged`, as it already was). */
  signal: SignalView;
  /** The lowest tier allowed to see it. */
  minTier: Tier;
}

/** A stored signal's current state, as the writer needs it. */
interface CurrentSignal {
  id: string;
  version: number;
  hashes: ReadonlySet<string>;
  signal: SignalView;
  minTier: Tier;
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

/** The wire form of a version being written: the same as `toSignalView` of the row it stores. */
export function viewOf(
  step: { content: SignalContent; seq: bigint; version: number },
  { id, providerId, externalId, receivedAt }: { id: string; providerId: string; externalId: string; receivedAt: Date },
): SignalView {
  const { content } = step;
  return {
    id,
    seq: Number(step.seq),
    provider: providerId,
    external_id: externalId,
    symbol: content.symbol,
    market: content.market,
    side: content.side,
    entry: content.entry,
    stop_loss: content.stopLoss,
    take_profits: content.takeProfits,
    confidence: content.confidence,
    timeframe: content.timeframe,
    note: content.note,
    premium: content.minTier !== 'free',
    status: content.status,
    version: step.version,
    issued_at: content.issuedAt.toISOString(),
    received_at: receivedAt.toISOString(),
    expires_at: content.expiresAt?.toISOString() ?? null,
  };
}

export interface SignalQuery {
  afterSeq: number;
  /** Inclusive upper bound, if any. */
  throughSeq?: number;
  minTiers: Tier[];
  filter?: SignalFilter;
}

function whereOf({ afterSeq, throughSeq, minTiers, filter }: SignalQuery): Prisma.SignalWhereInput {
  return {
    seq: { gt: BigInt(afterSeq), ...(throughSeq !== undefined && { lte: BigInt(throughSeq) }) },
    minTier: { in: filter?.premium === undefined ? minTiers : minTiers.filter((tier) => (tier !== 'free') === filter.premium) },
    ...(filter?.symbols && { symbol: { in: [...filter.symbols] } }),
    ...(filter?.markets && { market: { in: [...filter.markets] } }),
    ...(filter?.providers && { providerId: { in: [...filter.providers] } }),
    ...(filter?.sides && { side: { in: [...filter.sides] } }),
    ...(filter?.minConfidence !== undefined && { confidence: { gte: filter.minConfidence } }),
  };
}

/** The client or an open transaction: the writer's statements run on either. */
type Queryable = Pick<Prisma.TransactionClient, '$queryRaw'>;

/** What a group writes, decided in memory from the state read. */
interface GroupPlan {
  outcomes: WriteOutcome[];
  /** Rows of `signals`: a key written twice in one group stores its last version. */
  signals: Record<string, unknown>[];
  /** Rows of `signal_revisions`: every version gets one. */
  revisions: Record<string, unknown>[];
  /** The counter's value once written. */
  lastSeq: bigint;
}

function planGroup(requests: readonly WriteRequest[], stored: ReadonlyMap<string, CurrentSignal>, counter: bigint): GroupPlan {
  /** What an `unchanged` step answers and an update builds on: the latest version so far. */
  const latest = new Map<string, Pick<CurrentSignal, 'id' | 'signal' | 'minTier'>>(stored);
  const outcomes: WriteOutcome[] = [];
  const signals = new Map<string, Record<string, unknown>>();
  const revisions: Record<string, unknown>[] = [];
  const receivedAt = new Date();
  let lastSeq = counter;
  for (const step of planWrites(requests, stored, counter)) {
    const { providerId, input } = step.request;
    const key = signalKey(providerId, input.external_id);
    if (step.kind === 'unchanged') {
      outcomes.push({ result: 'unchanged', ...latest.get(key)! });
      continue;
    }
    const { content } = step;
    const id = latest.get(key)?.id ?? randomUUID();
    const version = step.kind === 'update' ? step.version : 1;
    const signal = viewOf({ ...step, version }, { id, providerId, externalId: input.external_id, receivedAt });
    latest.set(key, { id, signal, minTier: content.minTier });
    outcomes.push({ result: step.kind === 'create' ? 'created' : 'updated', signal, minTier: content.minTier });
    signals.set(key, { ...signal, provider_id: providerId, min_tier: content.minTier });
    revisions.push({
      signal_id: id,
      version,
      seq: signal.seq,
      content_hash: step.hash,
      min_tier: content.minTier,
      payload: signal,
      received_at: signal.received_at,
    });
    lastSeq = step.seq;
  }
  return { outcomes, signals: [...signals.values()], revisions, lastSeq };
}

@Injectable()
export class SignalsRepository {
  constructor(private readonly database: DatabaseService) {}

  /** Groups that had to be read and planned again because another writer committed first. */
  writeConflicts = 0;

  /**
   * Upserts a group in two statements, with no transaction held open in between:
   * 1. read the counter and the current state of the group's signals, in one snapshot;
   * 2. write everything the plan decided (ids, seq, versions, the broadcast payload) in one
   *    statement, which first moves the counter on, but only if it still holds the value read.
   *
   * Every writer moves the counter, so a counter still at the value read means nothing was written
   * since the read, and the plan holds. Otherwise another writer (another instance) committed in
   * between: the statement writes nothing, and the group is written again the way that cannot lose,
   * in a transaction that takes the counter's row lock before it reads (five round trips: BEGIN,
   * lock, read, write, COMMIT). The counter row is updated first in the write, so concurrent writers
   * queue behind its row lock: seq values are gapless and become visible in order.
   */
  async writeGroup(requests: readonly WriteRequest[]): Promise<WriteOutcome[]> {
    const written = await this.planAndWrite(this.database.prisma, requests);
    if (written) return written;
    this.writeConflicts++;
    return this.database.prisma.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT value FROM sequence_counters WHERE name = 'signal' FOR UPDATE`;
      const outcomes = await this.planAndWrite(tx, requests);
      if (!outcomes) throw new Error('the sequence counter moved while its row lock was held');
      return outcomes;
    });
  }

  /** Reads, plans and writes a group; undefined (nothing written) if the counter moved in between. */
  private async planAndWrite(db: Queryable, requests: readonly WriteRequest[]): Promise<WriteOutcome[] | undefined> {
    const { lastSeq, stored } = await this.currentState(db, requests);
    const plan = planGroup(requests, stored, lastSeq);
    if (plan.revisions.length === 0 || (await this.writeIfCounterIs(db, lastSeq, plan))) return plan.outcomes;
    return undefined;
  }

  /** Writes a plan if the counter still holds `expected`; false (nothing written) otherwise. */
  private async writeIfCounterIs(db: Queryable, expected: bigint, { signals, revisions, lastSeq }: GroupPlan): Promise<boolean> {
    const [written] = await db.$queryRaw<{ claimed: number }[]>`
      WITH claimed AS (
        UPDATE sequence_counters SET value = ${lastSeq} WHERE name = 'signal' AND value = ${expected} RETURNING value
      ), upserted AS (
        INSERT INTO signals (id, seq, provider_id, external_id, symbol, market, side, entry, stop_loss, take_profits,
                             confidence, timeframe, note, min_tier, status, version, issued_at, received_at, expires_at, updated_at)
        SELECT id, seq, provider_id, external_id, symbol, market, side, entry, stop_loss, take_profits,
               confidence, timeframe, note, min_tier, status, version, issued_at, received_at, expires_at, received_at
        FROM jsonb_to_recordset(${JSON.stringify(signals)}::jsonb) AS s(
          id uuid, seq bigint, provider_id uuid, external_id text, symbol text, market text, side "SignalSide",
          entry numeric, stop_loss numeric, take_profits numeric[], confidence int, timeframe text, note text,
          min_tier "Tier", status "SignalStatus", version int, issued_at timestamptz, received_at timestamptz,
          expires_at timestamptz)
        WHERE EXISTS (SELECT FROM claimed)
        ON CONFLICT (id) DO UPDATE SET
          seq = excluded.seq, symbol = excluded.symbol, market = excluded.market, side = excluded.side,
          entry = excluded.entry, stop_loss = excluded.stop_loss, take_profits = excluded.take_profits,
          confidence = excluded.confidence, timeframe = excluded.timeframe, note = excluded.note,
          min_tier = excluded.min_tier, status = excluded.status, version = excluded.version,
          issued_at = excluded.issued_at, received_at = excluded.received_at, expires_at = excluded.expires_at,
          updated_at = excluded.updated_at
      ), inserted_revisions AS (
        INSERT INTO signal_revisions (signal_id, version, seq, content_hash, min_tier, payload, received_at)
        SELECT signal_id, version, seq, content_hash, min_tier, payload, received_at
        FROM jsonb_to_recordset(${JSON.stringify(revisions)}::jsonb) AS r(
          signal_id uuid, version int, seq bigint, content_hash text, min_tier "Tier", payload jsonb, received_at timestamptz)
        WHERE EXISTS (SELECT FROM claimed)
      )
      SELECT count(*)::int AS claimed FROM claimed`;
    return written!.claimed === 1;
  }

  /**
   * The counter and the stored state of the group's signals (by `signalKey`, the current payload
   * from its revision), in one statement and so one snapshot. Each key is looked up through the
   * unique index, whatever the group size: the LATERAL subqueries with `LIMIT 1` (a no-op, the keys
   * are unique) cannot be flattened into a hash join. Without that, the planner (without
   * statistics) joined 500 keys by scanning all of `signals` (measured: 10-16 ms at 50k signals,
   * growing with the table, against ~1 ms by the index).
   */
  private async currentState(
    db: Queryable,
    requests: readonly WriteRequest[],
  ): Promise<{ lastSeq: bigint; stored: Map<string, CurrentSignal> }> {
    const rows = await db.$queryRaw<
      ({ last_seq: bigint } & (
        | { id: string; provider_id: string; external_id: string; version: number; min_tier: Tier; payload: SignalView; hashes: string[] }
        | { id: null }
      ))[]
    >`
      SELECT c.value AS last_seq, cur.*
      FROM sequence_counters c
      LEFT JOIN (
        SELECT s.id, s.provider_id, s.external_id, s.version, r.min_tier, r.payload,
               ARRAY(SELECT h.content_hash FROM signal_revisions h WHERE h.signal_id = s.id) AS hashes
        FROM unnest(${requests.map((r) => r.providerId)}::uuid[], ${requests.map((r) => r.input.external_id)}::text[])
          AS k(provider_id, external_id)
        CROSS JOIN LATERAL (
          SELECT id, provider_id, external_id, version FROM signals
          WHERE provider_id = k.provider_id AND external_id = k.external_id LIMIT 1) s
        CROSS JOIN LATERAL (
          SELECT min_tier, payload FROM signal_revisions WHERE signal_id = s.id AND version = s.version LIMIT 1) r
      ) cur ON true
      WHERE c.name = 'signal'`;
    const stored = new Map<string, CurrentSignal>();
    for (const row of rows) {
      if (row.id === null) continue;
      stored.set(signalKey(row.provider_id, row.external_id), {
        id: row.id,
        version: row.version,
        hashes: new Set(row.hashes),
        signal: row.payload,
        minTier: row.min_tier,
      });
    }
    return { lastSeq: rows[0]!.last_seq, stored };
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
