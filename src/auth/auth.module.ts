import { Module } from '@nestjs/common';
import { PassportModule } from '@nestjs/passport';
import { AccountBootstrapService } from './account-bootstrap.service.js';
import { AdminController } from './admin.controller.js';
import { ApiKeysRepository } from './api-keys.repository.js';
import { AuthController } from './auth.controller.js';
import { ApiKeyGuard, JwtAuthGuard, RolesGuard } from './auth.guards.js';
import { AuthService } from './auth.service.js';
import { JwtStrategy } from './jwt.strategy.js';
import { TierCache } from './tier-cache.service.js';
import { TokenService } from './token.service.js';
import { UsersRepository } from './users.repository.js';
import { UsersService } from './users.service.js';

@Module({
  imports: [PassportModule],
  controllers: [AuthController, AdminController],
  providers: [
    AccountBootstrapService,
    ApiKeysRepository,
    ApiKeyGuard,
    AuthService,
    JwtAuthGuard,
    JwtStrategy,
    RolesGuard,
    TierCache,
    TokenService,
    UsersRepository,
    UsersService,
  ],
  exports: [AuthService, ApiKeyGuard, JwtAuthGuard, RolesGuard, TierCache],
})
export class AuthModule {}
