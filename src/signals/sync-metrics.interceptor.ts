import { performance } from 'node:perf_hooks';
import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import type { Counter, Histogram } from 'prom-client';
import { finalize, tap, type Observable } from 'rxjs';
import { AppError } from '../common/app-error.js';
import { DURATION_BUCKETS, Metrics } from '../metrics/metrics.js';

/** What a synced signal came to: the sync results, or why it was not stored. */
export type SyncMetricResult = 'created' | 'updated' | 'unchanged' | 'invalid' | 'unavailable' | 'failed';

const resultOfCode = (code: string | undefined): SyncMetricResult =>
  code === 'validation_failed' ? 'invalid' : code === 'database_unavailable' ? 'unavailable' : 'failed';

interface ItemAnswer {
  result?: SyncMetricResult;
  error?: { code: string };
}

/**
 * Counts synced signals by result (a batch counts each item) and times each sync request, from the
 * handler's validation to its answer: one counter step per item, one observation per request.
 * Requests refused before the handler (a bad API key, a body that is not JSON) are not syncs.
 */
@Injectable()
export class SyncMetricsInterceptor implements NestInterceptor {
  private readonly results: Counter<'result'>;
  private readonly duration: Histogram<'endpoint'>;

  constructor(metrics: Metrics) {
    this.results = metrics.counter('signalcast_sync_requests_total', 'Signals synced by providers, by result (each batch item counts)', [
      'result',
    ]);
    this.duration = metrics.histogram(
      'signalcast_sync_duration_seconds',
      'Sync requests, from validation to the answer (the group commit included), by endpoint',
      DURATION_BUCKETS,
      ['endpoint'],
    );
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const started = performance.now();
    const endpoint = context.getHandler().name === 'syncMany' ? 'batch' : 'single';
    const request = context.switchToHttp().getRequest<{ body?: { signals?: unknown } }>();
    return next.handle().pipe(
      tap({
        next: (body: { result?: SyncMetricResult; results?: ItemAnswer[] }) => {
          if (body.result) return this.results.inc({ result: body.result });
          for (const item of body.results ?? []) {
            this.results.inc({ result: item.result ?? resultOfCode(item.error?.code) });
          }
        },
        error: (error: unknown) => {
          const result = resultOfCode(error instanceof AppError ? error.code : undefined);
          // A batch refused whole: invalid as a request (its envelope), or every item unavailable.
          const items =
            endpoint === 'batch' && result !== 'invalid' && Array.isArray(request.body?.signals) ? request.body.signals.length : 1;
          this.results.inc({ result }, Math.max(1, items));
        },
      }),
      finalize(() => this.duration.observe({ endpoint }, (performance.now() - started) / 1000)),
    );
  }
}
