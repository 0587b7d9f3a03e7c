import { backoffDelay, closeAction } from './backoff.js';
import { isUnauthorized, SignalcastError } from './errors.js';
import { getPage, serviceUrl } from './http.js';
import type {
  ClientEvents,
  ClientOptions,
  ConnectionState,
  PollOptions,
  Signal,
  SignalFilters,
  StateChange,
  TokenContext,
  WebSocketLike,
  Welcome,
} from './types.js';

type Handlers = { [K in keyof ClientEvents]: Set<(payload: ClientEvents[K]) => void> };
type Timer = ReturnType<typeof setTimeout>;
interface Pending {
  resolve(value: unknown): void;
  reject(error: SignalcastError): void;
}

/** Consecutive attempts that never reached `welcome` before the client asks plain HTTP (A4). */
const FALLBACK_AFTER = 3;
/** The ids whose version the client remembers: the second guard behind the seq rule. */
const VERSIONS_KEPT = 10_000;

const filterKey = (filters: SignalFilters) => JSON.stringify(filters, Object.keys(filters).sort());

/** The filter as query parameters, the way the connection URL and the listing take it. */
export function filterParams(filters: SignalFilters): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [name, value] of Object.entries(filters)) {
    if (value !== undefined) params[name] = Array.isArray(value) ? value.join(',') : String(value);
  }
  return params;
}

/**
 * A subscriber's connection to signalcast: one WebSocket at a time, resumed by `seq` after every
 * reconnect, deduplicated by `(seq, id, version)`, falling back to polling the REST listing when
 * WebSocket cannot get through. The constructor is inert (no socket, timer or request until
 * `connect()`), so it may run during a render.
 *
 * Every asynchronous step checks that it still belongs to the current run (`run`, bumped by
 * `connect()` and `close()`) and, for socket events, to the current socket: a late token, a stale
 * socket's close or a poll answer after the WebSocket took over changes nothing.
 */
export class SignalcastClient {
  state: ConnectionState = 'idle';
  stateInfo: StateChange = { state: 'idle' };
  /** The last seq processed: persist it and pass it back as `since`. */
  lastSeq: number | undefined;
  /** The last `welcome` (tier, server time). */
  welcome: Welcome | undefined;
  /** The filters wanted; the server applies them on the next open, or at once when live. */
  filters: SignalFilters;

  private readonly handlers: Handlers = { signal: new Set(), state: new Set(), error: new Set() };
  private readonly versions = new Map<string, number>();
  private readonly requests = new Map<string, Pending>();
  private waiters: Array<Pending & { key: string }> = [];
  private useWebSocket: boolean;
  private poll: PollOptions;
  private run = 0;
  private opening = -1;
  private ws: WebSocketLike | undefined;
  /** The filters the current socket's subscription has. */
  private wsFilters: SignalFilters = {};
  private welcomed = false;
  private resumed = false;
  private reconnectAnnounced = false;
  private subscribing = false;
  private attempts = 0;
  private failedOpens = 0;
  private tokenRefreshed = false;
  private polling = false;
  private pollRun = 0;
  private nextId = 0;
  private tokenInFlight: Promise<string> | undefined;
  private retryTimer: Timer | undefined;
  private connectTimer: Timer | undefined;
  private idleTimer: Timer | undefined;
  private answerTimer: Timer | undefined;
  private pollTimer: Timer | undefined;
  private unlisten: (() => void) | undefined;

  constructor(private readonly options: ClientOptions) {
    this.filters = { ...options.filters };
    this.lastSeq = options.since;
    this.useWebSocket = options.useWebSocket ?? true;
    this.poll = { ...options.poll };
  }

  on<K extends keyof ClientEvents>(event: K, handler: (payload: ClientEvents[K]) => void): () => void {
    this.handlers[event].add(handler);
    return () => this.handlers[event].delete(handler);
  }

