import { SignalcastError } from './errors.js';
import type { FetchLike, Signal } from './types.js';

/** `path` under the service's base URL (which may itself have a path), with query parameters. */
export function serviceUrl(base: string, path: string, params: Record<string, string> = {}): string {
  const url = new URL(path, base.endsWith('/') ? base : `${base}/`);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url.toString();
}

export interface Page {
  data: Signal[];
  next_after_seq: number;
  has_more: boolean;
  latest_seq: number;
}

/** Rejects with `error()` if `promise` has not settled within `ms`. */
export function deadline<T>(promise: Promise<T>, ms: number, error: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(error()), ms);
    promise.then(
      (value) => (clearTimeout(timer), resolve(value)),
      (reason) => (clearTimeout(timer), reject(reason)),
    );
  });
}

/** Seconds or an HTTP date, as `Retry-After` may say; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const ms = /^\d+$/.test(header.trim()) ? Number(header) * 1_000 : Date.parse(header) - now;
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

/**
 * One JSON request, given up after `timeoutMs` (default 30 s). An answer other than 2xx rejects
 * with a `SignalcastError` carrying the body's `code` and the status; a network failure, a timeout
 * or a 2xx whose body is not JSON rejects with code `network_error` and no status (worth retrying).
 */
export async function requestJson<T>(
  options: { url: string; fetch?: FetchLike },
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: unknown; query?: Record<string, string>; timeoutMs?: number },
): Promise<{ body: T; status: number; retryAfterMs?: number }> {
  const fetchImpl = options.fetch ?? (globalThis.fetch as unknown as FetchLike | undefined);
  if (!fetchImpl) throw new SignalcastError('fetch_unavailable', 'No fetch: pass the `fetch` option');
  let response: Awaited<ReturnType<FetchLike>>;
  let text: string;
  const abort = typeof AbortController === 'function' ? new AbortController() : undefined;
  const timeoutMs = init.timeoutMs ?? 30_000;
  const timedOut = () => new SignalcastError('network_error', 'timed out');
  const timer = setTimeout(() => abort?.abort(), timeoutMs);
  try {
    // Raced as well as aborted: a `fetch` that ignores the signal still cannot hang the caller.
    response = await deadline(
      fetchImpl(serviceUrl(options.url, path, init.query), {
        method: init.method ?? 'GET',
        headers: { accept: 'application/json', ...(init.body !== undefined && { 'content-type': 'application/json' }), ...init.headers },
        ...(init.body !== undefined && { body: JSON.stringify(init.body) }),
        ...(abort && { signal: abort.signal }),
      }),
      timeoutMs,
      timedOut,
    );
    text = await deadline(response.text(), timeoutMs, timedOut);
  } catch (error) {
    if (error instanceof SignalcastError) throw error;
    throw new SignalcastError(
      'network_error',
      abort?.signal.aborted ? 'timed out' : String((error as Error | undefined)?.message ?? error),
    );
  } finally {
    clearTimeout(timer);
  }
  let body: { code?: string; message?: string } | undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  const wait = retryAfterMs(response.headers.get('retry-after'));
  if (response.status >= 200 && response.status < 300) {
    if (body === undefined || typeof body !== 'object')
      throw new SignalcastError('network_error', `HTTP ${response.status} with a body that is not JSON`);
    return { body: body as T, status: response.status, retryAfterMs: wait };
  }
  const error = new SignalcastError(body?.code ?? `http_${response.status}`, body?.message ?? `HTTP ${response.status}`, response.status);
  (error as SignalcastError & { retryAfterMs?: number }).retryAfterMs = wait;
  throw error;
}

/** One page of `GET /api/v1/signals`, as the given user. */
export async function getPage(options: { url: string; fetch?: FetchLike }, token: string, query: Record<string, string>): Promise<Page> {
  return (await requestJson<Page>(options, 'api/v1/signals', { headers: { authorization: `Bearer ${token}` }, query })).body;
}
