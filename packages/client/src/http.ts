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

/**
 * One JSON request. An answer other than 2xx rejects with a `SignalcastError` carrying the body's
 * `code` and the status; a network failure rejects with code `network_error` and no status.
 */
export async function requestJson<T>(
  options: { url: string; fetch?: FetchLike },
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: unknown; query?: Record<string, string> },
): Promise<{ body: T; status: number; retryAfterMs?: number }> {
  const fetchImpl = options.fetch ?? (globalThis.fetch as unknown as FetchLike | undefined);
  if (!fetchImpl) throw new SignalcastError('fetch_unavailable', 'No fetch: pass the `fetch` option');
  let response: Awaited<ReturnType<FetchLike>>;
  try {
    response = await fetchImpl(serviceUrl(options.url, path, init.query), {
      method: init.method ?? 'GET',
      headers: { accept: 'application/json', ...(init.body !== undefined && { 'content-type': 'application/json' }), ...init.headers },
      ...(init.body !== undefined && { body: JSON.stringify(init.body) }),
    });
  } catch (error) {
    throw new SignalcastError('network_error', String((error as Error)?.message ?? error));
  }
  const text = await response.text().catch(() => '');
  let body: { code?: string; message?: string } | undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  const retryAfter = Number(response.headers.get('retry-after'));
  const retryAfterMs = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1_000 : undefined;
  if (response.status >= 200 && response.status < 300) return { body: body as T, status: response.status, retryAfterMs };
  const error = new SignalcastError(body?.code ?? `http_${response.status}`, body?.message ?? `HTTP ${response.status}`, response.status);
  (error as SignalcastError & { retryAfterMs?: number }).retryAfterMs = retryAfterMs;
  throw error;
}

/** One page of `GET /api/v1/signals`, as the given user. */
export async function getPage(options: { url: string; fetch?: FetchLike }, token: string, query: Record<string, string>): Promise<Page> {
  return (await requestJson<Page>(options, 'api/v1/signals', { headers: { authorization: `Bearer ${token}` }, query })).body;
}
