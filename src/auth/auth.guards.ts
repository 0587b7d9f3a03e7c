import { createParamDecorator, Injectable, SetMetadata, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard } from '@nestjs/passport';
import type { Request } from 'express';
import { AppError } from '../common/app-error.js';
import type { Role } from '../generated/prisma/enums.js';
import { AuthService } from './auth.service.js';
import { bearerToken } from './bearer-token.js';
import type { Principal } from './principal.js';

type AuthenticatedRequest = Request & { user?: Principal };

const ROLES_KEY = 'signalcast:roles';
/** Restricts a route to these roles (after `JwtAuthGuard` or `ApiKeyGuard`). */
export const Roles = (...roles: Role[]) => SetMetadata(ROLES_KEY, roles);

export const CurrentPrincipal = createParamDecorator((_: unknown, context: ExecutionContext): Principal => {
  const principal = context.switchToHttp().getRequest<AuthenticatedRequest>().user;
  if (!principal) throw new AppError('unauthorized', 'Authentication required');
  return principal;
});

/** A valid bearer JWT, or 401. */
@Injectable()
export class JwtAuthGuard extends AuthGuard('jwt') {
  override handleRequest<T>(error: unknown, principal: T): T {
    if (error || !principal) throw new AppError('unauthorized', 'A valid bearer token is required');
    return principal;
  }
}

/**
 * Role checks read the user's current role from the database, not the token's: an admin who is
 * demoted loses admin access at once, not when the token expires.
 */
@Injectable()
export class RolesGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly auth: AuthService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(ROLES_KEY, [context.getHandler(), context.getClass()]);
    if (!roles) return true;
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const role = request.user && (await this.auth.currentRole(request.user.userId));
    if (!role) throw new AppError('unauthorized', 'The user behind this token no longer exists');
    if (!roles.includes(role)) throw new AppError('forbidden', `This endpoint requires the role: ${roles.join(' or ')}`);
    request.user = { ...request.user!, role };
    return true;
  }
}

/**
 * The sync endpoints: a provider's `X-Api-Key`. No credentials or a bad key → 401; a valid
 * subscriber or admin token, or a key whose user is no longer a provider → 403.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(private readonly auth: AuthService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const key = request.header('x-api-key');
    if (key) {
      const principal = await this.auth.authenticateApiKey(key);
      if (!principal) throw new AppError('unauthorized', 'Unknown or revoked API key');
      if (principal.role !== 'provider') throw new AppError('forbidden', 'This API key does not belong to a provider');
      request.user = principal;
      return true;
    }
    const bearer = bearerToken(request.header('authorization'));
    if (bearer && this.auth.authenticateToken(bearer)) {
      throw new AppError('forbidden', 'Signal sync requires a provider API key (X-Api-Key)');
    }
    throw new AppError('unauthorized', 'A provider API key is required (X-Api-Key header)');
  }
}
