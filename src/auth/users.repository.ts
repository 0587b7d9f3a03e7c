import { Injectable } from '@nestjs/common';
import { DatabaseService } from '../database/database.service.js';
import { Prisma, type User } from '../generated/prisma/client.js';
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

  /** Returns `null` when there is no such user. */
  async update(id: string, data: { tier?: Tier; role?: Role }): Promise<User | null> {
    try {
      return await this.database.prisma.user.update({ where: { id }, data });
    } catch (error) {
      if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2025') return null;
      throw error;
    }
  }
}
