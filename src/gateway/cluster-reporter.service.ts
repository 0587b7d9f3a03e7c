import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Injectable, type BeforeApplicationShutdown, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { ClusterState, type InstanceSnapshot } from '../bus/bus.types.js';
import { AppConfig } from '../config/app-config.js';
import { DeliveryReceipts } from '../receipts/delivery-receipts.service.js';
import { ConnectionRegistry } from './connection-registry.js';
import { SignalsService } from '../signals/signals.service.js';
import { FanoutService } from './fanout.service.js';

/** Publishes this instance's numbers to the cluster state at a fixed interval. */
@Injectable()
export class ClusterReporter implements OnModuleInit, OnModuleDestroy, BeforeApplicationShutdown {
  private timer?: NodeJS.Timeout;
  private left = false;
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });

  constructor(
    private readonly cluster: ClusterState,
    private readonly registry: ConnectionRegistry,
    private readonly fanout: FanoutService,
    private readonly signals: SignalsService,
    private readonly config: AppConfig,
    private readonly receipts: DeliveryReceipts,
  ) {}

  onModuleInit(): void {
    this.loopDelay.enable();
    void this.report();
    this.timer = setInterval(() => void this.report(), this.config.get('CLUSTER_REPORT_INTERVAL_MS'));
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
    this.loopDelay.disable();
  }

  /** After the sockets are closed: leave the cluster's numbers at once. */
  async beforeApplicationShutdown(): Promise<void> {
    this.left = true;
    await this.cluster.leave();
  }

  private snapshot(): InstanceSnapshot {
    const memory = process.memoryUsage();
    const ms = (ns: number) => (Number.isFinite(ns) ? Math.round(ns / 1e4) / 100 : 0);
    const delay = { p50: ms(this.loopDelay.percentile(50)), p99: ms(this.loopDelay.percentile(99)), max: ms(this.loopDelay.max) };
    this.loopDelay.reset();
    return {
      instance_id: this.cluster.instanceId,
      total_connections: this.registry.connectionCount,
      active_users: this.registry.userCount,
      signals_broadcast: this.fanout.signalsBroadcast,
      messages_delivered: this.fanout.messagesDelivered,
      slow_consumers_disconnected: this.fanout.slowConsumersCut,
      gaps_refilled: this.fanout.gapsRefilled,
      write_conflicts: this.signals.writeConflicts,
      delivered_seq: this.fanout.deliveredSeq,
      rss_bytes: memory.rss,
      heap_used_bytes: memory.heapUsed,
      event_loop_delay_ms: delay,
      started_at: new Date(this.fanout.startedAt).toISOString(),
      reported_at: new Date().toISOString(),
      delivery_latency: this.receipts.latencyCounts(),
    };
  }

  /** Reports now; resolves with what was reported. */
  async report(): Promise<InstanceSnapshot> {
    const snapshot = this.snapshot();
    // Once left, a late stats request must not put this instance back on the list.
    if (!this.left) await this.cluster.report(snapshot);
    return snapshot;
  }
}
