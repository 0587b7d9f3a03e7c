import { createSecretKey, type KeyObject } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import jwt, { type VerifyOptions } from 'jsonwebtoken';
import { AppConfig } from '../config/app-config.js';
import { Role } from '../generated/prisma/enums.js';
import type { Principal } from './principal.js';
import { uuidSchema } from './auth.dto.js';

interface AccessTokenClaims {
  sub: string;
  role: Role;
  exp: number;
}

const ROLES = new Set<string>(Object.values(Role));

/**
 * The one place that signs and verifies access tokens, for HTTP (through the passport strategy)
 * and WebSocket upgrades and `auth` messages alike. HS256 is pinned: `alg: none` and every other
 * algorithm fail.
 *
 * Rotation: tokens are always signed with `JWT_SECRET`; a token signed with `JWT_SECRET_PREVIOUS`
 * (when set) is still accepted, so a secret change does not log everyone out.
 */
@Injectable()
export class TokenService {
  readonly verifyOptions: VerifyOptions & { algorithms: ['HS256'] };
  /**
   * The secrets as key objects, made once: given a string, jsonwebtoken first tries to parse it as
   * a public key and throws, which cost about 1.6 ms per verification in a profile
   * of 1,000 socket connects.
   */
  private readonly signingKey: KeyObject;
  /** The current key first: the previous one is only tried on tokens the current one refuses. */
  private readonly verificationKeys: KeyObject[];

  constructor(private readonly config: AppConfig) {
    this.verifyOptions = {
      algorithms: ['HS256'],
      issuer: config.get('JWT_ISSUER'),
      audience: config.get('JWT_AUDIENCE'),
    };
    this.signingKey = createSecretKey(Buffer.from(config.get('JWT_SECRET')));
    const previous = config.get('JWT_SECRET_PREVIOUS');
    this.verificationKeys = previous ? [this.signingKey, createSecretKey(Buffer.from(previous))] : [this.signingKey];
  }

  issue(userId: string, role: Role): { accessToken: string; expiresIn: number } {
    const expiresIn = this.config.get('JWT_TTL_SECONDS');
    const accessToken = jwt.sign({ role }, this.signingKey, {
      algorithm: 'HS256',
      subject: userId,
      issuer: this.verifyOptions.issuer as string,
      audience: this.verifyOptions.audience as string,
      expiresIn,
    });
    return { accessToken, expiresIn };
  }

  /** The principal a token proves, or `null` for any invalid, expired or foreign token. */
  verify(token: string): Principal | null {
    for (const key of this.verificationKeys) {
      const principal = this.verifyWith(token, key);
      if (principal) return principal;
    }
    return null;
  }

  /**
   * The key a token verifies with (the current one, else the previous one), for passport-jwt's
   * key provider; a token no key verifies gets the current key, and fails there.
   */
  keyFor(token: string): KeyObject {
    return this.verificationKeys.find((key) => this.verifyWith(token, key)) ?? this.signingKey;
  }

  private verifyWith(token: string, key: KeyObject): Principal | null {
    try {
      const verified = jwt.verify(token, key, this.verifyOptions);
      if (typeof verified === 'string') return null;
      const claims = verified as Partial<AccessTokenClaims> & { iat?: unknown };
      // The previous secret only vouches for tokens as this service issued them: if it leaked, a
      // forger could otherwise mint tokens that outlive the rotation by years.
      const lifetime = typeof claims.iat === 'number' && typeof claims.exp === 'number' ? claims.exp - claims.iat : Infinity;
      if (key !== this.signingKey && lifetime > this.config.get('JWT_TTL_SECONDS')) return null;
      return this.toPrincipal(claims);
    } catch {
      return null;
    }
  }

  /** A token without `exp` is refused: every token we issue expires. */
  toPrincipal(claims: Partial<AccessTokenClaims>): Principal | null {
    // Only a user id is a subject: anything else would reach the database's uuid columns.
    const sub = uuidSchema.safeParse(claims.sub);
    if (!sub.success || typeof claims.exp !== 'number') return null;
    if (typeof claims.role !== 'string' || !ROLES.has(claims.role)) return null;
    return { userId: sub.data, role: claims.role, tokenExpiresAt: claims.exp };
  }
}
