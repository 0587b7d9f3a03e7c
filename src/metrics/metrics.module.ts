import { Global, Module } from '@nestjs/common';
import { MetricsServer } from './metrics-endpoint.js';
import { Metrics } from './metrics.js';

/** The instance's Prometheus registry, for every module to declare its families in. */
@Global()
@Module({ providers: [Metrics, MetricsServer], exports: [Metrics] })
export class MetricsModule {}
