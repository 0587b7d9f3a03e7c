import { backoffDelay } from './backoff.js';
import { SignalcastError } from './errors.js';
import { requestJson } from './http.js';
import type { BackoffOptions, FetchLike, Signal } from './types.js';

export interface ProviderOptions {
  url: string;
  apiKey: string;
  fetch?: FetchLike;
  /** Network errors and 503 are retried with full-jitter backoff for up to `maxElapsedMs` (default 60000). */
  retry?: BackoffOptions & { maxElapsedMs?: number };
}

/** A signal as a provider sends it (docs/protocol.md, "Sync semantics"). */
export interface SignalInput {
  external_id: string;
  symbol: string;
  market: string;
  side: Signal['side'];
  entry: string;
  stop_loss?: string | null;
  take_profits?: string[];
  confidence: number;
  timeframe: string;
  note?: string | null;
  premium?: boolean;
  status?: 'active' | 'closed' | 'cancelled';
  issued_at: string;
  expires_at?: string | null;
}

export interface SyncResponse {
  result: 'created' | 'updated' | 'unchanged';
  seq: number;
  signal: Signal;
}

export type BatchItemResult =
  ({ index: number; status: 200 | 201 } & SyncResponse) | { index: number; status: number; error: { code: string; message: string } };

/** A network failure (no answer, a timeout, an unreadable answer) or a gateway or service that is not ready. */
const retriable = (error: SignalcastError) =>
  error.code === 'network_error' || error.status === 502 || error.status === 503 || error.status === 504;

/**
 * For signal providers: `sync` and `syncMany` store signals and resolve to the service's answer.
 * Sync is idempotent (a re-sent signal is answered `unchanged`), so network errors and 503 are
 * retried; a 4xx never is (it rejects with the error's `code`).
 */
export class ProviderClient {
  constructor(private readonly options: ProviderOptions) {}

  sync(signal: SignalInput): Promise<SyncResponse> {
    return this.withRetry(() => this.post<SyncResponse>('api/v1/external-signals/sync/signal', signal));
  }

  /** One answer per signal, in order; items the service answered 503 are sent again (in a smaller batch). */
  async syncMany(signals: SignalInput[]): Promise<BatchItemResult[]> {
    const results: BatchItemResult[] = new Array(signals.length);
    let due = signals.map((_signal, index) => index);
    const started = Date.now();
    for (let attempt = 0; due.length > 0; attempt++) {
      const batch = due;
      const { results: answers } = await this.withRetry(
        () =>
          this.post<{ results: BatchItemResult[] }>('api/v1/external-signals/sync/signals', {
            signals: batch.map((index) => signals[index]),
          }),
        started,
      );
      due = [];
      for (const answer of answers) {
        const index = batch[answer.index]!;
        results[index] = { ...answer, index };
        if (answer.status === 503) due.push(index);
      }
      if (due.length === 0 || Date.now() - started >= this.maxElapsedMs) break;
      await sleep(backoffDelay(attempt, this.options.retry));
    }
    return results;
  }

  private get maxElapsedMs(): number {
    return this.options.retry?.maxElapsedMs ?? 60_000;
  }

  private async post<T>(path: string, body: unknown): Promise<T> {
    return (await requestJson<T>(this.options, path, { method: 'POST', headers: { 'x-api-key': this.options.apiKey }, body })).body;
  }

  private async withRetry<T>(call: () => Promise<T>, started = Date.now()): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        const failure = error as SignalcastError & { retryAfterMs?: number };
        if (!(failure instanceof SignalcastError) || !retriable(failure)) throw error;
        const wait = Math.max(failure.retryAfterMs ?? 0, backoffDelay(attempt, this.options.retry));
        if (Date.now() - started + wait > this.maxElapsedMs) throw error;
        await sleep(wait);
      }
    }
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
