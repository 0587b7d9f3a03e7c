import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { MessageBus, type Unsubscribe } from '../bus/bus.types.js';
import { AppConfig } from '../config/app-config.js';
import type { Role } from '../generated/prisma/enums.js';
import { AppError } from '../common/app-error.js';
import { ApiKeysRepository } from './api-keys.repository.js';
import { hashApiKey } from './api-key.js';
import { verifyPassword } from './passwords.js';
import type { Principal } from './principal.js';
import { TokenService } from './token.service.js';
import { UsersRepository } from './users.repository.js';

@Injectable()
export class AuthService implements OnModuleDestroy {
  /** Verified API keys by hash: a sync call costs no query while its key is cached. */
  private readonly keyCache: LRUCache<string, Principal>;
  private readonly unsubscribes: Unsubscribe[];

  constructor(
    private readonly users: UsersRepository,
    private readonly apiKeys: ApiKeysRepository,
    private readonly tokens: TokenService,
    bus: MessageBus,
    config: AppConfig,
  ) {
    this.keyCache = new LRUCache({ max: 10_000, ttl: config.get('API_KEY_CACHE_TTL_MS') });
    // Revocations and role changes drop the user's cached keys on every instance.
    this.unsubscribes = [
      bus.onUserChange(({ userId, credentialsChanged }) => {
        if (!credentialsChanged) return;
        for (const [hash, principal] of this.keyCache.entries()) {
          if (principal.userId === userId) this.keyCache.delete(hash);
        }
      }),
      // Revocations published while the bus was down were lost: verify every key again.
      bus.onRecover(() => this.keyCache.clear()),
    ];
  }

  onModuleDestroy(): void {
    for (const unsubscribe of this.unsubscribes) unsubscribe();
  }

  /** Wrong password and unknown email give the same error after the same work. */
  async login(email: string, password: string): Promise<{ accessToken: string; expiresIn: number }> {
    const user = await this.users.findByEmail(email.toLowerCase());
    if (!(await verifyPassword(user?.passwordHash, password)) || !user) {
      throw new AppError('invalid_credentials', 'Invalid email or password');
    }
    return this.tokens.issue(user.id, user.role);
  }

  /** The user's role as stored now (tokens carry the role they were issued with). */
  async currentRole(userId: string): Promise<Role | undefined> {
    return (await this.users.findById(userId))?.role;
  }

  /** The single token check used by HTTP and WebSocket. */
  authenticateToken(token: string): Principal | null {
    return this.tokens.verify(token);
  }

  /** The provider behind an API key, or `null` for an unknown or revoked key. */
  async authenticateApiKey(key: string): Promise<Principal | null> {
    const hash = hashApiKey(key);
    const cached = this.keyCache.get(hash);
    if (cached) return cached;
    const found = await this.apiKeys.findActiveByHash(hash);
    if (!found) return null;
    const principal: Principal = { userId: found.user.id, role: found.user.role };
    this.keyCache.set(hash, principal);
    return principal;
  }
}
