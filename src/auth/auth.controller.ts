import { Body, Controller, HttpCode, Ip, Post } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { AppError } from '../common/app-error.js';
import { RateLimiter, clientKey } from '../common/rate-limiter.js';
import { Metrics } from '../metrics/metrics.js';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import { ApiErrors, ApiZodBody, ApiZodResponse } from '../common/openapi.js';
import { accessTokenSchema, tokenRequestSchema, type AccessToken } from './auth.dto.js';
import { AuthService } from './auth.service.js';
import type { z } from 'zod';

@ApiTags('auth')
@Controller('api/auth')
export class AuthController {
  constructor(
    private readonly auth: AuthService,
    private readonly limiter: RateLimiter,
    private readonly metrics: Metrics,
  ) {}

  @Post('token')
  @HttpCode(200)
  @ApiOperation({ summary: 'Exchange email and password for an access token (rate-limited per client IP, across the cluster)' })
  @ApiZodBody(tokenRequestSchema)
  @ApiZodResponse(200, 'A bearer token for the HTTP API and the WebSocket', accessTokenSchema)
  @ApiErrors('validation_failed', 'invalid_credentials', 'rate_limited', 'database_unavailable')
  async token(
    @Ip() ip: string,
    @Body(new ZodValidationPipe(tokenRequestSchema)) body: z.output<typeof tokenRequestSchema>,
  ): Promise<AccessToken> {
    const { allowed, retryAfterSeconds } = await this.limiter.take(clientKey(ip));
    if (!allowed) {
      this.metrics.rateLimited.inc({ scope: 'auth' });
      throw new AppError('rate_limited', 'Too many token requests; retry later', undefined, {
        'Retry-After': String(retryAfterSeconds),
      });
    }
    const { accessToken, expiresIn } = await this.auth.login(body.email, body.password);
    return { access_token: accessToken, token_type: 'Bearer', expires_in: expiresIn };
  }
}