  /** Starts (or restarts, after `close()` or `failed`) the connection. */
  connect(): void {
    if (this.state !== 'idle' && this.state !== 'closed' && this.state !== 'failed') return;
    this.run++;
    this.attempts = this.failedOpens = 0;
    this.tokenRefreshed = false;
    this.listenToEnvironment();
    if (this.useWebSocket) void this.open();
    else {
      this.setState({ state: 'connecting' });
      this.startPolling();
    }
  }

  /** Closes the socket and stops every timer: nothing reconnects until `connect()`. */
  close(): void {
    this.stop({ state: 'closed' });
  }

  /** Skips the wait of `disconnected` (a "reconnect now" button). */
  reconnectNow(): void {
    if (this.state === 'disconnected' || this.state === 'polling') void this.open();
  }

  /** For the React hook: switch between WebSocket and polling only, change the poll interval. */
  configure(options: { useWebSocket?: boolean; poll?: PollOptions }): void {
    if (options.poll) this.poll = { ...options.poll };
    if (options.useWebSocket === undefined || options.useWebSocket === this.useWebSocket) return;
    this.useWebSocket = options.useWebSocket;
    if (this.state === 'idle' || this.state === 'closed' || this.state === 'failed') return;
    this.stop({ state: 'closed' }, false);
    this.state = 'idle';
    this.connect();
  }

  /**
   * Replaces the filters. Live: sent at once, settled by the server's `ack` or `error` (which
   * restores the previous filters). Otherwise kept, and applied by the next open (on its URL) or
   * the next poll: nothing is queued and replayed blindly.
   */
  subscribe(filters: SignalFilters): Promise<void> {
    this.filters = { ...filters };
    if (this.state === 'idle' || this.state === 'closed' || this.state === 'failed') return Promise.resolve();
    const settled = new Promise<void>((resolve, reject) => this.waiters.push({ key: filterKey(this.filters), resolve, reject }));
    if (this.welcomed && filterKey(this.filters) === filterKey(this.wsFilters)) this.filtersApplied(this.wsFilters);
    else if (this.polling && !this.ws) this.pollNow?.();
    else this.sendFilters();
    return settled;
  }

  // --- connection attempts -------------------------------------------------------------------

  private async open(reason: TokenContext['reason'] = 'connect'): Promise<void> {
    const run = this.run;
    if (this.opening === run || this.ws) return;
    clearTimeout(this.retryTimer);
    this.opening = run;
    if (this.state !== 'polling') this.setState({ state: 'connecting' });
    let token: string;
    try {
      token = await this.token(reason);
    } catch (error) {
      if (run === this.run) {
        this.opening = -1;
        this.tokenFailed(error);
      }
      return;
    }
    if (run !== this.run) return;
    const history = this.options.history ?? 0;
    if (this.lastSeq === undefined && history > 0) {
      // A first visit that wants recent signals: start that many seqs back from the newest.
      const latest = await getPage(this.options, token, { limit: '1', ...filterParams(this.filters) }).then(
        (page) => page.latest_seq,
        () => undefined, // then from now on, as without `history`
      );
      if (run !== this.run) return;
      if (latest !== undefined && this.lastSeq === undefined) this.lastSeq = Math.max(0, latest - history);
    }
    this.opening = -1;
    const Socket = this.options.WebSocket ?? (globalThis as { WebSocket?: ClientOptions['WebSocket'] }).WebSocket;
    if (!Socket) return this.fail('websocket_unavailable', 'No WebSocket: pass the `WebSocket` option (e.g. the ws package)');
    const since = this.lastSeq;
    const url = serviceUrl(this.options.url, 'ws/signals', {
      token,
      ...(since !== undefined && { since: String(since) }),
      ...filterParams(this.filters),
    }).replace(/^http/, 'ws');
    let ws: WebSocketLike;
    try {
      ws = new Socket(url);
    } catch (error) {
      return this.fail('websocket_unavailable', String(error));
    }
    this.ws = ws;
    this.wsFilters = this.filters;
    this.welcomed = this.reconnectAnnounced = false;
    this.resumed = since !== undefined;
    this.connectTimer = setTimeout(() => this.lost(ws, 'no welcome in time'), this.options.connectTimeoutMs ?? 10_000);
    ws.onmessage = (event) => ws === this.ws && this.frame(ws, String(event.data));
    ws.onclose = (event) => ws === this.ws && this.closed(event.code, event.reason);
    ws.onerror = () => undefined; // a close follows
  }

