import type { WebSocket } from 'ws';
import type { Principal } from '../auth/principal.js';
import { TokenBucket } from '../common/rate-limiter.js';
import type { SignalFilter } from '../signals/signal-filter.js';
import type { SignalEvent } from '../signals/signal.types.js';
import { WS_CLOSE, type WsCloseName } from './ws-close-codes.js';
import { encode, type ServerMessageMap } from './ws-messages.js';

/**
 * - `live`: receives every signal its tier and filter allow;
 * - `replaying`: a resume is being served; live signals wait in `backlog` until it is done;
 * - `idle`: receives no signals (after `unsubscribe`, or after `resync_required`).
 */
export type ConnectionPhase = 'live' | 'replaying' | 'idle';

/** Gives a closing socket this long to say goodbye before it is destroyed. */
const CLOSE_GRACE_MS = 5_000;
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface Timer {
  deadline: number;
  timer?: NodeJS.Timeout;
}

/** One open socket and everything the server keeps about it. */
export class Connection {
  phase: ConnectionPhase = 'live';
  /** Set through `ConnectionRegistry.setFilter`, which indexes sockets by the symbols they follow. */
  filter?: SignalFilter;
  backlog: SignalEvent[] = [];
  /**
   * The highest seq handed to this socket (live or replayed). The fan-out never sends a seq at or
   * below it, so the seam between a replay and live traffic cannot duplicate.
   */
  lastSeq = 0;
  /** The newest signal written to this socket live (not replayed): the one a receipt's latency is measured on. */
  sentSeq = 0;
  /** The highest seq this socket acknowledged (`received`), or where its receipts start to cover. */
  receivedSeq = 0;
  /** Receipts on this socket cover its signals after this seq: where it started (see `SignalsGateway.coverFrom`). */
  coveredFrom = 0;
  /** Cleared at each heartbeat ping, set by the pong. */
  alive = true;
  /** Refused requests in a row. */
  strikes = 0;
  /** The token-expiry warning and close, replaced on each `auth` refresh. */
  tokenTimers: Timer[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Set by the registry while it holds this connection (see `ConnectionRegistry.add`). */
  private unregister?: () => void;

  constructor(
    readonly socket: WebSocket,
    public principal: Principal,
    readonly bucket: TokenBucket,
  ) {}

  get userId(): string {
    return this.principal.userId;
  }

  /** Called by the registry when it takes this connection in (a function) and when it lets it go. */
  registered(unregister: (() => void) | undefined): void {
    this.unregister = unregister;
  }

  /**
   * Sends one protocol message to this socket alone, encoded here. Broadcasts do not come this way:
   * the fan-out writes bytes framed once for every socket (`FanoutService.send`).
   */
  notify<K extends keyof ServerMessageMap>(type: K, body: ServerMessageMap[K]): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(encode(type, body));
  }

  /**
   * Runs `fn` after `ms` unless the connection ends first. Delays beyond what a Node timer holds
   * (2^31-1 ms, about 24.8 days) are re-armed, not fired early.
   */
  later(ms: number, fn: () => void): Timer {
    const handle: Timer = { deadline: Date.now() + Math.max(0, ms) };
    const arm = () => {
      const timer = setTimeout(
        () => {
          this.timers.delete(timer);
          if (Date.now() < handle.deadline) return arm();
          fn();
        },
        Math.min(MAX_TIMER_MS, Math.max(0, handle.deadline - Date.now())),
      );
      timer.unref();
      this.timers.add(timer);
      handle.timer = timer;
    };
    arm();
    return handle;
  }

  cancel(handle: Timer | undefined): void {
    if (!handle?.timer) return;
    clearTimeout(handle.timer);
    this.timers.delete(handle.timer);
  }

  /**
   * Closes with a documented code. The connection leaves the registry at once, whoever closes it:
   * while the close handshake runs (up to CLOSE_GRACE_MS with a peer that does not answer, after
   * which it is destroyed) it receives nothing and counts for no cap and no statistic.
   */
  close(name: WsCloseName): void {
    this.end();
    const { code, reason } = WS_CLOSE[name];
    if (this.socket.readyState === this.socket.CLOSED) return;
    this.socket.close(code, reason);
    setTimeout(() => this.socket.terminate(), CLOSE_GRACE_MS).unref();
  }

  /** Destroys the socket without a close handshake (a dead peer, a failing write): the client sees 1006. */
  terminate(): void {
    this.end();
    this.socket.terminate();
  }

  /** Releases timers and buffered events. */
  dispose(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.backlog = [];
  }

  /** Out of the registry (if it is there) and out of delivery, before the socket is told. */
  private end(): void {
    const unregister = this.unregister;
    this.unregister = undefined;
    unregister?.();
    this.dispose();
  }
}
