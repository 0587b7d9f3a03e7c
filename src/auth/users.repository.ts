import { Injectable } from '@nestjs/common';
import { DatabaseService } from '../database/database.service.js';
import { Prisma, type User } from '../generated/prisma/client.js';
import type { Role, Tier } from '../generated/prisma/enums.js';

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