  private frame(ws: WebSocketLike, data: string): void {
    this.armLiveness(ws);
    // The server's messages (README "Messages"); trusted to be well-formed, not validated here.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    let message: any;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    switch (message.type) {
      case 'welcome':
        return this.welcomeReceived(ws, message);
      case 'signal':
      case 'signal_update': {
        const { type: _type, ...signal } = message;
        return this.deliver(signal as Signal);
      }
      case 'replay_complete':
        // The server's watermark also covers rows the filter skipped: the next resume starts past them.
        this.lastSeq = Math.max(this.lastSeq ?? 0, message.last_seq);
        return this.goLive();
      case 'resync_required':
        return void this.resync(ws);
      case 'token_expiring':
        return void this.renewToken();
      case 'reconnect':
        this.reconnectAnnounced = true;
        return;
      case 'error':
        if (!this.settle(message.id, undefined, new SignalcastError(message.code, message.message))) {
          this.emit('error', new SignalcastError(message.code, message.message));
        }
        return;
      default:
        this.settle(message.id, message);
    }
  }

  private welcomeReceived(ws: WebSocketLike, welcome: Welcome & { type?: string }): void {
    clearTimeout(this.connectTimer);
    const { type: _type, ...fields } = welcome;
    this.welcome = fields;
    this.welcomed = true;
    this.failedOpens = 0;
    this.tokenRefreshed = false;
    this.stopPolling();
    if (this.resumed && welcome.latest_seq < (this.lastSeq ?? 0)) {
      // A position this server never reached (another database, a reset): the server would hold
      // back every signal up to it. Start again from where the server is.
      this.lastSeq = welcome.latest_seq;
      this.versions.clear();
      this.emit('error', new SignalcastError('position_reset', `since was past the server's latest seq ${welcome.latest_seq}`));
      this.detach(ws);
      return void this.open();
    }
    this.filtersApplied(this.wsFilters);
    if (this.resumed) this.setState({ state: 'replaying' });
    else {
      // Polling may have moved the position while this socket opened; the socket sends what is newer.
      this.lastSeq = Math.max(this.lastSeq ?? 0, welcome.latest_seq);
      this.goLive();
    }
  }

  private goLive(): void {
    clearTimeout(this.connectTimer);
    this.attempts = 0;
    this.setState({ state: 'live' });
    this.sendFilters();
  }

  /**
   * The exactly-once rule: nothing at or below `lastSeq`, no version at or below the one held;
   * `lastSeq` moves only after the handlers ran.
   */
  private deliver(signal: Signal): void {
    if (this.lastSeq !== undefined && signal.seq <= this.lastSeq) return;
    const held = this.versions.get(signal.id);
    if (held === undefined || signal.version > held) {
      this.emit('signal', signal);
      this.versions.delete(signal.id);
      this.versions.set(signal.id, signal.version);
      if (this.versions.size > VERSIONS_KEPT) this.versions.delete(this.versions.keys().next().value as string);
    }
    this.lastSeq = signal.seq;
  }

  /** More was due than the server replays: read it over HTTP, then `resume` on the same (idle) socket. */
  private async resync(ws: WebSocketLike): Promise<void> {
    this.setState({ state: 'replaying' });
    try {
      await this.catchUp(this.wsFilters, () => ws === this.ws);
      if (ws === this.ws) this.send({ type: 'resume', since: this.lastSeq ?? 0 });
    } catch (error) {
      if (ws !== this.ws) return;
      if (this.restRefused(error)) return;
      this.lost(ws, 'catch-up failed');
    }
  }

  /** Pages the listing after `lastSeq` until `has_more` is false. */
  private async catchUp(filters: SignalFilters, current: () => boolean): Promise<void> {
    for (let refreshed = false; ; ) {
      const token = await this.token(refreshed ? 'unauthorized' : 'connect');
      let page;
      try {
        page = await getPage(this.options, token, {
          after_seq: String(this.lastSeq ?? 0),
          ...(this.lastSeq === undefined && { limit: '1' }),
          ...filterParams(filters),
        });
      } catch (error) {
        if ((error as SignalcastError).status !== 401 || refreshed) throw error;
        refreshed = true;
        continue;
      }
      if (!current()) return;
      if (this.lastSeq === undefined) {
        // No position yet: start from the newest, as a socket starts from its welcome.
        this.lastSeq = page.latest_seq;
        return;
      }
      for (const signal of page.data) {
        if (!current()) return; // a handler closed the client
        this.deliver(signal);
      }
      if (!page.has_more) return;
    }
  }

  private closed(code: number, reason: string): void {
    const welcomed = this.welcomed;
    this.detach(this.ws);
    if (!welcomed) this.failedOpens++;
    const action = closeAction(code, this.reconnectAnnounced);
    if (action.kind === 'fail') return this.fail(action.code, reason || `closed with ${code}`, code);
    if (action.kind === 'refresh-token') {
      if (this.tokenRefreshed) return this.fail('unauthorized', reason || 'unauthorized', code);
      this.tokenRefreshed = true;
      this.setState({ state: 'disconnected', retryInMs: 0, code, reason });
      return void this.open('unauthorized');
    }
    if (code === 4008) this.emit('error', new SignalcastError('slow_consumer', 'The signal handlers did not keep up; resuming'));
    if (action.kind === 'spread') return this.retryIn(Math.floor(Math.random() * 5_000), code, reason);
    this.retryIn(action.floorMs + backoffDelay(this.attempts++, this.options.backoff), code, reason);
    if (this.failedOpens >= FALLBACK_AFTER && !this.polling) this.startPolling();
  }

  private retryIn(delayMs: number, code?: number, reason?: string): void {
    clearTimeout(this.retryTimer);
    // While polling, the WebSocket is tried again at the maximum backoff, and the state stays `polling`.
    const delay = this.polling ? 5_000 + backoffDelay(30, this.options.backoff) : delayMs;
    if (!this.polling) this.setState({ state: 'disconnected', retryInMs: delay, ...(code !== undefined && { code }), ...(reason && { reason }) });
    const run = this.run;
    this.retryTimer = setTimeout(() => run === this.run && void this.open(), delay);
  }

  /** A socket that went silent or never answered: dropped locally and handled as a lost connection. */
  private lost(ws: WebSocketLike, reason: string): void {
    if (ws !== this.ws) return;
    try {
      ws.close(4000, reason);
    } catch {
      // already closing
    }
    this.closed(1006, reason);
  }

  private detach(ws: WebSocketLike | undefined): void {
    for (const timer of [this.connectTimer, this.idleTimer, this.answerTimer]) clearTimeout(timer);
    if (!ws) return;
    ws.onmessage = ws.onclose = null;
    if (ws === this.ws) {
      this.ws = undefined;
      this.welcomed = false;
    }
    if (ws.readyState <= 1) {
      try {
        ws.close(1000);
      } catch {
        // not open yet in some runtimes
      }
    }
    for (const [id, request] of this.requests) {
      this.requests.delete(id);
      request.reject(new SignalcastError('disconnected', 'The connection closed before the answer'));
    }
    this.subscribing = false;
  }

  // --- liveness: a browser cannot see protocol pings -------------------------------------------

  private armLiveness(ws: WebSocketLike): void {
    clearTimeout(this.idleTimer);
    clearTimeout(this.answerTimer);
    this.idleTimer = setTimeout(() => this.probe(ws), this.options.liveness?.idleMs ?? 25_000);
  }

  private probe(ws: WebSocketLike): void {
    if (ws !== this.ws) return;
    clearTimeout(this.answerTimer);
    this.answerTimer = setTimeout(() => this.lost(ws, 'no answer to ping'), this.options.liveness?.timeoutMs ?? 10_000);
    this.send({ type: 'ping', id: `p${++this.nextId}` });
  }

  // --- tokens ------------------------------------------------------------------------------------

  /** One `getToken` call in flight, whoever asks. */
  private token(reason: TokenContext['reason']): Promise<string> {
    if (!this.tokenInFlight) {
      const call = Promise.resolve()
        .then(() => this.options.getToken({ reason }))
        .finally(() => {
          if (this.tokenInFlight === call) this.tokenInFlight = undefined;
        });
      this.tokenInFlight = call;
    }
    return this.tokenInFlight;
  }

  private tokenFailed(error: unknown): void {
    if (isUnauthorized(error)) return this.fail('unauthorized', (error as Error).message);
    this.emit('error', new SignalcastError('token_unavailable', `getToken failed: ${String((error as Error)?.message ?? error)}`));
    this.retryIn(backoffDelay(this.attempts++, this.options.backoff));
  }

  /** `token_expiring`: a fresh token goes over the open socket, no reconnect. */
  private async renewToken(): Promise<void> {
    const ws = this.ws;
    try {
      const token = await this.token('expiring');
      if (ws === this.ws) await this.request({ type: 'auth', token });
    } catch (error) {
      // The socket stays up until the token's exp; its 4501 then takes the unauthorized path.
      if (ws === this.ws) this.emit('error', error instanceof SignalcastError ? error : new SignalcastError('token_unavailable', String(error)));
    }
  }

  /** A REST answer that stops the client (401 after a refresh, 400): true if it did. */
  private restRefused(error: unknown): boolean {
    if (isUnauthorized(error) || (error as SignalcastError).status === 401) {
      this.fail('unauthorized', (error as Error).message);
      return true;
    }
    if ((error as SignalcastError).status === 400) {
      this.filters = this.wsFilters;
      this.filtersRejected(error as SignalcastError);
      this.fail((error as SignalcastError).code, (error as Error).message);
      return true;
    }
    return false;
  }

  // --- polling -------------------------------------------------------------------------------------

  /** Polls the listing; rounds never overlap (a wake-up during a round asks for one more). */
  private startPolling(): void {
    this.polling = true;
    const run = ++this.pollRun;
    let busy = false;
    let again = false;
    const round = async () => {
      clearTimeout(this.pollTimer);
      if (busy) return void (again = true);
      busy = true;
      const filters = this.filters;
      try {
        await this.catchUp(filters, () => run === this.pollRun);
        if (run !== this.pollRun) return;
        this.filtersApplied(filters);
        if (this.state !== 'polling') {
          this.setState({ state: 'polling' });
          // Keep trying the WebSocket, at the maximum backoff.
          if (this.useWebSocket && !this.ws && this.opening !== this.run) this.retryIn(0);
        }
      } catch (error) {
        if (run !== this.pollRun || this.restRefused(error)) return;
        this.emit('error', error instanceof SignalcastError ? error : new SignalcastError('network_error', String(error)));
        // The first poll failed too: the service is down, not just the upgrade. Stay disconnected.
        if (this.state !== 'polling' && this.useWebSocket) return this.stopPolling();
      } finally {
        busy = false;
      }
      if (run !== this.pollRun) return;
      if (again) {
        again = false;
        return void round();
      }
      const interval = (this.poll.intervalMs ?? 30_000) * (0.8 + 0.4 * Math.random());
      this.pollTimer = setTimeout(() => run === this.pollRun && !hidden() && void round(), interval);
    };
    this.pollNow = () => void round();
    void round();
  }

  private pollNow: (() => void) | undefined;

  private stopPolling(): void {
    this.polling = false;
    this.pollRun++;
    this.pollNow = undefined;
    clearTimeout(this.pollTimer);
  }

  // --- filters -------------------------------------------------------------------------------------

  private sendFilters(): void {
    const ws = this.ws;
    const wanted = this.filters;
    if (this.state !== 'live' || !ws || this.subscribing || filterKey(wanted) === filterKey(this.wsFilters)) return;
    this.subscribing = true;
    this.request({ type: 'subscribe', filters: wanted }).then(
      () => {
        if (ws !== this.ws) return;
        this.subscribing = false;
        this.wsFilters = wanted;
        this.filtersApplied(wanted);
        this.sendFilters();
      },
      (error: SignalcastError) => {
        if (ws !== this.ws) return; // the next URL carries the wanted filters
        this.subscribing = false;
        this.filters = this.wsFilters;
        this.filtersRejected(error);
      },
    );
  }

  /** Settles every `subscribe` promise up to the last one asking for these filters. */
  private filtersApplied(filters: SignalFilters): void {
    const last = this.waiters.map((waiter) => waiter.key).lastIndexOf(filterKey(filters));
    for (const waiter of this.waiters.splice(0, last + 1)) waiter.resolve(undefined);
  }

  private filtersRejected(error: SignalcastError): void {
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }

  // --- plumbing ------------------------------------------------------------------------------------

  private send(message: Record<string, unknown>): boolean {
    if (this.ws?.readyState !== 1) return false;
    try {
      this.ws.send(JSON.stringify(message));
      return true;
    } catch {
      return false;
    }
  }

  private request(message: Record<string, unknown>): Promise<unknown> {
    const id = `c${++this.nextId}`;
    return new Promise((resolve, reject) => {
      this.requests.set(id, { resolve, reject });
      if (!this.send({ ...message, id })) this.settle(id, undefined, new SignalcastError('disconnected', 'Not connected'));
    });
  }

  private settle(id: unknown, value: unknown, error?: SignalcastError): boolean {
    const request = typeof id === 'string' ? this.requests.get(id) : undefined;
    if (!request) return false;
    this.requests.delete(id as string);
    if (error) request.reject(error);
    else request.resolve(value);
    return true;
  }

  private fail(code: string, reason: string, closeCode?: number): void {
    const error = new SignalcastError(code, reason);
    this.stop({ state: 'failed', code: closeCode ?? code, reason }, true, error);
    this.emit('error', error);
  }

  private stop(info: StateChange, announce = true, error = new SignalcastError('closed', 'The client was closed')): void {
    this.run++;
    this.opening = -1;
    clearTimeout(this.retryTimer);
    this.stopPolling();
    this.detach(this.ws);
    this.unlisten?.();
    this.unlisten = undefined;
    this.filtersRejected(error);
    if (announce) this.setState(info);
  }

  private setState(info: StateChange): void {
    if (info.state === this.state && info.retryInMs === undefined && info.state !== 'failed') return;
    this.state = info.state;
    this.stateInfo = info;
    this.emit('state', info);
  }

  private emit<K extends keyof ClientEvents>(event: K, payload: ClientEvents[K]): void {
    for (const handler of [...this.handlers[event]]) {
      try {
        handler(payload);
      } catch (error) {
        if (event !== 'error') this.emit('error', new SignalcastError('handler_failed', `A ${event} handler threw: ${String(error)}`));
      }
    }
  }

  /** Coming back online, or the page becoming visible: try now instead of waiting out the backoff. */
  private listenToEnvironment(): void {
    const target = globalThis as unknown as Partial<Window>;
    if (this.unlisten || typeof target.addEventListener !== 'function' || !target.document) return;
    const wake = () => {
      if (hidden()) return;
      if (this.ws && this.welcomed) this.probe(this.ws);
      else if (this.state === 'disconnected') void this.open();
      if (this.polling) this.pollNow?.();
    };
    target.addEventListener('online', wake);
    target.document.addEventListener('visibilitychange', wake);
    this.unlisten = () => {
      target.removeEventListener?.('online', wake);
      target.document?.removeEventListener('visibilitychange', wake);
    };
  }
}

const hidden = () => (globalThis as { document?: Document }).document?.visibilityState === 'hidden';
