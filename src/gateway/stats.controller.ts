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
import { DeliveryReceipts } from '../receipts/delivery-receipts.service.js';
import { LATENCY_EDGES_MS, LATENCY_WINDOW_MS, latencyWindowSchema, mergeWindows, quantile } from '../receipts/latency-window.js';

const count = z.int().min(0);
const ms = z.number().min(0).nullable();

/** Stats show each instance's own numbers; its latency buckets are added into the cluster's figures instead. */
const instanceStatsSchema = instanceSnapshotSchema.omit({ delivery_latency: true });

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
    /**
     * Delivery latency per tier over the last 5 minutes, across the cluster, from client receipts:
     * commit to receipt (an upper bound: the receipt's way back is included). p50/p99 are the upper
     * edges of fixed buckets (never above the largest seen); null without receipts.
     */
    delivery_latency_ms: z.record(z.enum(Tier), z.object({ p50: ms, p99: ms, count })),
    /** The share of those receipts within DELIVERY_SLO_MS (null without receipts). */
    slo: z.object({ target_ms: z.int().min(1), within: z.number().min(0).max(1).nullable(), count, window_seconds: z.int().min(1) }),
    instances: z.array(apiComponent('InstanceSnapshot', instanceStatsSchema)),
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
    private readonly receipts: DeliveryReceipts,
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
    // This instance's window as of now; the others' as of their last report.
    // An instance whose report is unreadable (another version's buckets) is left out of the latency.
    const latency = mergeWindows(
      instances.flatMap((i) => {
        const window = latencyWindowSchema.safeParse(i.instance_id === self.instance_id ? self.delivery_latency : i.delivery_latency);
        return window.success && TIERS.every((tier) => window.data[tier].buckets.length === LATENCY_EDGES_MS.length + 1)
          ? [window.data]
          : [];
      }),
    );
    const receipts = TIERS.reduce((total, tier) => total + latency[tier].count, 0);
    const withinSlo = TIERS.reduce((total, tier) => total + latency[tier].within_slo, 0);
    return {
      total_connections: sum((i) => i.total_connections),
      active_users: users.size,
      users_by_tier: usersByTier,
      signals_broadcast: Math.max(0, ...instances.map((i) => i.signals_broadcast)),
      messages_delivered: sum((i) => i.messages_delivered),
      slow_consumers_disconnected: sum((i) => i.slow_consumers_disconnected),
      uptime_seconds: Math.floor((Date.now() - Date.parse(self.started_at)) / 1000),
      bus: this.bus.status(),
      delivery_latency_ms: Object.fromEntries(
        TIERS.map((tier) => [tier, { p50: quantile(latency[tier], 0.5), p99: quantile(latency[tier], 0.99), count: latency[tier].count }]),
      ) as WsStats['delivery_latency_ms'],
      slo: {
        target_ms: this.receipts.sloMs,
        within: receipts === 0 ? null : withinSlo / receipts,
        count: receipts,
        window_seconds: LATENCY_WINDOW_MS / 1000,
      },
      instance_id: self.instance_id,
      instances: instances.map(({ delivery_latency: _latency, ...instance }) => instance),
    };
  }
}
