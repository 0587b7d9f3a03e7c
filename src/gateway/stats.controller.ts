import { Controller, Get, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { JwtAuthGuard, Roles, RolesGuard } from '../auth/auth.guards.js';
import { TierCache } from '../auth/tier-cache.service.js';
import { ClusterState, MessageBus, type BusStatus, type InstanceSnapshot } from '../bus/bus.types.js';
import type { Tier } from '../generated/prisma/enums.js';
import { TIERS } from '../signals/entitlement.js';
import { ClusterReporter } from './cluster-reporter.service.js';

export interface WsStats {
  total_connections: number;
  active_users: number;
  users_by_tier: Record<Tier, number>;
  /** Signals broadcast: every instance handles every signal, so this is the highest count of any. */
  signals_broadcast: number;
  messages_delivered: number;
  slow_consumers_disconnected: number;
  uptime_seconds: number;
  bus: BusStatus;
  instance_id: string;
  instances: InstanceSnapshot[];
}

@ApiTags('admin')
@ApiBearerAuth()
@Controller('ws')
@UseGuards(JwtAuthGuard, RolesGuard)
@Roles('admin')
export class StatsController {
  constructor(
    private readonly cluster: ClusterState,
    private readonly reporter: ClusterReporter,
    private readonly tiers: TierCache,
    private readonly bus: MessageBus,
  ) {}

  @Get('stats')
  @ApiOperation({ summary: 'Live WebSocket statistics of the whole cluster, with a per-instance breakdown' })
  async stats(): Promise<WsStats> {
    const self = await this.reporter.report();
    const [instances, users] = await Promise.all([this.cluster.instances(), this.cluster.connectedUsers()]);
    const usersByTier = Object.fromEntries(TIERS.map((tier) => [tier, 0])) as Record<Tier, number>;
    for (const tier of (await this.tiers.getMany(users)).values()) usersByTier[tier]++;
    const sum = (pick: (i: InstanceSnapshot) => number) => instances.reduce((total, i) => total + pick(i), 0);
    return {
      total_connections: sum((i) => i.total_connections),
      active_users: users.size,
      users_by_tier: usersByTier,
      signals_broadcast: Math.max(0, ...instances.map((i) => i.signals_broadcast)),
      messages_delivered: sum((i) => i.messages_delivered),
      slow_consumers_disconnected: sum((i) => i.slow_consumers_disconnected),
      uptime_seconds: Math.floor((Date.now() - Date.parse(self.started_at)) / 1000),
      bus: this.bus.status(),
      instance_id: self.instance_id,
      instances,
    };
  }
}
