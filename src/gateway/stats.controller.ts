import { Controller, Get, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { JwtAuthGuard, Roles, RolesGuard } from '../auth/auth.guards.js';
import type { Tier } from '../generated/prisma/enums.js';
import { TIERS } from '../signals/entitlement.js';
import { ConnectionRegistry } from './connection-registry.js';
import { FanoutService } from './fanout.service.js';

export interface WsStats {
  total_connections: number;
  active_users: number;
  users_by_tier: Record<Tier, number>;
  signals_broadcast: number;
  messages_delivered: number;
  slow_consumers_disconnected: number;
  uptime_seconds: number;
}

@ApiTags('admin')
@ApiBearerAuth()
@Controller('ws')
@UseGuards(JwtAuthGuard, RolesGuard)
@Roles('admin')
export class StatsController {
  constructor(
    private readonly registry: ConnectionRegistry,
    private readonly fanout: FanoutService,
  ) {}

  @Get('stats')
  @ApiOperation({ summary: 'Live WebSocket statistics of this instance' })
  async stats(): Promise<WsStats> {
    const usersByTier = Object.fromEntries(TIERS.map((tier) => [tier, 0])) as Record<Tier, number>;
    for (const tier of (await this.fanout.tiersOfConnectedUsers()).values()) usersByTier[tier]++;
    return {
      total_connections: this.registry.connectionCount,
      active_users: this.registry.userCount,
      users_by_tier: usersByTier,
      signals_broadcast: this.fanout.signalsBroadcast,
      messages_delivered: this.fanout.messagesDelivered,
      slow_consumers_disconnected: this.fanout.slowConsumersCut,
      uptime_seconds: Math.floor((Date.now() - this.fanout.startedAt) / 1000),
    };
  }
}
