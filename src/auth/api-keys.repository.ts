import { Injectable } from '@nestjs/common';
import { DatabaseService } from '../database/database.service.js';
import type { ApiKey, User } from '../generated/prisma/client.js';

/** What may be shown of a key after its creation: never the key, never its hash. */
export type ApiKeySummary = Pick<ApiKey, 'id' | 'prefix' | 'createdAt' | 'revokedAt'>;

@Injectable()
export class ApiKeysRepository {
  constructor(private readonly database: DatabaseService) {}

  create(data: { userId: string; keyHash: string; prefix: string }): Promise<ApiKey> {
    return this.database.prisma.apiKey.create({ data });
  }

  /** A user's keys, revoked ones included, newest first. */
  findByUser(userId: string): Promise<ApiKeySummary[]> {
    return this.database.prisma.apiKey.findMany({
      where: { userId },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      select: { id: true, prefix: true, createdAt: true, revokedAt: true },
    });
  }

  findActiveByHash(keyHash: string): Promise<(ApiKey & { user: User }) | null> {
    return this.database.prisma.apiKey.findFirst({
      where: { keyHash, revokedAt: null },
      include: { user: true },
    });
  }

  /** Returns the key's user, or `null` when no unrevoked key has this id. */
  async revoke(id: string): Promise<string | null> {
    const [revoked] = await this.database.prisma.apiKey.updateManyAndReturn({
      where: { id, revokedAt: null },
      data: { revokedAt: new Date() },
      select: { userId: true },
    });
    return revoked?.userId ?? null;
  }
}
