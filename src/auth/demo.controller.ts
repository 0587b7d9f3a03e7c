import { Controller, Get, Res } from '@nestjs/common';
import type { Response } from 'express';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { apiComponent, ApiErrors, ApiZodResponse } from '../common/openapi.js';
import { Role, Tier } from '../generated/prisma/enums.js';
import { AccountBootstrapService } from './account-bootstrap.service.js';

const demoSignInSchema = apiComponent(
  'DemoSignIn',
  z.object({
    password: z.string(),
    accounts: z.array(z.object({ email: z.string(), role: z.enum(Role), tier: z.enum(Tier) })),
  }),
);

/**
 * Public on purpose: it only answers while the demo accounts, whose password is published, exist.
 * Without them it answers 204, not 404: the sign-in page asks on every load, and a browser logs
 * every 4xx on the console.
 */
@ApiTags('demo')
@Controller('api/v1')
export class DemoController {
  constructor(private readonly accounts: AccountBootstrapService) {}

  @Get('demo')
  @ApiOperation({ summary: 'The demo accounts and their password, for one-click demo sign-in; 204 when the demo seed is off' })
  @ApiZodResponse(200, 'The demo accounts', demoSignInSchema)
  @ApiZodResponse(204, 'The demo seed is not active on this server')
  @ApiErrors()
  demo(@Res({ passthrough: true }) response: Response): z.infer<typeof demoSignInSchema> | undefined {
    const demo = this.accounts.demoSignIn();
    if (!demo) response.status(204);
    return demo ?? undefined;
  }
}
