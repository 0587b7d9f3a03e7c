import { Controller, Get, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { z } from 'zod';
import { busStatusSchema, MessageBus } from '../bus/bus.types.js';
import { apiComponent, ApiErrors, ApiZodResponse } from '../common/openapi.js';
import { DatabaseService } from '../database/database.service.js';

const readinessSchema = apiComponent(
  'Readiness',
  z.object({
    status: z.enum(['ok', 'degraded', 'unavailable']),
    database: z.enum(['up', 'down']),
    bus: busStatusSchema,
  }),
);

const livenessSchema = z.object({ status: z.literal('ok') });

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
  @ApiZodResponse(200, 'Ready: the database answers ("degraded" while the Redis bus is down)', readinessSchema)
  @ApiZodResponse(503, 'Not ready: the database does not answer', readinessSchema)
  @ApiErrors()
  async ready(@Res({ passthrough: true }) response: Response): Promise<z.infer<typeof readinessSchema>> {
    const up = await this.database.ping();
    const bus = this.bus.status();
    response.status(up ? 200 : 503);
    return { status: !up ? 'unavailable' : bus === 'down' ? 'degraded' : 'ok', database: up ? 'up' : 'down', bus };
  }

  @Get('live')
  @ApiOperation({ summary: 'Liveness: the process answers' })
  @ApiZodResponse(200, 'The process answers', livenessSchema)
  @ApiErrors()
  live(): z.infer<typeof livenessSchema> {
    return { status: 'ok' };
  }
}
