import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric } from 'prom-client';

/** Durations inside one process (a sync, a fan-out), in seconds. */
export const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Delivery latency, in seconds: fine around the usual SLO (0.5 s). */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2, 5, 10, 30];

/**
 * The process's default metrics (event loop, GC, heap, CPU, descriptors): one set per process,
 * however many applications it hosts (the tests start several), since they describe the process.
 */
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, eventLoopMonitoringPrecision: 10 });
  }
  return processRegistry;
}

/** What a labelled total reads at scrape time: each label value and its running total. */
type Totals<L extends string> = Iterable<readonly [Record<L, string>, number]>;

/**
 * This instance's Prometheus metrics (`signalcast_*`, base units). Each service declares its own
 * families here. What moves on the hot path stays a plain number the service already keeps and is
 * read when Prometheus scrapes (`total`, `gauge`); an event counter or histogram moves once per
 * event (a broadcast, a sync, a close), never once per socket.
 */
@Injectable()
export class Metrics {
  readonly registry = new Registry();
  /** Requests refused by a rate limit: `ws` (a socket's requests), `auth` (token requests per IP). */
  readonly rateLimited = this.counter('signalcast_rate_limited_total', 'Requests refused by a rate limit', ['scope']);

  counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  histogram<L extends string = never>(name: string, help: string, buckets: number[], labelNames: readonly L[] = []): Histogram<L> {
    return new Histogram({ name, help, buckets, labelNames, registers: [this.registry] });
  }

  /** A counter kept by its owner as a running total (or totals by label), read at scrape time. */
  total<L extends string = never>(name: string, help: string, read: () => number | Totals<L>, labelNames: readonly L[] = []): void {
    new Counter<L>({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        const value = read();
        if (typeof value === 'number') (this as Counter).inc(value);
        else for (const [labels, total] of value) this.inc(labels, total);
      },
    });
  }

  /** A gauge read at scrape time (it may query: a scrape waits for it). */
  gauge<L extends string = never>(
    name: string,
    help: string,
    read: () => number | Totals<L> | Promise<number | Totals<L>>,
    labelNames: readonly L[] = [],
  ): void {
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [this.registry],
      async collect() {
        this.reset();
        const value = await read();
        if (typeof value === 'number') (this as Gauge).set(value);
        else for (const [labels, current] of value) this.set(labels, current);
      },
    });
  }

  /**
   * A histogram with one label, kept as plain numbers by its owner (`observe` is a few additions)
   * and turned into Prometheus series when scraped: for what happens once per socket.
   */
  plainHistogram<V extends string>(name: string, help: string, buckets: number[], labelName: string): PlainHistogram<V> {
    const histogram = new PlainHistogram<V>(buckets);
    this.registry.registerMetric({
      name,
      help,
      type: 'histogram',
      aggregator: 'sum',
      get: async () => ({ name, help, type: 'histogram', aggregator: 'sum', values: histogram.values(name, labelName) }),
    } as unknown as Metric);
    return histogram;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition: the process's metrics, then this instance's. */
  async exposition(): Promise<string> {
    const [process, own] = await Promise.all([processMetrics().metrics(), this.registry.metrics()]);
    return `${process}\n${own}`;
  }
}

/** Cumulative bucket counts, sum and count per label value. */
export class PlainHistogram<V extends string> {
  private readonly series = new Map<V, { buckets: number[]; sum: number; count: number }>();

  constructor(private readonly bounds: number[]) {}

  observe(label: V, value: number): void {
    let series = this.series.get(label);
    if (!series) this.series.set(label, (series = { buckets: new Array<number>(this.bounds.length).fill(0), sum: 0, count: 0 }));
    for (let i = this.bounds.length - 1; i >= 0 && value <= this.bounds[i]!; i--) series.buckets[i]!++;
    series.sum += value;
    series.count++;
  }

  /** The series as prom-client's registry prints them. */
  values(name: string, labelName: string): { metricName: string; labels: Record<string, string | number>; value: number }[] {
    return [...this.series].flatMap(([label, { buckets, sum, count }]) => [
      ...this.bounds.map((le, i) => ({ metricName: `${name}_bucket`, labels: { [labelName]: label, le }, value: buckets[i]! })),
      { metricName: `${name}_bucket`, labels: { [labelName]: label, le: '+Inf' }, value: count },
      { metricName: `${name}_sum`, labels: { [labelName]: label }, value: sum },
      { metricName: `${name}_count`, labels: { [labelName]: label }, value: count },
    ]);
  }
}
