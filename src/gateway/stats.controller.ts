import { Controller, Get, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { JwtAuthGuard, Roles, RolesGuard } from '../auth/auth.guards.js';
import { TierCache } from '../auth/tier-cache.service.js';
import { busStatusSchema, ClusterState, instanceSnapshotSchema, MessageBus, type InstanceSnapshot } from '../bus/bus.types.js';
import { apiComponent, ApiErrors, ApiZodResponse } from '../common/openapi.js';
import { Tier } from '../generated/prisma/enums.js';
import { TIERS } from '../signals/entitlement.js';
import { ClusterReporter } from './cluster-reporter.service.js';

const count = z.int().min(0);

export const wsStatsSchema = apiComponent(
  'WsStats',
  z.object({
    total_connections: count,
    active_users: count,
    users_by_tier: z.record(z.enum(Tier), count),
    /** Signals broadcast: every instance handles every signal, so this is the highest count of any. */
    signals_broadcast: count,
    messages_delivered: count,
    slow_consumers_disconnected: count,
    uptime_seconds: count,
    bus: busStatusSchema,
    instance_id: z.string(),
    instances: z.array(apiComponent('InstanceSnapshot', instanceSnapshotSchema)),
  }),
);

export type WsStats = z.infer<typeof wsStatsSchema>;

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
  @ApiZodResponse(200, 'The whole cluster, and each live instance', wsStatsSchema)
  @ApiErrors('unauthorized', 'forbidden', 'database_unavailable')
  async stats(): Promise<WsStats> {
    const self = await this.reporter.report();
    const [instances, users] = await Promise.all([this.cluster.instances(), this.cluster.connectedUsers()]);
    const usersByTier = Object.fromEntries(TIERS.map((tier) => [tier, 0])) as WsStats['users_by_tier'];
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
