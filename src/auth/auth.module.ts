import { Module } from '@nestjs/common';
import { PassportModule } from '@nestjs/passport';
import { RedisClients } from '../bus/redis-clients.js';
import { InMemoryRateLimiter, RateLimiter } from '../common/rate-limiter.js';
import { RedisRateLimiter } from '../common/redis-rate-limiter.js';
import { AppConfig } from '../config/app-config.js';
import { AccountBootstrapService } from './account-bootstrap.service.js';
import { AdminController } from './admin.controller.js';
import { ApiKeysRepository } from './api-keys.repository.js';
import { AuthController } from './auth.controller.js';
import { ApiKeyGuard, JwtAuthGuard, RolesGuard } from './auth.guards.js';
import { AuthService } from './auth.service.js';
import { DemoController } from './demo.controller.js';
import { JwtStrategy } from './jwt.strategy.js';
import { TierCache } from './tier-cache.service.js';
import { TokenService } from './token.service.js';
import { UsersRepository } from './users.repository.js';
import { UsersService } from './users.service.js';

@Module({
  imports: [PassportModule],
  controllers: [AuthController, AdminController, DemoController],
  providers: [
    AccountBootstrapService,
    ApiKeysRepository,
    ApiKeyGuard,
    AuthService,
    JwtAuthGuard,
    JwtStrategy,
    {
      // The token endpoint's limit per client IP: cluster-wide in Redis when there is one.
      provide: RateLimiter,
      inject: [AppConfig, RedisClients],
      useFactory: (config: AppConfig, redis: RedisClients | null): RateLimiter => {
        const capacity = config.get('AUTH_RATE_LIMIT_MAX');
        const windowMs = config.get('AUTH_RATE_LIMIT_WINDOW_MS');
        if (!redis) return new InMemoryRateLimiter(capacity, windowMs);
        return new RedisRateLimiter(redis.command, { keyPrefix: `${config.get('REDIS_KEY_PREFIX')}rate:auth-token:`, capacity, windowMs });
      },
    },
    RolesGuard,
    TierCache,
    TokenService,
    UsersRepository,
    UsersService,
  ],
  exports: [AuthService, ApiKeyGuard, JwtAuthGuard, RolesGuard, TierCache, UsersRepository],
})
export class AuthModule {}
