import WebSocket from 'ws';
import { ADMIN, type TestApp } from './test-app.js';

export interface HttpResult<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export interface RequestOptions {
  token?: string;
  apiKey?: string;
  body?: unknown;
  /** Sent as-is instead of JSON-encoding `body`. */
  rawBody?: string;
  headers?: Record<string, string>;
}

/** Real HTTP against the running app. */
export class Api {
  constructor(private readonly app: TestApp) {}

  async request<T = any>(method: string, path: string, options: RequestOptions = {}): Promise<HttpResult<T>> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.apiKey) headers['x-api-key'] = options.apiKey;
    let body: string | undefined = options.rawBody;
    if (options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined) headers['content-type'] ??= 'application/json';
    const response = await fetch(this.app.baseUrl + path, { method, headers, body });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
  }

  async token(email: string, password: string): Promise<string> {
    const result = await this.request('POST', '/api/auth/token', { body: { email, password } });
    if (result.status !== 200) throw new Error(`login ${email} failed: ${result.status} ${JSON.stringify(result.body)}`);
    return result.body.access_token;
  }

  private adminToken?: Promise<string>;
  admin(): Promise<string> {
    return (this.adminToken ??= this.token(ADMIN.email, ADMIN.password));
  }

  private counter = 0;
  /** Creates a user through the admin API and logs in as them. */
  async user(tier: string, role = 'subscriber'): Promise<{ id: string; email: string; token: string }> {
    const email = `${role}-${tier}-${++this.counter}-${Date.now()}@test.signalcast`;
    const password = 'user-password-123';
    const created = await this.request('POST', '/api/v1/admin/users', {
      token: await this.admin(),
      body: { email, password, role, tier },
    });
    if (created.status !== 201) throw new Error(`create user failed: ${created.status} ${JSON.stringify(created.body)}`);
    return { id: created.body.id, email, token: await this.token(email, password) };
  }

  /** A provider user and a fresh API key for it. */
  async provider(): Promise<{ id: string; apiKey: string; keyId: string; token: string }> {
    const user = await this.user('free', 'provider');
    const key = await this.request('POST', `/api/v1/admin/users/${user.id}/api-keys`, { token: await this.admin() });
    if (key.status !== 201) throw new Error(`create key failed: ${key.status}`);
    return { id: user.id, apiKey: key.body.key, keyId: key.body.id, token: user.token };
  }

  setTier(userId: string, tier: string): Promise<HttpResult> {
    return this.admin().then((token) => this.request('PATCH', `/api/v1/admin/users/${userId}`, { token, body: { tier } }));
  }

  sync(apiKey: string, signal: Record<string, unknown>): Promise<HttpResult> {
    return this.request('POST', '/api/v1/external-signals/sync/signal', { apiKey, body: signal });
  }
}

let externalIds = 0;
/** A valid sync body; override any field. */
export function signalBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    external_id: `ext-${process.pid}-${++externalIds}`,
    symbol: 'BTCUSDT',
    market: 'crypto',
    side: 'long',
    entry: '64250.5',
    stop_loss: '63100',
    take_profits: ['65500', '67000.25'],
    confidence: 80,
    timeframe: '4h',
    note: null,
    premium: false,
    issued_at: '2026-11-21T10:00:00.000Z',
    ...overrides,
  };
}

export interface WsClientOptions {
  token?: string;
  headers?: Record<string, string>;
  /** Resume from this seq (`?since=`). */
  since?: number;
  /** false: never answer protocol pings (a dead client). */
  autoPong?: boolean;
}

/** A real `ws` client that records every message, with waits that time out. */
export class WsClient {
  readonly messages: any[] = [];
  private waiters: { predicate: (m: any) => boolean; resolve: (m: any) => void }[] = [];
  closeEvent?: { code: number; reason: string };
  private closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString());
      this.messages.push(message);
      this.waiters = this.waiters.filter((waiter) => {
        if (!waiter.predicate(message)) return true;
        waiter.resolve(message);
        return false;
      });
    });
    this.closed = new Promise((resolve) =>
      socket.on('close', (code, reason) => {
        this.closeEvent = { code, reason: reason.toString() };
        resolve(this.closeEvent);
      }),
    );
  }

  /** Opens a socket and waits for the welcome message. */
  static async connect(url: string, options: WsClientOptions = {}): Promise<WsClient> {
    const client = await WsClient.open(url, options);
    await client.next((m) => m.type === 'welcome');
    return client;
  }

  /** Opens a socket without waiting for anything beyond the handshake. */
  static open(url: string, options: WsClientOptions = {}): Promise<WsClient> {
    const target = new URL(url);
    if (options.token) target.searchParams.set('token', options.token);
    if (options.since !== undefined) target.searchParams.set('since', String(options.since));
    const socket = new WebSocket(target, { headers: options.headers, autoPong: options.autoPong ?? true });
    const client = new WsClient(socket);
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(client));
      socket.once('unexpected-response', (_request, response) => reject(new UpgradeRefused(response.statusCode ?? 0)));
      socket.once('error', reject);
    });
  }

  send(data: unknown): void {
    this.socket.send(typeof data === 'string' ? data : JSON.stringify(data));
  }

  /** The first message (already received or future) matching `predicate`. */
  next(predicate: (m: any) => boolean, timeoutMs = 5_000): Promise<any> {
    const found = this.messages.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for a message`)), timeoutMs);
      this.waiters.push({
        predicate,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }

  signals(): any[] {
    return this.messages.filter((m) => m.type === 'signal' || m.type === 'signal_update');
  }

  /** Seqs of the signals received, in arrival order, without flush markers. */
  seqs(): number[] {
    return this.signals()
      .filter((m) => m.note !== 'flush')
      .map((m) => m.seq);
  }

  /** Sends a request and waits for the reply (`ack`, `error`, `pong`, ...) that echoes its id. */
  private requests = 0;
  async request(body: Record<string, unknown>, timeoutMs = 5_000): Promise<any> {
    const id = `r${++this.requests}`;
    this.send({ ...body, id });
    return this.next((m) => m.id === id && m.type !== 'signal', timeoutMs);
  }

  waitClose(timeoutMs = 5_000): Promise<{ code: number; reason: string }> {
    return Promise.race([
      this.closed,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('socket did not close')), timeoutMs)),
    ]);
  }

  close(): Promise<{ code: number; reason: string }> {
    this.socket.close();
    return this.waitClose();
  }
}

export class UpgradeRefused extends Error {
  constructor(readonly status: number) {
    super(`upgrade refused with HTTP ${status}`);
  }
}

/** A flush marker; override fields so that a filtered socket still receives it. */
export function markerBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return signalBody({ symbol: 'MARKER', note: 'flush', ...overrides });
}

/**
 * Proves absence: sends a marker signal that every socket can see, and waits for it on each
 * client. Messages are delivered in order, so anything that was going to arrive before the
 * marker has arrived by then.
 */
export async function flush(api: Api, apiKey: string, clients: WsClient[], marker = markerBody()): Promise<void> {
  const response = await api.sync(apiKey, marker);
  if (response.status !== 201) throw new Error(`marker sync failed: ${response.status}`);
  await Promise.all(clients.map((client) => client.next((m) => m.type === 'signal' && m.external_id === marker.external_id)));
}
