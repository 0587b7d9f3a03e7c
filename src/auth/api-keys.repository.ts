import { Injectable } from '@nestjs/common';
import { DatabaseService } from '../database/database.service.js';
import type { ApiKey, User } from '../generated/prisma/client.js';

@Injectable()
export class ApiKeysRepository {
  constructor(private readonly database: DatabaseService) {}

  create(data: { userId: string; keyHash: string; prefix: string }): Promise<ApiKey> {
    return this.database.prisma.apiKey.create({ data });
  }

  findActiveByHash(keyHash: string): Promise<(ApiKey & { user: User }) | null> {
    return this.database.prisma.apiKey.findFirst({
      where: { keyHash, revokedAt: null },
      include: { user: true },
    });
  }

  /** Returns false when no unrevoked key has this id. */
  async revoke(id: string): Promise<boolean> {
    const result = await this.database.prisma.apiKey.updateMany({
      where: { id, revokedAt: null },
      data: { revokedAt: new Date() },
    });
    return result.count === 1;
  }
}
