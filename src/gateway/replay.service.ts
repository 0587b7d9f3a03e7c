import { Injectable, Logger } from '@nestjs/common';
import { TierCache } from '../auth/tier-cache.service.js';
import { AppConfig } from '../config/app-config.js';
import { Metrics } from '../metrics/metrics.js';
import type { Counter } from 'prom-client';
import { canSee } from '../signals/entitlement.js';
import type { SignalEvent } from '../signals/signal.types.js';
import { SignalsService } from '../signals/signals.service.js';
import type { Connection } from './connection.js';
import { FanoutService } from './fanout.service.js';
import { frameText } from './framed-message.js';
import { encode, type RequestId } from './ws-messages.js';

type ReplayOutcome = 'complete' | 'resync_required' | 'closed' | 'failed';

/** A replaying socket must drain below this share of its buffer bound before more is sent. */
const DRAIN_BELOW = 0.5;
const DRAIN_TIMEOUT_MS = 30_000;

/**
 * Serves a resume: every signal after `since` that the user's current tier and the socket's
 * filter allow, from the database, in seq order, then the live signals that arrived meanwhile,
 * without a gap or a duplicate at the seam.
 *
 * While replaying, the fan-out parks live signals in the connection's backlog. Pages are read
 * until they reach the seq the fan-out had delivered when the replay began (anything newer is
 * delivered later, so it lands in the backlog); the backlog is then sent, and the connection goes
 * live in the same synchronous step that sees the backlog empty. The connection's `lastSeq`
 * watermark drops whatever the pages and the backlog both hold.
 *
 * Sending is paced by the socket: before each page or backlog chunk the server waits for the
 * socket to drain, so a long replay to a slow link is not cut off as a slow consumer.
 */
@Injectable()
export class ReplayService {
  private readonly logger = new Logger(ReplayService.name);
  private readonly maxReplay: number;
  private readonly pageSize: number;
  private readonly drainBelow: number;
  private readonly replays: Counter<'outcome'>;
  private readonly replayed: Counter;

  constructor(
    private readonly signals: SignalsService,
    private readonly tiers: TierCache,
    private readonly fanout: FanoutService,
    config: AppConfig,
    metrics: Metrics,
  ) {
    this.replays = metrics.counter(
      'signalcast_replays_total',
      'Resumes by outcome: complete, resync_required (too far behind), closed (the socket went away or was cut), failed',
      ['outcome'],
    );
    this.replayed = metrics.counter('signalcast_signals_replayed_total', 'Signals sent by resumes (from the database and the backlog)');
    this.maxReplay = config.get('WS_REPLAY_MAX');
    this.pageSize = config.get('WS_REPLAY_PAGE_SIZE');
    this.drainBelow = config.get('WS_MAX_BUFFERED_BYTES') * DRAIN_BELOW;
  }

  async resume(connection: Connection, since: number, id?: RequestId): Promise<void> {
    const { outcome, count } = await this.replay(connection, since, id);
    this.replays.inc({ outcome });
    this.replayed.inc(count);
  }

  private async replay(connection: Connection, since: number, id?: RequestId): Promise<{ outcome: ReplayOutcome; count: number }> {
    const withId = id === undefined ? {} : { id };
    connection.phase = 'replaying';
    connection.backlog = [];
    connection.lastSeq = since;
    // Pages stop here: anything newer is delivered by the fan-out after this point, so it is in
    // the backlog, gated by the tier the user has when it is sent.
    const target = this.fanout.deliveredSeq;
    const open = () => connection.socket.readyState === connection.socket.OPEN;
    let count = 0;
    try {
      let sendTier = await this.tiers.current(connection.userId);
      if (!sendTier) {
        connection.close('UNAUTHORIZED');
        return { outcome: 'closed', count };
      }
      const query = { afterSeq: since, throughSeq: target, filter: connection.filter };
      if ((await this.signals.count(sendTier, query, this.maxReplay + 1)) > this.maxReplay) {
        connection.phase = 'idle';
        connection.backlog = [];
        connection.notify('resync_required', { ...withId, since, latest_seq: target, max_replay: this.maxReplay });
        return { outcome: 'resync_required', count: 0 };
      }
      while (connection.lastSeq < target && open()) {
        if (!(await this.drained(connection))) return { outcome: 'closed', count };
        // Gated by the tier the user has once the page is read (nothing waits between that check
        // and the writes). A page read with a lower tier than that lacks signals the user may now
        // see: it is read again with the new one.
        let listTier = sendTier;
        let page: SignalEvent[];
        for (;;) {
          page = await this.signals.list(listTier, {
            afterSeq: connection.lastSeq,
            throughSeq: target,
            limit: this.pageSize,
            filter: connection.filter,
          });
          const now = await this.tiers.current(connection.userId);
          if (!now) {
            connection.close('UNAUTHORIZED');
            return { outcome: 'closed', count };
          }
          sendTier = now;
          // `now` sees nothing `listTier` does not (the same tier, or a downgrade, gated below).
          if (canSee(listTier, now)) break;
          listTier = now;
        }
        for (const event of page) {
          connection.lastSeq = event.seq;
          if (!canSee(sendTier, event.minTier)) continue;
          this.fanout.send(connection, frameText(encode(event.type, event.signal)), true);
          count++;
        }
        if (page.length < this.pageSize) break;
      }
      connection.lastSeq = Math.max(connection.lastSeq, target);
      while (connection.backlog.length > 0 && open() && connection.phase === 'replaying') {
        if (!(await this.drained(connection))) return { outcome: 'closed', count };
        // Parked events were gated when they arrived; the tier may have changed since.
        const parkedTier = await this.tiers.current(connection.userId);
        if (!parkedTier) {
          connection.close('UNAUTHORIZED');
          return { outcome: 'closed', count };
        }
        if (connection.phase !== 'replaying') break;
        for (const event of connection.backlog.splice(0, this.pageSize)) {
          if (this.fanout.sendParked(connection, event, parkedTier)) count++;
        }
      }
    } catch (error) {
      this.logger.warn(`Replay failed: ${(error as Error).message}`);
      connection.close('INTERNAL_ERROR');
      return { outcome: 'failed', count };
    }
    if (!open() || connection.phase !== 'replaying') return { outcome: 'closed', count };
    connection.phase = 'live';
    connection.notify('replay_complete', { ...withId, last_seq: connection.lastSeq, count });
    return { outcome: 'complete', count };
  }

  /** Waits until the socket has sent most of what it holds; false if it never does. */
  private async drained(connection: Connection): Promise<boolean> {
    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    while (connection.socket.bufferedAmount > this.drainBelow) {
      if (Date.now() > deadline || connection.socket.readyState !== connection.socket.OPEN) {
        if (connection.socket.readyState === connection.socket.OPEN) connection.close('SLOW_CONSUMER');
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return true;
  }
}
