import { Injectable } from '@nestjs/common';
import { DatabaseService } from '../database/database.service.js';
import type { Tier } from '../generated/prisma/enums.js';

/** A user's highest acknowledged seq and when that receipt arrived. */
export interface StoredReceipt {
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
   * Stores each user's receipt if it is past the stored one (instances may write the same user in
   * any order: the highest seq stays). Users deleted meanwhile are skipped. One statement for all.
   */
  async saveHighest(receipts: ReadonlyMap<string, { seq: number; at: number }>): Promise<void> {
    if (receipts.size === 0) return;
    const users = [...receipts.keys()];
    const seqs = users.map((user) => String(receipts.get(user)!.seq));
    const times = users.map((user) => new Date(receipts.get(user)!.at).toISOString());
    await this.database.prisma.$executeRaw`
      INSERT INTO delivery_receipts (user_id, seq, received_at)
      SELECT r.user_id, r.seq, r.received_at
      FROM unnest(${users}::uuid[], ${seqs}::bigint[], ${times}::timestamptz[]) AS r (user_id, seq, received_at)
      WHERE EXISTS (SELECT 1 FROM users WHERE users.id = r.user_id)
      ON CONFLICT (user_id) DO UPDATE SET seq = EXCLUDED.seq, received_at = EXCLUDED.received_at
      WHERE delivery_receipts.seq < EXCLUDED.seq`;
  }

  async findReceipt(userId: string): Promise<StoredReceipt | null> {
    const row = await this.database.prisma.deliveryReceipt.findUnique({ where: { userId } });
    return row && { seq: Number(row.seq), receivedAt: row.receivedAt };
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
