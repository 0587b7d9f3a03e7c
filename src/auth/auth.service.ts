import { Injectable } from '@nestjs/common';
import { AppError } from '../common/app-error.js';
import { ApiKeysRepository } from './api-keys.repository.js';
import { hashApiKey } from './api-key.js';
import { verifyPassword } from './passwords.js';
import type { Principal } from './principal.js';
import { TokenService } from './token.service.js';
import { UsersRepository } from './users.repository.js';

@Injectable()
export class AuthService {
  constructor(
    private readonly users: UsersRepository,
    private readonly apiKeys: ApiKeysRepository,
    private readonly tokens: TokenService,
  ) {}

  /** Wrong password and unknown email give the same error after the same work. */
  async login(email: string, password: string): Promise<{ accessToken: string; expiresIn: number }> {
    const user = await this.users.findByEmail(email.toLowerCase());
    if (!(await verifyPassword(user?.passwordHash, password)) || !user) {
      throw new AppError('invalid_credentials', 'Invalid email or password');
    }
    return this.tokens.issue(user.id, user.role);
  }

  /** The single token check used by HTTP and WebSocket. */
  authenticateToken(token: string): Principal | null {
    return this.tokens.verify(token);
  }

  /** The provider behind an API key, or `null` for an unknown or revoked key. */
  async authenticateApiKey(key: string): Promise<Principal | null> {
    const found = await this.apiKeys.findActiveByHash(hashApiKey(key));
    return found ? { userId: found.user.id, role: found.user.role, apiKeyId: found.id } : null;
  }
}
