import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { DatabaseService } from '../database/database.service.js';
import { Prisma } from '../generated/prisma/client.js';
import type { Tier } from '../generated/prisma/enums.js';
import { contentOfView, eventOf, recordOf, SIGNAL_COLUMNS, viewOf, type SignalRecord } from './signal-fields.js';
import type { SignalFilter } from './signal-filter.js';
import type { SignalEvent, SignalView, SyncResult } from './signal.types.js';
import { externalIdOf, planWrites, signalKey, type KnownSignal, type WriteRequest } from './sync-plan.js';

export interface WriteOutcome {
  result: SyncResult;
  /** The signal as stored after this step (for `unchanged`, as it already was). */
  signal: SignalView;
  /** The lowest tier allowed to see it. */
  minTier: Tier;
}

/** A stored signal's current state, as the writer needs it. */
interface CurrentSignal extends KnownSignal {
  id: string;
  signal: SignalView;
  minTier: Tier;
}

/** An active signal whose `expires_at` has passed, as the expiry sweep read it. */
export interface DueSignal {
  providerId: string;
  externalId: string;
  version: number;
  expiresAt: Date;
}

/**
 * The sweep's lower bound (see `ExpiryService`): no stored signal whose current version has a seq
 * at or below `seq` and an `expires_at` at or before `expiresAt` is active.
 */
export interface ExpiryFloor {
  expiresAt: Date;
  seq: number;
}

/** What one sweep read, in one snapshot. */
export interface DueSignals {
  /** The counter: every version up to it was visible to the read. */
  lastSeq: number;
  /** Due since the floor's time, by `expires_at` (at most the limit). */
  byExpiry: DueSignal[];
  /** Written since the floor's seq with an `expires_at` already at or before the floor's time, by seq (at most the limit). */
  byChange: DueSignal[];
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
    ...(filter?.statuses && { status: { in: [...filter.statuses] } }),
  };
}

/** The writer's column lists, derived once from the description of a signal's fields. */
const COLUMNS = {
  names: Prisma.raw(SIGNAL_COLUMNS.map(({ name }) => name).join(', ')),
  typed: Prisma.raw(SIGNAL_COLUMNS.map(({ name, sql }) => `${name} ${sql}`).join(', ')),
  updated: Prisma.raw(
    SIGNAL_COLUMNS.filter(({ fixed }) => !fixed)
      .map(({ name }) => `${name} = excluded.${name}`)
      .join(', '),
  ),
};

/** The client or an open transaction: the writer's statements run on either. */
type Queryable = Pick<Prisma.TransactionClient, '$queryRaw'>;

/** What a group writes, decided in memory from the state read. */
interface GroupPlan {
  outcomes: WriteOutcome[];
  /** Rows of `signals`: a key written twice in one group stores its last version. */
  signals: SignalRecord[];
  /** Rows of `signal_revisions`: every version gets one. */
  revisions: Record<string, unknown>[];
  /** The counter's value once written. */
  lastSeq: bigint;
}

