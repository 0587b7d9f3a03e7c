import { Controller, Get, Res } from '@nestjs/common';
import type { Response } from 'express';
import { ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AccountBootstrapService, type DemoAccount } from './account-bootstrap.service.js';

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
  @ApiOkResponse({
    schema: {
      type: 'object',
      required: ['password', 'accounts'],
      properties: {
        password: { type: 'string' },
        accounts: {
          type: 'array',
          items: {
            type: 'object',
            required: ['email', 'role', 'tier'],
            properties: { email: { type: 'string' }, role: { type: 'string' }, tier: { type: 'string' } },
          },
        },
      },
    },
  })
  @ApiNoContentResponse({ description: 'The demo seed is not active on this server' })
  demo(@Res({ passthrough: true }) response: Response): { password: string; accounts: DemoAccount[] } | undefined {
    const demo = this.accounts.demoSignIn();
    if (!demo) response.status(204);
    return demo ?? undefined;
  }
}
