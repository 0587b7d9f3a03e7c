import { Injectable } from '@nestjs/common';
import { DatabaseService } from '../database/database.service.js';
import { Prisma, type TierChange, type User } from '../generated/prisma/client.js';
import type { Role, Tier } from '../generated/prisma/enums.js';
import type { UserPosition } from './auth.dto.js';

/**
 * Prisma passes `contains` into LIKE as it is, so `%` and `_` would be wildcards (a search for `%`
 * would match everyone): escape them, and the escape character, PostgreSQL's default backslash.
 */
const escapeLike = (text: string): string => text.replace(/[\\%_]/g, '\\$&');

@Injectable()
export class UsersRepository {
  constructor(private readonly database: DatabaseService) {}

  findByEmail(email: string): Promise<User | null> {
    return this.database.prisma.user.findUnique({ where: { email } });
  }

  findById(id: string): Promise<User | null> {
    return this.database.prisma.user.findUnique({ where: { id } });
  }

  /** One query for any number of users: the tier cache's batch loader. */
  async findTiers(ids: readonly string[]): Promise<Map<string, Tier>> {
    const rows = await this.database.prisma.user.findMany({
      where: { id: { in: [...ids] } },
      select: { id: true, tier: true },
    });
    return new Map(rows.map((row) => [row.id, row.tier]));
  }

  /**
   * Users in (email, id) order after `after`, at most `take` of them; `search` is a
   * case-insensitive substring of the email, matched literally. Keyset pagination: a page costs
   * the same however deep it is, and users added meanwhile never shift later pages.
   */
  findPage(options: { search?: string; after?: UserPosition; take: number }): Promise<User[]> {
    const { search, after, take } = options;
    const conditions: Prisma.UserWhereInput[] = [];
    if (search) conditions.push({ email: { contains: escapeLike(search), mode: 'insensitive' } });
    if (after) conditions.push({ OR: [{ email: { gt: after.email } }, { email: after.email, id: { gt: after.id } }] });
    return this.database.prisma.user.findMany({
      where: { AND: conditions },
      orderBy: [{ email: 'asc' }, { id: 'asc' }],
      take,
    });
  }

  count(): Promise<number> {
    return this.database.prisma.user.count();
  }

  /** Returns `null` when the email is taken. */
  async create(data: { email: string; passwordHash: string; role: Role; tier: Tier }): Promise<User | null> {
    try {
      return await this.database.prisma.user.create({ data });
    } catch (error) {
      if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') return null;
      throw error;
    }
  }

  /**
   * Returns `null` when there is no such user. A tier change is written to the tier history in the
   * same transaction, with the tier it replaced and who made it, and where it falls among signals:
   * the signal counter is locked until the commit, so each signal is stored either before the change
   * (seq at or below `atSeq`) or after it commits. The user's row is locked without blocking signal
   * writes that reference it (a provider's own tier may change too), and before the counter: signal
   * writes take the counter, then only a key-share lock on the user, so the two cannot deadlock.
   */
  async update(id: string, data: { tier?: Tier; role?: Role }, changedBy?: string): Promise<User | null> {
    return this.database.prisma.$transaction(async (tx) => {
      const [before] = await tx.$queryRaw<{ tier: Tier }[]>`SELECT tier::text AS tier FROM users WHERE id = ${id}::uuid FOR NO KEY UPDATE`;
      if (!before) return null;
      const user = await tx.user.update({ where: { id }, data });
      if (data.tier !== undefined && data.tier !== before.tier) {
        // Last, so that signal writes wait only for this insert and the commit.
        const [counter] = await tx.$queryRaw<{ value: bigint }[]>`SELECT value FROM sequence_counters WHERE name = 'signal' FOR UPDATE`;
        await tx.tierChange.create({
          data: { userId: id, changedBy: changedBy ?? null, fromTier: before.tier, toTier: data.tier, atSeq: counter?.value ?? 0n },
        });
      }
      return user;
    });
  }

  /** The user's tier changes, oldest first. */
  tierHistory(userId: string): Promise<TierChange[]> {
    return this.database.prisma.tierChange.findMany({ where: { userId }, orderBy: { id: 'asc' } });
  }
}
