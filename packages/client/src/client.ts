import { backoffDelay, closeAction } from './backoff.js';
import { isUnauthorized, SignalcastError } from './errors.js';
import { deadline, getPage, serviceUrl } from './http.js';
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
  timer?: Timer;
}
type Reason = TokenContext['reason'];

/** Consecutive attempts that never reached `welcome` before the client asks plain HTTP (A4). */
const FALLBACK_AFTER = 3;
/** The ids whose version the client remembers: the second guard behind the seq rule. */
const VERSIONS_KEPT = 10_000;
/** A socket this client gave up on may still count against the per-user cap this long (2 server heartbeats). */
const ABANDONED_SOCKET_MS = 90_000;
/** No answer to a request (subscribe, auth) within this long: the socket is not trusted any more. */
const REQUEST_TIMEOUT_MS = 10_000;
/** A replay that sends nothing for this long (a lost or refused `resume`) is given up: reconnect. */
const REPLAY_STALL_MS = 30_000;
/** After a receipt, the next one waits this long (at most 4 a second, well inside the request rate limit). */
const RECEIPT_WINDOW_MS = 250;

const filterKey = (filters: SignalFilters) => JSON.stringify(filters, Object.keys(filters).sort());
const isSeq = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;
const asError = (error: unknown, code: string) =>
  error instanceof SignalcastError ? error : new SignalcastError(code, String((error as Error | undefined)?.message ?? error));

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
 * socket's close or a poll answer after the WebSocket took over changes nothing. Handlers may call
 * `close()` from any event: every path checks the run again after it emits.
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

  private readonly handlers: Handlers = { signal: new Set(), state: new Set(), error: new Set(), reset: new Set() };
  private readonly versions = new Map<string, number>();
  private readonly requests = new Map<string, Pending>();
  private waiters: Array<Pending & { key: string }> = [];
  private useWebSocket: boolean;
  private poll: PollOptions;
  private run = 0;
  private opening = -1;
  private ws: WebSocketLike | undefined;
  /** The current socket's `since` (undefined: opened without a position). */
  private openedSince: number | undefined;
  /** The filters the current socket's subscription has, and those the last poll used. */
  private wsFilters: SignalFilters = {};
  private pollFilters: SignalFilters = {};
  /** The last filters the service accepted (welcome, ack, a poll), to fall back on when it refuses new ones. */
  private accepted: SignalFilters;
  private welcomed = false;
  private reconnectAnnounced = false;
  private subscribing = false;
  private attempts = 0;
  private failedOpens = 0;
  private tokenRefreshed = false;
  private abandonedAt = -Infinity;
  /** Receipts: the highest seq that came over a WebSocket and was processed, and the last one acknowledged. */
  private processed = -1;
  /** When `processed` last moved: a receipt sent later says how long it was held. */
  private processedAt = 0;
  private acked = -1;
  /** The current socket's server does not know `received` (an older version): no receipts on it. */
  private noReceipts = false;
  private polling = false;
  private pollRun = 0;
  private pollNow: (() => void) | undefined;
  private nextId = 0;
  private tokenInFlight: Promise<string> | undefined;
  private tokenReason: Reason = 'connect';
  private retryTimer: Timer | undefined;
  private connectTimer: Timer | undefined;
  private replayTimer: Timer | undefined;
  private idleTimer: Timer | undefined;
  private answerTimer: Timer | undefined;
  private pollTimer: Timer | undefined;
  /** Set while a receipt's window is open: the window's end sends what was processed meanwhile. */
  private receiptTimer: Timer | undefined;
  private unlisten: (() => void) | undefined;

  constructor(private readonly options: ClientOptions) {
    this.filters = { ...options.filters };
    this.accepted = this.filters;
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
    this.stop({ state: 'closed' }, new SignalcastError('closed', 'The client was closed'));
  }

  /** Skips the wait of `disconnected` (a "reconnect now" button); polls at once when polling only. */
  reconnectNow(): void {
    if (!this.useWebSocket) this.pollNow?.();
    else if (this.state === 'disconnected' || this.state === 'polling') void this.open();
  }

  /** For the React hook: switch between WebSocket and polling only, change the poll interval. */
  configure(options: { useWebSocket?: boolean; poll?: PollOptions }): void {
    if (options.poll) {
      this.poll = { ...options.poll };
      this.pollNow?.(); // the running wait was drawn from the old interval
    }
    if (options.useWebSocket === undefined || options.useWebSocket === this.useWebSocket) return;
    this.useWebSocket = options.useWebSocket;
    if (this.state === 'idle' || this.state === 'closed' || this.state === 'failed') return;
    this.stop(null);
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
    const changed = filterKey(this.filters) !== filterKey(this.wsFilters);
    if (this.polling) this.pollNow?.();
    if (this.ws && this.state !== 'live' && changed) {
      // A socket still opening or replaying carries the old filters in its URL, and `subscribe`
      // must wait for its replay: what the new filters select meanwhile would be lost. Open again
      // from the position, with the new filters.
      this.detach(this.ws);
      void this.open();
    } else if (this.ws && this.state === 'live' && !changed && !this.subscribing) this.filtersApplied(this.wsFilters);
    else this.sendFilters();
    return settled;
  }

  // --- connection attempts -------------------------------------------------------------------

  private async open(reason: Reason = 'connect'): Promise<void> {
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
      if (isSeq(latest) && this.lastSeq === undefined) this.lastSeq = Math.max(0, latest - history);
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
    this.openedSince = since;
    this.welcomed = this.reconnectAnnounced = this.noReceipts = false;
    this.connectTimer = setTimeout(() => this.lost(ws, 'no welcome in time'), this.options.connectTimeoutMs ?? 10_000);
    ws.onmessage = (event) => ws === this.ws && this.frame(ws, String(event.data));
    ws.onclose = (event) => ws === this.ws && this.closed(event.code, event.reason);
    ws.onerror = () => undefined; // a close follows
  }

  private frame(ws: WebSocketLike, data: string): void {
    this.armLiveness(ws);
    // The server's messages (docs/protocol.md, "Messages"). Fields the client relies on are checked; a frame
    // it cannot use is reported and ignored, never thrown into the socket's event loop.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    let message: any;
    try {
      message = JSON.parse(data);
    } catch {
      message = undefined;
    }
    if (typeof message?.type !== 'string') return this.malformed('a frame that is not a JSON object with a type');
    switch (message.type) {
      case 'welcome':
        if (!isSeq(message.latest_seq)) return this.lost(ws, 'malformed welcome');
        return this.welcomeReceived(ws, message);
      case 'signal':
      case 'signal_update': {
        const { type: _type, ...signal } = message;
        if (!isSeq(signal.seq) || typeof signal.id !== 'string' || !isSeq(signal.version))
          return this.malformed(`a ${message.type} without seq, id or version`);
        if (this.replayTimer) this.watchReplay(ws);
        this.deliver(signal as Signal);
        // Handled now, or before (a duplicate): either way processed. A throwing handler counts too, as it does for lastSeq.
        if (signal.seq > this.processed) [this.processed, this.processedAt] = [signal.seq, Date.now()];
        return this.receipt();
      }
      case 'replay_complete':
        this.settle(message.id, message);
        // The server's watermark also covers rows the filter skipped: the next resume starts past them.
        if (isSeq(message.last_seq)) this.lastSeq = Math.max(this.lastSeq ?? 0, message.last_seq);
        // A receipt the previous socket still owed (its window was open when it closed).
        this.receipt();
        return this.goLive();
      case 'resync_required':
        this.settle(message.id, message);
        clearTimeout(this.replayTimer);
        this.replayTimer = undefined; // the socket waits, idle, for the catch-up's `resume`
        return void this.resync(ws);
      case 'token_expiring':
        return void this.renewToken();
      case 'reconnect':
        this.reconnectAnnounced = true;
        return;
      case 'error': {
        // Every request but `received` carries an id: an id-less unknown_type answers a receipt.
        if (message.code === 'unknown_type' && message.id === undefined) return void (this.noReceipts = true);
        const error = new SignalcastError(String(message.code), String(message.message));
        if (!this.settle(message.id, undefined, error)) this.emit('error', error);
        return;
      }
      default:
        this.settle(message.id, message);
    }
  }

  private malformed(what: string): void {
    this.emit('error', new SignalcastError('malformed_message', `The server sent ${what}; ignored`));
  }

  private welcomeReceived(ws: WebSocketLike, welcome: Welcome & { type?: string }): void {
    clearTimeout(this.connectTimer);
    const { type: _type, ...fields } = welcome;
    const previousUser = this.welcome?.user_id;
    this.welcome = fields;
    if (previousUser !== undefined && previousUser !== fields.user_id) {
      // Another user on this client (a new sign-in): what was shown belongs to the previous one.
      this.forget();
      const run = this.run;
      this.emit('reset', { reason: 'user_changed' });
      if (run !== this.run) return;
    }
    this.welcomed = true;
    this.failedOpens = 0;
    this.tokenRefreshed = false;
    this.stopPolling();
    if (this.openedSince === undefined && this.lastSeq !== undefined && welcome.latest_seq > this.lastSeq) {
      // Polling set a position while this socket opened without one: the socket would skip what
      // lies between. Open again from the position.
      this.detach(ws);
      this.setState({ state: 'connecting' });
      return void this.open();
    }
    const run = this.run;
    this.filtersApplied(this.wsFilters);
    if (run !== this.run) return;
    if (this.openedSince !== undefined) {
      if (welcome.latest_seq < this.openedSince) void this.checkPosition(ws, this.openedSince);
      this.setState({ state: 'replaying' });
    } else {
      // This instance may be behind the position polling reached: the socket sends what is newer.
      this.lastSeq = Math.max(this.lastSeq ?? 0, welcome.latest_seq);
      this.goLive();
    }
  }

  /**
   * The welcome says the server is behind `since`. Usually that is an instance whose fan-out lags
   * the database (it replays nothing up to `since` and carries on); the database says whether the
   * position exists at all. If it does not (another database, a reset), the server would hold back
   * every signal up to it: start again from where the database is.
   */
  private async checkPosition(ws: WebSocketLike, since: number): Promise<void> {
    let latest: number;
    try {
      latest = (await getPage(this.options, await this.token('connect'), { limit: '1' })).latest_seq;
    } catch {
      return; // cannot tell: carry on
    }
    if (ws !== this.ws || !isSeq(latest) || latest >= since) return;
    const run = this.run;
    this.lastSeq = latest;
    this.forget();
    this.emit('reset', { reason: 'position_reset' });
    this.emit('error', new SignalcastError('position_reset', `since ${since} is past the service's latest seq ${latest}`));
    if (run !== this.run || ws !== this.ws) return;
    this.detach(ws);
    this.retryIn(backoffDelay(this.attempts++, this.options.backoff));
  }

  /** (Re)arms the replay watchdog: a replay that stops sending is as good as a dead socket. */
  private watchReplay(ws: WebSocketLike): void {
    clearTimeout(this.replayTimer);
    this.replayTimer = setTimeout(() => this.lost(ws, 'the replay stalled'), REPLAY_STALL_MS);
  }

  private goLive(): void {
    clearTimeout(this.connectTimer);
    clearTimeout(this.replayTimer);
    this.replayTimer = undefined;
    this.attempts = 0;
    const run = this.run;
    this.setState({ state: 'live' });
    if (run === this.run) this.sendFilters();
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
    if (this.lastSeq === undefined || signal.seq > this.lastSeq) this.lastSeq = signal.seq;
  }

  /** Seqs seen before (another user's, another database's) no longer say anything: versions and receipts start again. */
  private forget(): void {
    this.versions.clear();
    this.processed = this.acked = -1;
  }

  /**
   * The delivery receipt (`received`: "processed everything you sent me up to seq"): at once when
   * no window is open, so that the server can time the delivery; during a burst, one at the end of
   * each 250 ms window with the highest seq processed by then. Never a seq twice, never a lower one.
   */
  private receipt(): void {
    if (this.receiptTimer || !this.welcomed || this.noReceipts || this.options.receipts === false) return;
    // Held past the signal (a window's end, a new socket): said, so that the server can leave it out of the latency.
    const held = Math.min(60_000, Date.now() - this.processedAt);
    if (this.processed <= this.acked || !this.send({ type: 'received', seq: this.processed, ...(held > 0 && { held_ms: held }) })) return;
    this.acked = this.processed;
    this.receiptTimer = setTimeout(() => {
      this.receiptTimer = undefined;
      this.receipt();
    }, RECEIPT_WINDOW_MS);
  }

  /** More was due than the server replays: read it over HTTP, then `resume` on the same (idle) socket. */
  private async resync(ws: WebSocketLike): Promise<void> {
    this.setState({ state: 'replaying' });
    try {
      await this.catchUp(this.wsFilters, () => ws === this.ws);
    } catch (error) {
      if (ws === this.ws && !this.restRefused(error)) this.lost(ws, 'catch-up failed');
      return;
    }
    if (ws !== this.ws) return;
    this.watchReplay(ws);
    // The answer is the replay, then `replay_complete` (or another `resync_required`); only a refusal needs handling.
    this.request({ type: 'resume', since: this.lastSeq ?? 0 }, 0).catch((error: SignalcastError) => {
      if (ws === this.ws) this.lost(ws, `resume refused: ${error.code}`);
    });
  }

  /** Pages the listing after `lastSeq` until `has_more` is false. */
  private async catchUp(filters: SignalFilters, current: () => boolean): Promise<void> {
    for (let refreshed = false; ;) {
      const token = await this.token(refreshed ? 'unauthorized' : 'connect');
      if (!current()) return;
      const after = this.lastSeq;
      let page;
      try {
        page = await getPage(this.options, token, {
          after_seq: String(after ?? 0),
          ...(after === undefined && { limit: '1' }),
          ...filterParams(filters),
        });
      } catch (error) {
        if ((error as SignalcastError | undefined)?.status !== 401 || refreshed) throw error;
        refreshed = true;
        continue;
      }
      if (!current()) return;
      if (after === undefined) {
        // No position yet: start from the newest, as a socket starts from its welcome.
        if (!isSeq(page.latest_seq)) throw new SignalcastError('malformed_message', 'The listing has no latest_seq');
        if (this.lastSeq === undefined) this.lastSeq = page.latest_seq;
        return;
      }
      for (const signal of page.data ?? []) {
        if (!current()) return; // a handler closed the client
        if (isSeq(signal?.seq) && typeof signal.id === 'string' && isSeq(signal.version)) this.deliver(signal);
      }
      if (!page.has_more) return;
      if ((this.lastSeq ?? 0) <= after) throw new SignalcastError('malformed_message', 'The listing said has_more without moving on');
    }
  }

  private closed(code: number, reason: string): void {
    const run = this.run;
    const welcomed = this.welcomed;
    this.detach(this.ws);
    // 4429 (the user's cap, counted across the cluster) came over a working WebSocket: it is no
    // reason to poll, which has no cap.
    if (!welcomed && code !== 4429) this.failedOpens++;
    const action = closeAction(code, this.reconnectAnnounced);
    if (action.kind === 'fail') {
      // The cap may be counting a socket this client abandoned and the server has not noticed yet.
      if (code === 4529 && Date.now() - this.abandonedAt < ABANDONED_SOCKET_MS) {
        return this.retryIn(10_000 + backoffDelay(this.attempts++, this.options.backoff), code, reason);
      }
      return this.fail(action.code, reason || `closed with ${code}`, code);
    }
    if (action.kind === 'refresh-token') {
      if (this.tokenRefreshed) return this.fail('unauthorized', reason || 'unauthorized', code);
      this.tokenRefreshed = true;
      this.setState({ state: 'disconnected', retryInMs: 0, code, reason });
      if (run === this.run) void this.open('unauthorized');
      return;
    }
    if (code === 4008) {
      this.emit('error', new SignalcastError('slow_consumer', 'The signal handlers did not keep up; resuming'));
      if (run !== this.run) return;
    }
    if (action.kind === 'spread') this.retryIn(Math.floor(Math.random() * 5_000), code, reason);
    else this.retryIn(action.floorMs + backoffDelay(this.attempts++, this.options.backoff), code, reason);
    // Ask plain HTTP whether the service is there; if it is, poll (and retry at the polling pace).
    if (run === this.run && this.failedOpens >= FALLBACK_AFTER && !this.polling && this.useWebSocket) this.startPolling();
  }

  private retryIn(delayMs: number, code?: number, reason?: string): void {
    const run = this.run;
    clearTimeout(this.retryTimer);
    // While polling, the WebSocket is tried again at the maximum backoff, and the state stays `polling`.
    const delay = this.polling ? 5_000 + backoffDelay(30, this.options.backoff) : delayMs;
    this.retryTimer = setTimeout(() => run === this.run && void this.open(), delay);
    if (!this.polling)
      this.setState({ state: 'disconnected', retryInMs: delay, ...(code !== undefined && { code }), ...(reason && { reason }) });
  }

  /** A socket that went silent or never answered: dropped locally and handled as a lost connection. */
  private lost(ws: WebSocketLike, reason: string): void {
    if (ws !== this.ws) return;
    this.abandonedAt = Date.now();
    try {
      ws.close(4000, reason);
    } catch {
      // already closing
    }
    this.closed(1006, reason);
  }

  private detach(ws: WebSocketLike | undefined): void {
    for (const timer of [this.connectTimer, this.idleTimer, this.answerTimer, this.replayTimer, this.receiptTimer]) clearTimeout(timer);
    this.replayTimer = this.receiptTimer = undefined;
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
      clearTimeout(request.timer);
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

  /**
   * One `getToken` call in flight, whoever asks. A caller that needs a token the app must not
   * take from its cache (`expiring`, `unauthorized`) does not share a plain `connect` call: it
   * asks again after it.
   */
  private token(reason: Reason): Promise<string> {
    const current = this.tokenInFlight;
    if (current && (reason === 'connect' || this.tokenReason !== 'connect')) return current;
    const start = current
      ? current.then(
          () => undefined,
          () => undefined,
        )
      : Promise.resolve();
    const call = deadline(
      start.then(() => this.options.getToken({ reason })),
      this.options.connectTimeoutMs ?? 10_000,
      () => new SignalcastError('token_timeout', 'getToken did not answer in time'),
    );
    const clear = () => {
      if (this.tokenInFlight === call) this.tokenInFlight = undefined;
    };
    call.then(clear, clear);
    this.tokenInFlight = call;
    this.tokenReason = reason;
    return call;
  }

  private tokenFailed(error: unknown): void {
    if (isUnauthorized(error)) return this.fail('unauthorized', (error as Error).message);
    const run = this.run;
    this.emit(
      'error',
      new SignalcastError('token_unavailable', `getToken failed: ${String((error as Error | undefined)?.message ?? error)}`),
    );
    if (run === this.run) this.retryIn(backoffDelay(this.attempts++, this.options.backoff));
  }

  /** `token_expiring`: a fresh token goes over the open socket, no reconnect. */
  private async renewToken(): Promise<void> {
    const ws = this.ws;
    try {
      const token = await this.token('expiring');
      if (ws === this.ws) await this.request({ type: 'auth', token });
    } catch (error) {
      // The socket stays up until the token's exp; its 4501 then takes the unauthorized path.
      if (ws === this.ws) this.emit('error', asError(error, 'token_unavailable'));
    }
  }

  /** A REST answer that stops the client (401 after a refresh, 400): true if it did. */
  private restRefused(error: unknown): boolean {
    const failure = error as SignalcastError | undefined;
    if (isUnauthorized(error) || failure?.status === 401) {
      this.fail('unauthorized', String(failure?.message));
      return true;
    }
    if (failure?.status === 400) {
      const refused = this.filters;
      this.filtersRejected(failure, filterKey(refused));
      if (filterKey(refused) !== filterKey(this.accepted)) {
        // Filters the service refuses (also why the upgrades failed): back to the last accepted.
        this.filters = this.accepted;
        this.emit('error', failure);
        return false;
      }
      this.fail(failure.code, failure.message);
      return true;
    }
    return false;
  }

  // --- polling -------------------------------------------------------------------------------------

  /** Polls the listing; rounds never overlap (a wake-up during a round asks for one more). */
  private startPolling(): void {
    this.polling = true;
    this.pollFilters = this.filters;
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
        this.pollFilters = filters;
        this.filtersApplied(filters);
        if (run !== this.pollRun) return;
        if (this.state !== 'polling') {
          this.setState({ state: 'polling' });
          // Keep trying the WebSocket, at the maximum backoff.
          if (run === this.pollRun && this.useWebSocket && !this.ws && this.opening !== this.run) this.retryIn(0);
        }
      } catch (error) {
        if (run !== this.pollRun) return;
        const failure = error as SignalcastError | undefined;
        if (failure?.status === 400 && filterKey(filters) !== filterKey(this.pollFilters)) {
          // A subscribe() the listing refused: keep polling with the filters that worked.
          if (filterKey(this.filters) === filterKey(filters)) this.filters = this.pollFilters;
          this.filtersRejected(failure, filterKey(filters));
        } else if (this.restRefused(error)) return;
        else if (this.state !== 'polling' && this.useWebSocket) {
          // The first poll failed too: the service is down, not just the upgrade. The backoff's
          // retry is still armed; the next failed attempt asks again.
          return this.stopPolling();
        } else {
          this.emit('error', asError(error, 'network_error'));
          if (run !== this.pollRun) return;
        }
      } finally {
        busy = false;
      }
      if (run !== this.pollRun) return;
      if (again) {
        again = false;
        return void round();
      }
      const interval = Math.max(1_000, this.poll.intervalMs ?? 30_000) * (0.8 + 0.4 * Math.random());
      this.pollTimer = setTimeout(() => run === this.pollRun && !hidden() && void round(), interval);
    };
    this.pollNow = () => void round();
    void round();
  }

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
        // No answer: the subscription's state is unknown; a new socket carries the wanted filters.
        if (error.code === 'timeout') return this.lost(ws, 'no answer to subscribe');
        if (filterKey(this.filters) === filterKey(wanted)) this.filters = this.wsFilters;
        this.filtersRejected(error, filterKey(wanted));
        this.sendFilters(); // filters wanted since then
      },
    );
  }

  /** Settles every `subscribe` promise up to the last one asking for these filters. */
  private filtersApplied(filters: SignalFilters): void {
    this.accepted = filters;
    const last = this.waiters.map((waiter) => waiter.key).lastIndexOf(filterKey(filters));
    for (const waiter of this.waiters.splice(0, last + 1)) waiter.resolve(undefined);
  }

  /** Rejects the `subscribe` promises for these filters (all of them without a key). */
  private filtersRejected(error: SignalcastError, key?: string): void {
    const rejected = this.waiters.filter((waiter) => key === undefined || waiter.key === key);
    this.waiters = this.waiters.filter((waiter) => !rejected.includes(waiter));
    for (const waiter of rejected) waiter.reject(error);
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

  /** A request answered by a message carrying its `id`; rejects on `error`, on close, and after `timeoutMs` (0: never). */
  private request(message: Record<string, unknown>, timeoutMs = REQUEST_TIMEOUT_MS): Promise<unknown> {
    const id = `c${++this.nextId}`;
    return new Promise((resolve, reject) => {
      const pending: Pending = { resolve, reject };
      if (timeoutMs > 0)
        pending.timer = setTimeout(
          () => this.settle(id, undefined, new SignalcastError('timeout', `No answer to ${String(message.type)}`)),
          timeoutMs,
        );
      this.requests.set(id, pending);
      if (!this.send({ ...message, id })) this.settle(id, undefined, new SignalcastError('disconnected', 'Not connected'));
    });
  }

  private settle(id: unknown, value: unknown, error?: SignalcastError): boolean {
    const request = typeof id === 'string' ? this.requests.get(id) : undefined;
    if (!request) return false;
    this.requests.delete(id as string);
    clearTimeout(request.timer);
    if (error) request.reject(error);
    else request.resolve(value);
    return true;
  }

  private fail(code: string, reason: string, closeCode?: number): void {
    const error = new SignalcastError(code, reason);
    this.stop({ state: 'failed', code: closeCode ?? code, reason }, error);
    this.emit('error', error);
  }

  /** Stops everything of the current run; `info` null: silently (configure() restarts at once, keeping `subscribe` promises). */
  private stop(info: StateChange | null, error?: SignalcastError): void {
    this.run++;
    this.opening = -1;
    this.tokenInFlight = undefined;
    clearTimeout(this.retryTimer);
    this.stopPolling();
    this.detach(this.ws);
    this.unlisten?.();
    this.unlisten = undefined;
    if (!info) return;
    if (error) this.filtersRejected(error);
    this.setState(info);
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
      else if (this.useWebSocket && !this.ws && (this.state === 'disconnected' || this.polling)) void this.open();
      this.pollNow?.();
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