function planGroup(requests: readonly WriteRequest[], stored: ReadonlyMap<string, CurrentSignal>, counter: bigint): GroupPlan {
  /** What an `unchanged` step answers and an update builds on: the latest version so far. */
  const latest = new Map<string, Pick<CurrentSignal, 'id' | 'signal' | 'minTier'>>(stored);
  const outcomes: WriteOutcome[] = [];
  const signals = new Map<string, SignalRecord>();
  const revisions: Record<string, unknown>[] = [];
  const receivedAt = new Date().toISOString();
  let lastSeq = counter;
  for (const step of planWrites(requests, stored, counter)) {
    const { providerId } = step.request;
    const externalId = externalIdOf(step.request);
    const key = signalKey(providerId, externalId);
    if (step.kind === 'unchanged') {
      const current = latest.get(key);
      // Only an expiry can name a signal that is not stored; the sweep read it, and signals are never deleted.
      if (!current) throw new Error(`no stored signal ${externalId} of provider ${providerId} to expire`);
      outcomes.push({ result: 'unchanged', signal: current.signal, minTier: current.minTier });
      continue;
    }
    const id = latest.get(key)?.id ?? randomUUID();
    const version = step.kind === 'update' ? step.version : 1;
    const record: SignalRecord = {
      id,
      seq: Number(step.seq),
      provider_id: providerId,
      external_id: externalId,
      ...step.content,
      version,
      received_at: receivedAt,
    };
    const signal = viewOf(record);
    const minTier = record.min_tier;
    latest.set(key, { id, signal, minTier });
    outcomes.push({ result: step.kind === 'create' ? 'created' : 'updated', signal, minTier });
    signals.set(key, record);
    revisions.push({
      signal_id: id,
      version,
      seq: record.seq,
      content_hash: step.hash,
      min_tier: minTier,
      payload: signal,
      received_at: receivedAt,
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
        INSERT INTO signals (${COLUMNS.names}, updated_at)
        SELECT ${COLUMNS.names}, received_at
        FROM jsonb_to_recordset(${JSON.stringify(signals)}::jsonb) AS s(${COLUMNS.typed})
        WHERE EXISTS (SELECT FROM claimed)
        ON CONFLICT (id) DO UPDATE SET ${COLUMNS.updated}, updated_at = excluded.updated_at
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
        FROM unnest(${requests.map((r) => r.providerId)}::uuid[], ${requests.map(externalIdOf)}::text[])
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
        content: contentOfView(row.payload, row.min_tier),
        signal: row.payload,
        minTier: row.min_tier,
      });
    }
    return { lastSeq: rows[0]!.last_seq, stored };
  }

  /** Signals after a seq, oldest first, limited to the tiers a reader may see and a filter: their current versions. */
  async list(query: SignalQuery & { limit: number }): Promise<SignalEvent[]> {
    const rows = await this.database.prisma.signal.findMany({ where: whereOf(query), orderBy: { seq: 'asc' }, take: query.limit });
    return rows.map((row) => eventOf(viewOf(recordOf(row)), row.minTier));
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
      select: { minTier: true, payload: true },
    });
    return rows.map((row) => eventOf(row.payload as unknown as SignalView, row.minTier));
  }

  /**
   * Active signals whose `expires_at` is at or before `now`, in one statement (one snapshot, with
   * the counter), by two index range scans that skip what earlier sweeps settled:
   * - by `expires_at` in (floor, now], through the `expires_at` index; without the lower bound the scan
   *   would walk every signal that ever expired (they keep their `expires_at`), at every sweep;
   * - by seq after the floor's seq, through the seq index, for versions written since then whose
   *   `expires_at` was already at or before the floor's time (a signal synced or amended with an
   *   `expires_at` in the past).
   * Each part returns at most `limit` rows.
   */
  async dueForExpiry(now: Date, floor: ExpiryFloor, limit: number): Promise<DueSignals> {
    // Instants as ISO strings cast to timestamptz: the drivers pass a Date without its offset, which
    // PostgreSQL would read in the session's time zone (hours off on a server not set to UTC).
    const [at, floorAt] = [now.toISOString(), floor.expiresAt.toISOString()];
    const rows = await this.database.prisma.$queryRaw<
      ({ last_seq: bigint } & (
        { part: 'expiry' | 'change'; provider_id: string; external_id: string; version: number; expires_at: Date } | { part: null }
      ))[]
    >`
      SELECT c.value AS last_seq, d.*
      FROM sequence_counters c
      LEFT JOIN LATERAL (
        (SELECT 'expiry' AS part, provider_id, external_id, version, expires_at FROM signals
         WHERE expires_at > ${floorAt}::timestamptz AND expires_at <= ${at}::timestamptz AND status = 'active'
         ORDER BY expires_at LIMIT ${limit})
        UNION ALL
        (SELECT 'change' AS part, provider_id, external_id, version, expires_at FROM signals
         WHERE seq > ${BigInt(floor.seq)} AND expires_at <= ${floorAt}::timestamptz AND expires_at <= ${at}::timestamptz AND status = 'active'
         ORDER BY seq LIMIT ${limit})
      ) d ON true
      WHERE c.name = 'signal'`;
    const due: DueSignals = { lastSeq: Number(rows[0]!.last_seq), byExpiry: [], byChange: [] };
    for (const row of rows) {
      if (row.part === null) continue;
      const signal = {
        providerId: row.provider_id,
        externalId: row.external_id,
        version: row.version,
        expiresAt: new Date(row.expires_at),
      };
      (row.part === 'expiry' ? due.byExpiry : due.byChange).push(signal);
    }
    return due;
  }

  async latestSeq(): Promise<number> {
    const counter = await this.database.prisma.sequenceCounter.findUnique({ where: { name: 'signal' } });
    return Number(counter?.value ?? 0n);
  }
}
