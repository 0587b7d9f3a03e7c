import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { Api, UpgradeRefused, WsClient, type HttpResult, type RequestOptions, type WsClientOptions } from './clients.js';
import type { TestApp } from './test-app.js';

/** One HTTP answer seen by a test: which test, what was asked and what came back. */
export interface SeenStatus {
  test?: string;
  what: string;
  status: number;
}

const currentTest = () => expect.getState().currentTestName;

export interface RawRequestOptions extends Omit<RequestOptions, 'headers'> {
  /** Sent as-is, byte for byte (e.g. invalid UTF-8 or gzip), instead of `body` / `rawBody`. */
  rawBytes?: Buffer;
  /** An array value sends the header once per element. */
  headers?: Record<string, string | string[]>;
}

export interface RawResult<T = any> extends HttpResult<T> {
  /** The body as text (the JSON body is `body`; `undefined` when the text is not JSON). */
  text: string;
}

const REQUEST_TIMEOUT_MS = 10_000;

/**
 * A header value as the bytes of `text` in UTF-8: Node writes header strings as Latin-1, so the
 * UTF-8 bytes of a non-ASCII value travel unchanged (as a browser or curl would send them).
 */
export function utf8Header(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/**
 * `Api` over `node:http`, so that anything can be sent (raw bytes, any header, any content type)
 * and any answer read (a body that is not JSON is kept as text). Every status is recorded.
 */
export class RecordingApi extends Api {
  readonly seen: SeenStatus[] = [];

  constructor(private readonly target: TestApp) {
    super(target);
  }

  override async request<T = any>(method: string, path: string, options: RawRequestOptions = {}): Promise<RawResult<T>> {
    const headers: Record<string, string | string[]> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.apiKey !== undefined) headers['x-api-key'] = options.apiKey;
    let body: Buffer | undefined = options.rawBytes;
    if (body === undefined && options.rawBody !== undefined) body = Buffer.from(options.rawBody, 'utf8');
    if (body === undefined && options.body !== undefined) body = Buffer.from(JSON.stringify(options.body), 'utf8');
    if (body !== undefined && !Object.keys(headers).some((name) => name.toLowerCase() === 'content-type')) {
      headers['content-type'] = 'application/json';
    }
    const result = await rawHttp(this.target.baseUrl, method, path, headers, body);
    this.seen.push({ test: currentTest(), what: `${method} ${path.slice(0, 200)}`, status: result.status });
    return result as RawResult<T>;
  }

  /** Records a status seen outside `request` (WebSocket upgrades). */
  record(what: string, status: number): void {
    this.seen.push({ test: currentTest(), what, status });
  }
}

/** One HTTP request with a timeout; the answer's body is parsed as JSON when it is JSON. */
export function rawHttp(
  baseUrl: string,
  method: string,
  path: string,
  headers: Record<string, string | string[]>,
  body?: Buffer,
): Promise<RawResult> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: url.hostname, port: url.port, method, path, headers: body ? { ...headers, 'content-length': String(body.length) } : headers },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = undefined;
          }
          const responseHeaders = new Headers();
          for (const [name, value] of Object.entries(response.headers)) {
            if (value !== undefined) responseHeaders.set(name, Array.isArray(value) ? value.join(', ') : value);
          }
          resolve({ status: response.statusCode ?? 0, body: parsed, text, headers: responseHeaders });
        });
        response.on('error', reject);
      },
    );
    request.setTimeout(REQUEST_TIMEOUT_MS, () => request.destroy(new Error(`${method} ${path}: no answer in ${REQUEST_TIMEOUT_MS} ms`)));
    request.on('error', reject);
    request.end(body);
  });
}

/** What became of a WebSocket upgrade: refused with an HTTP status, or opened. */
export type UpgradeOutcome = { refused: number } | { opened: WsClient };

/** Opens a socket with `WsClient.open`; a refusal is recorded with its HTTP status. */
export async function tryUpgrade(api: RecordingApi, url: string, options: WsClientOptions = {}): Promise<UpgradeOutcome> {
  try {
    const opened = await withTimeout(WsClient.open(url, options), REQUEST_TIMEOUT_MS, 'upgrade');
    api.record(`UPGRADE ${url.slice(0, 200)}`, 101);
    return { opened };
  } catch (error) {
    if (!(error instanceof UpgradeRefused)) throw error;
    api.record(`UPGRADE ${url.slice(0, 200)}`, error.status);
    return { refused: error.status };
  }
}

/**
 * A hand-written upgrade request (for handshake headers a WebSocket client always sets itself):
 * the HTTP status of the refusal, 101 if it was accepted, or 0 if the server dropped the connection
 * without an HTTP answer.
 */
export function rawUpgrade(api: RecordingApi, baseUrl: string, path: string, headers: Record<string, string>): Promise<number> {
  const url = new URL(baseUrl);
  const handshake = {
    connection: 'Upgrade',
    upgrade: 'websocket',
    'sec-websocket-version': '13',
    'sec-websocket-key': randomBytes(16).toString('base64'),
    ...headers,
  };
  return new Promise<number>((resolve, reject) => {
    const request = http.request({ host: url.hostname, port: url.port, path, headers: handshake });
    request.setTimeout(REQUEST_TIMEOUT_MS, () => request.destroy(new Error(`upgrade ${path}: no answer in ${REQUEST_TIMEOUT_MS} ms`)));
    request.on('response', (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on('upgrade', (_response, socket) => {
      socket.destroy();
      resolve(101);
    });
    request.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET' || error.message === 'socket hang up') resolve(0);
      else reject(error);
    });
    request.end();
  }).then((status) => {
    api.record(`UPGRADE(raw) ${path.slice(0, 200)}`, status);
    return status;
  });
}

export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
