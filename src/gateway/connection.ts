import type { WebSocket } from 'ws';
import type { Principal } from '../auth/principal.js';
import { TokenBucket } from '../common/rate-limiter.js';
import type { SignalFilter } from '../signals/signal-filter.js';
import type { SignalEvent } from '../signals/signal.types.js';
import { WS_CLOSE, type WsCloseName } from './ws-close-codes.js';

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
  /** Cleared at each heartbeat ping, set by the pong. */
  alive = true;
  /** Refused requests in a row. */
  strikes = 0;
  /** The token-expiry warning and close, replaced on each `auth` refresh. */
  tokenTimers: Timer[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    readonly socket: WebSocket,
    public principal: Principal,
    readonly bucket: TokenBucket,
  ) {}

  get userId(): string {
    return this.principal.userId;
  }

  /**
   * Runs `fn` after `ms` unless the connection ends first. Delays beyond what a Node timer holds
   * (2^31-1 ms, about 24.8 days) are re-armed, not fired early.
   */
  later(ms: number, fn: () => void): Timer {
    const handle: Timer = { deadline: Date.now() + Math.max(0, ms) };
    const arm = () => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        if (Date.now() < handle.deadline) return arm();
        fn();
      }, Math.min(MAX_TIMER_MS, Math.max(0, handle.deadline - Date.now())));
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

  /** Closes with a documented code; a peer that does not complete the close is destroyed. */
  close(name: WsCloseName): void {
    this.dispose();
    const { code, reason } = WS_CLOSE[name];
    if (this.socket.readyState === this.socket.CLOSED) return;
    this.socket.close(code, reason);
    setTimeout(() => this.socket.terminate(), CLOSE_GRACE_MS).unref();
  }

  /** Releases timers and buffered events. */
  dispose(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.backlog = [];
  }
}
