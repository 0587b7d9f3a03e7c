import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { ExtractJwt, Strategy } from 'passport-jwt';
import type { Principal } from './principal.js';
import { TokenService } from './token.service.js';

/** HTTP bearer tokens, verified with the same secret and options as WebSocket upgrades. */
@Injectable()
export class JwtStrategy extends PassportStrategy(Strategy, 'jwt') {
  constructor(private readonly tokens: TokenService) {
    super({
      jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
      // The key object (not the string secret): see `TokenService.key`. passport-jwt hands it to
      // jsonwebtoken unchanged; its types only name the string and Buffer forms.
      secretOrKeyProvider: (_request: unknown, _rawToken: unknown, done: (error: null, key: Buffer) => void) =>
        done(null, tokens.key as unknown as Buffer),
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
