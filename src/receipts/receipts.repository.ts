import { Injectable } from '@nestjs/common';
import { DatabaseService } from '../database/database.service.js';
import type { Tier } from '../generated/prisma/enums.js';
import type { Coverage } from './coverage.js';

/** What a user acknowledged: the seqs in `(fromSeq, seq]`, and when the receipt for `seq` arrived. */
export interface StoredReceipt {
  fromSeq: number;
  seq: number;
  receivedAt: Date;
}

/** One stored version of a signal, as a dispute needs it. */
export interface SignalVersion {
  version: number;
  seq: number;
  minTier: Tier;
  storedAt: Date;
}

@Injectable()
export class ReceiptsRepository {
  constructor(private readonly database: DatabaseService) {}

  /**
   * Stores each user's coverage, joined with the stored one as `extendCoverage` joins them (only
   * ever moving forward: instances may write the same user in any order). Users deleted meanwhile
   * are skipped. One statement for all, rows taken in key order (two instances' batches cannot
   * deadlock).
   */
  async saveCoverage(batch: ReadonlyMap<string, Coverage>): Promise<void> {
    if (batch.size === 0) return;
    const users = [...batch.keys()].sort();
    const of = (user: string) => batch.get(user)!;
    const froms = users.map((user) => String(of(user).from));
    const seqs = users.map((user) => String(of(user).seq));
    const times = users.map((user) => new Date(of(user).at).toISOString());
    const joins = users.map((user) => of(user).joins);
    await this.database.prisma.$executeRaw`
      WITH r AS (
        SELECT * FROM unnest(${users}::uuid[], ${froms}::bigint[], ${seqs}::bigint[], ${times}::timestamptz[], ${joins}::boolean[])
          AS r (user_id, from_seq, seq, received_at, joins)
      )
      INSERT INTO delivery_receipts (user_id, from_seq, seq, received_at)
      SELECT r.user_id, r.from_seq, r.seq, r.received_at FROM r
      WHERE EXISTS (SELECT 1 FROM users WHERE users.id = r.user_id)
      ORDER BY r.user_id
      ON CONFLICT (user_id) DO UPDATE SET
        from_seq = CASE
          WHEN EXCLUDED.from_seq <= delivery_receipts.seq OR (SELECT r.joins FROM r WHERE r.user_id = EXCLUDED.user_id)
          THEN LEAST(delivery_receipts.from_seq, EXCLUDED.from_seq)
          ELSE EXCLUDED.from_seq
        END,
        seq = EXCLUDED.seq,
        received_at = EXCLUDED.received_at
      WHERE delivery_receipts.seq < EXCLUDED.seq`;
  }

  async findReceipt(userId: string): Promise<StoredReceipt | null> {
    const row = await this.database.prisma.deliveryReceipt.findUnique({ where: { userId } });
    return row && { fromSeq: Number(row.fromSeq), seq: Number(row.seq), receivedAt: row.receivedAt };
  }

  /** Every stored version of a signal, oldest first (none: no such signal). */
  async signalVersions(signalId: string): Promise<SignalVersion[]> {
    const rows = await this.database.prisma.signalRevision.findMany({
      where: { signalId },
      orderBy: { version: 'asc' },
      select: { version: true, seq: true, minTier: true, receivedAt: true },
    });
    return rows.map((row) => ({ version: row.version, seq: Number(row.seq), minTier: row.minTier, storedAt: row.receivedAt }));
  }
}
