import { Controller, Get, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { MessageBus, type BusStatus } from '../bus/bus.types.js';
import { DatabaseService } from '../database/database.service.js';

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly database: DatabaseService,
    private readonly bus: MessageBus,
  ) {}

  @Get()
  @ApiOperation({
    summary: 'Readiness: 200 when the database answers (status "degraded" while the Redis bus is down), 503 otherwise',
  })
  async ready(
    @Res({ passthrough: true }) response: Response,
  ): Promise<{ status: 'ok' | 'degraded' | 'unavailable'; database: 'up' | 'down'; bus: BusStatus }> {
    const up = await this.database.ping();
    const bus = this.bus.status();
    response.status(up ? 200 : 503);
    return { status: !up ? 'unavailable' : bus === 'down' ? 'degraded' : 'ok', database: up ? 'up' : 'down', bus };
  }

  @Get('live')
  @ApiOperation({ summary: 'Liveness: the process answers' })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }
}
