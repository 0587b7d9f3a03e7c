import { Injectable } from '@nestjs/common';
import { MessageBus, type UserChange } from '../bus/bus.types.js';
import { AppError } from '../common/app-error.js';
import type { User } from '../generated/prisma/client.js';
import { ApiKeysRepository, type ApiKeySummary } from './api-keys.repository.js';
import { generateApiKey } from './api-key.js';
import type { ApiKeyView, CreateUserInput, ListUsersQuery, UpdateUserInput, UserPosition, UserView } from './auth.dto.js';
import { hashPassword } from './passwords.js';
import { UsersRepository } from './users.repository.js';

export function toUserView(user: User): UserView {
  return {
    id: user.id,
    email: user.email,
    role: user.role,
    tier: user.tier,
    created_at: user.createdAt.toISOString(),
    updated_at: user.updatedAt.toISOString(),
  };
}

export function toApiKeyView(key: ApiKeySummary): ApiKeyView {
  return {
    id: key.id,
    prefix: key.prefix,
    created_at: key.createdAt.toISOString(),
    revoked_at: key.revokedAt?.toISOString() ?? null,
  };
}

@Injectable()
export class UsersService {
  constructor(
    private readonly users: UsersRepository,
    private readonly apiKeys: ApiKeysRepository,
    private readonly bus: MessageBus,
  ) {}

  async create(input: CreateUserInput): Promise<User> {
    const user = await this.users.create({
      email: input.email,
      passwordHash: await hashPassword(input.password),
      role: input.role,
      tier: input.tier,
    });
    if (!user) throw new AppError('conflict', `A user with email ${input.email} already exists`);
    return user;
  }

  async get(id: string): Promise<User> {
    const user = await this.users.findById(id);
    if (!user) throw new AppError('not_found', `No user with id ${id}`);
    return user;
  }

  /** One page of users in email order; `next` is where the following page starts, `null` after the last. */
  async list(query: ListUsersQuery): Promise<{ users: User[]; next: UserPosition | null }> {
    // One more row than asked for tells whether another page exists, so the last page never
    // hands out a cursor to an empty one.
    const rows = await this.users.findPage({ search: query.email, after: query.cursor, take: query.limit + 1 });
    const users = rows.slice(0, query.limit);
    const last = users.at(-1);
    return { users, next: rows.length > query.limit && last ? { email: last.email, id: last.id } : null };
  }

  /** The user's keys, revoked ones included, newest first; `not_found` for an unknown user. */
  async listApiKeys(userId: string): Promise<ApiKeySummary[]> {
    await this.get(userId);
    return this.apiKeys.findByUser(userId);
  }

  /**
   * Commits the change, then tells every instance through the bus; each replaces its cached
   * tier, so open sockets are gated by the new tier from the next signal on. A tier change is
   * recorded in the tier history with `changedBy` (the admin), in the same transaction.
   */
  async update(id: string, input: UpdateUserInput, changedBy?: string): Promise<User> {
    const user = await this.users.update(id, input, changedBy);
    if (!user) throw new AppError('not_found', `No user with id ${id}`);
    await this.announce({ userId: user.id, tier: user.tier, credentialsChanged: input.role !== undefined });
    return user;
  }

  async createApiKey(userId: string): Promise<{ id: string; key: string; prefix: string; createdAt: Date }> {
    const user = await this.get(userId);
    if (user.role !== 'provider') throw new AppError('conflict', 'API keys can only be created for provider users');
    const generated = generateApiKey();
    const stored = await this.apiKeys.create({ userId, keyHash: generated.hash, prefix: generated.prefix });
    return { id: stored.id, key: generated.key, prefix: generated.prefix, createdAt: stored.createdAt };
  }

  /** Revokes at once: every instance drops the key from its cache before this returns. */
  async revokeApiKey(id: string): Promise<void> {
    const userId = await this.apiKeys.revoke(id);
    if (!userId) throw new AppError('not_found', `No active API key with id ${id}`);
    await this.announce({ userId, credentialsChanged: true });
  }

  /**
   * A change is answered only once every instance has been told: if the bus cannot take it, the
   * change is stored but other instances may still act on the old state, and the caller is told so
   * (503) and retries; the retry stores the same thing again and announces it.
   */
  private async announce(change: UserChange): Promise<void> {
    try {
      await this.bus.publishUserChange(change);
    } catch {
      throw new AppError(
        'bus_unavailable',
        'The change is stored, but other instances could not be told (Redis is unreachable): they may still use the old state. Retry the request.',
      );
    }
  }
}
