import type { IncomingMessage } from 'node:http';
import { Injectable } from '@nestjs/common';
import { AuthService } from '../auth/auth.service.js';
import type { Principal } from '../auth/principal.js';
import { AppConfig } from '../config/app-config.js';

export type UpgradeDecision = { ok: true; principal: Principal } | { ok: false; status: 401 | 403; message: string };

const principals = new WeakMap<IncomingMessage, Principal>();

/** The principal proven at upgrade time, for the connection handler. */
export function principalOf(request: IncomingMessage): Principal | undefined {
  return principals.get(request);
}

/**
 * Decides an upgrade before the socket exists: a missing or bad token, or a browser origin that
 * is not allowed, is refused with an HTTP status and never gets a socket.
 */
@Injectable()
export class UpgradeAuthenticator {
  private readonly allowedOrigins: Set<string>;

  constructor(
    private readonly auth: AuthService,
    config: AppConfig,
  ) {
    this.allowedOrigins = new Set(config.get('CORS_ORIGINS'));
  }

  authenticate(request: IncomingMessage): UpgradeDecision {
    const origin = request.headers.origin;
    if (this.allowedOrigins.size > 0 && origin !== undefined && !this.allowedOrigins.has(origin)) {
      return { ok: false, status: 403, message: 'Origin not allowed' };
    }
    const token = tokenOf(request);
    if (!token) return { ok: false, status: 401, message: 'Missing token (?token= or Authorization: Bearer)' };
    const principal = this.auth.authenticateToken(token);
    if (!principal) return { ok: false, status: 401, message: 'Invalid or expired token' };
    principals.set(request, principal);
    return { ok: true, principal };
  }
}

function tokenOf(request: IncomingMessage): string | undefined {
  const bearer = /^Bearer (.+)$/i.exec(request.headers.authorization ?? '')?.[1];
  if (bearer) return bearer;
  const query = new URL(request.url ?? '/', 'http://localhost').searchParams.get('token');
  return query || undefined;
}
