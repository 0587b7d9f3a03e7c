/** A signal as the service sends it (HTTP and WebSocket): snake_case, prices as decimal strings. */
export interface Signal {
  id: string;
  seq: number;
  provider: string;
  external_id: string;
  symbol: string;
  market: string;
  side: 'buy' | 'sell' | 'long' | 'short' | 'close';
  entry: string;
  stop_loss: string | null;
  take_profits: string[];
  confidence: number;
  timeframe: string;
  note: string | null;
  premium: boolean;
  status: 'active' | 'closed' | 'cancelled' | 'expired';
  version: number;
  issued_at: string;
  received_at: string;
  expires_at: string | null;
}

/** What a subscriber narrows its stream to; each present criterion must match. */
export interface SignalFilters {
  symbols?: string[];
  markets?: string[];
  /** Provider ids. */
  providers?: string[];
  sides?: Signal['side'][];
  min_confidence?: number;
  /** `true`: premium signals only; `false`: regular signals only. */
  premium?: boolean;
  /**
   * Each version matches by its own status: with `['active']` the update that takes a signal out of
   * the set (its `expired`, `closed` or `cancelled` version) is not delivered. To keep a set of active
   * signals current, omit this and drop a signal whose latest version is not `active`.
   */
  statuses?: Signal['status'][];
}

export type ConnectionState = 'idle' | 'connecting' | 'replaying' | 'live' | 'disconnected' | 'polling' | 'failed' | 'closed';

/** The `state` event's payload; `client.stateInfo` holds the last one. */
export interface StateChange {
  state: ConnectionState;
  /** `disconnected`: when the next attempt starts. */
  retryInMs?: number;
  /** The close code (`disconnected`, `failed`) or the error code (`failed`). */
  code?: number | string;
  reason?: string;
}

/** The server's first message on a socket. */
export interface Welcome {
  user_id: string;
  tier: 'free' | 'basic' | 'pro' | 'elite';
  server_time: string;
  latest_seq: number;
  token_expires_at: string | null;
}

/** Why the SDK asks for a token: the app may bypass its own cache for `expiring` and `unauthorized`. */
export interface TokenContext {
  reason: 'connect' | 'expiring' | 'unauthorized';
}

export interface BackoffOptions {
  /** First step's ceiling (default 1000). */
  minMs?: number;
  /** Largest ceiling (default 30000). */
  maxMs?: number;
}

export interface PollOptions {
  /** Between two polls (default 30000), ±20 % jitter. */
  intervalMs?: number;
}

/** A handler property checked bivariantly (as methods are), so that the DOM's and `ws`'s event types fit. */
type Handler<E> = { bivarianceHack(event: E): void }['bivarianceHack'];

/** The part of the WebSocket API the client uses: the browser's and the `ws` package's fit. */
export interface WebSocketLike {
  readonly readyState: number;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<never> | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export type FetchLike = (
  input: string,
  init?: { method?: string; headers?: Record<string, string>; body?: string; signal?: AbortSignal },
) => Promise<{
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}>;

export interface ClientOptions {
  /** The service's http(s) base URL, e.g. `https://signals.example.com`; `/ws/signals` is derived from it. */
  url: string;
  /** Called before every connection attempt, on `token_expiring`, and once after an unauthorized close. */
  getToken: (context: TokenContext) => Promise<string> | string;
  filters?: SignalFilters;
  /** Resume after this seq (a `lastSeq` persisted earlier). */
  since?: number;
  /**
   * Without `since`: start this many seqs back from the newest (the current state of the signals
   * changed in the last `history` seqs, as the tier and filters allow) instead of from now.
   */
  history?: number;
  /** Required where there is no global `WebSocket` (Node 20): pass the `ws` package's. */
  WebSocket?: WebSocketConstructor;
  fetch?: FetchLike;
  backoff?: BackoffOptions;
  poll?: PollOptions;
  /** `false`: poll only (default true). */
  useWebSocket?: boolean;
  /** No welcome within this long is a failed attempt (default 10000). */
  connectTimeoutMs?: number;
  /** Silence before the client pings (default 25000), and the wait for any answer (default 10000). */
  liveness?: { idleMs?: number; timeoutMs?: number };
  /** `false`: send no delivery receipts (`received`) over the socket (default true). */
  receipts?: boolean;
}

export interface ClientEvents {
  signal: Signal;
  state: StateChange;
  error: import('./errors.js').SignalcastError;
  /**
   * What was delivered before no longer applies: another user signed in on this client
   * (`user_changed`), or the position belonged to another database (`position_reset`). Clear
   * what you show; the signals that apply follow.
   */
  reset: { reason: 'user_changed' | 'position_reset' };
}
