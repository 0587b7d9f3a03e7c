import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { Request } from 'express';
import { Strategy } from 'passport-jwt';
import { bearerToken } from './bearer-token.js';
import type { Principal } from './principal.js';
import { TokenService } from './token.service.js';

/**
 * HTTP bearer tokens, verified with the same keys and options as WebSocket upgrades: the key is
 * the one `TokenService` verifies the token with (the current secret, or the previous one during a
 * rotation), and the claims become a principal by the same rule.
 */
@Injectable()
export class JwtStrategy extends PassportStrategy(Strategy, 'jwt') {
  constructor(private readonly tokens: TokenService) {
    super({
      // The same reading of the header as the WebSocket upgrade and the API-key guard.
      jwtFromRequest: (request: Request) => bearerToken(request.headers.authorization) ?? null,
      // A key object (not a string secret): passport-jwt hands it to jsonwebtoken unchanged; its
      // types only name the string and Buffer forms.
      secretOrKeyProvider: (_request: unknown, rawToken: string, done: (error: null, key: Buffer) => void) =>
        done(null, tokens.keyFor(rawToken) as unknown as Buffer),
      jsonWebTokenOptions: tokens.verifyOptions,
      algorithms: tokens.verifyOptions.algorithms,
      issuer: tokens.verifyOptions.issuer as string,
      audience: tokens.verifyOptions.audience as string,
      ignoreExpiration: false,
    });
  }

  validate(claims: Record<string, unknown>): Principal | false {
    return this.tokens.toPrincipal(claims) ?? false;
  }
}
