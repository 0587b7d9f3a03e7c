import { Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { WebSocket } from 'ws';
import { TierCache } from '../auth/tier-cache.service.js';
import { MessageBus, type Unsubscribe } from '../bus/bus.types.js';
import { AppConfig } from '../config/app-config.js';
import { DURATION_BUCKETS, Metrics } from '../metrics/metrics.js';
import type { Histogram } from 'prom-client';
import type { Tier } from '../generated/prisma/enums.js';
import { canSee } from '../signals/entitlement.js';
import { matchesFilter } from '../signals/signal-filter.js';
import { SignalsService } from '../signals/signals.service.js';
import type { SignalEvent } from '../signals/signal.types.js';
import { ConnectionRegistry } from './connection-registry.js';
import type { Connection } from './connection.js';
import { frameText, unsentBytes, writeFramed, type FramedMessage } from './framed-message.js';
import { encode } from './ws-messages.js';

/** A premium signal's audience and their tiers, as looked up before the walk. */
interface AudienceTiers {
  tiers: Map<string, Tier>;
  current(): boolean;
}

/** Gap refills read the database in pages of this many versions. */
const GAP_PAGE = 500;
const GAP_RETRIES = 3;
/** Commit times kept for receipts: a receipt answers the newest signal a socket was sent, so a few thousand suffice. */
const COMMIT_TIMES_KEPT = 4096;

/**
 * Delivers bus events to this instance's sockets: each message is serialized once and the same
 * bytes go to every eligible socket. Events are delivered strictly in seq order, one after the
 * other; a tier lookup (one query for all uncached users) only delays the events behind it.
 *
 * seq is gapless, so a missed bus message shows as a jump: the missing versions are read from the
 * database and delivered first. A duplicate (seq already delivered) is dropped. The same refill
 * runs when the bus recovers and every `BUS_CATCHUP_INTERVAL_MS`, for messages lost with nothing
 * after them.
 */
@Injectable()
export class FanoutService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(FanoutService.name);
  private unsubscribe?: Unsubscribe;
  private chain: Promise<void> = Promise.resolve();
  /** Bus events queued behind the one being delivered: while there are some, writes are held and coalesced. */
  private eventsWaiting = 0;
  private readonly maxBufferedBytes: number;
  private readonly maxBacklog: number;
  readonly startedAt = Date.now();
  /** The highest seq handed to this instance's sockets (read from the database at start). */
  deliveredSeq = 0;
  /** The highest seq this instance has seen committed (from the bus or read for a refill). */
  private seenSeq = 0;
  /** Premium signals up to this seq were committed before a bus fence completed (see `fence`). */
  private fencedSeq = 0;
  signalsBroadcast = 0;
  /** `signalsBroadcast` by message type. */
  private readonly broadcastByType = { signal: 0, signal_update: 0 };
  messagesDelivered = 0;
  /** Bytes of the signal frames written (the WebSocket framing included). */
  private bytesSent = 0;
  slowConsumersCut = 0;
  /** Signals delivered from the database because their bus message was missed. */
  gapsRefilled = 0;
  private catchUpTimer?: NodeJS.Timeout;
  private readonly catchUpIntervalMs: number;
  private readonly fanoutSeconds: Histogram;
  /** When the latest signals delivered here were committed, by seq (oldest first): receipts are measured on them. */
  private readonly commitTimes = new Map<number, number>();

  constructor(
    private readonly bus: MessageBus,
    private readonly registry: ConnectionRegistry,
    private readonly tiers: TierCache,
    private readonly signals: SignalsService,
    config: AppConfig,
    metrics: Metrics,
  ) {
    this.maxBufferedBytes = config.get('WS_MAX_BUFFERED_BYTES');
    this.maxBacklog = config.get('WS_REPLAY_MAX');
    this.catchUpIntervalMs = config.get('BUS_CATCHUP_INTERVAL_MS');
    metrics.total(
      'signalcast_signals_broadcast_total',
      "Signal versions delivered to this instance's sockets, by message type",
      () => Object.entries(this.broadcastByType).map(([type, total]) => [{ type }, total] as const),
      ['type'],
    );
    metrics.total(
      'signalcast_messages_sent_total',
      'Signal messages written to sockets (live, replayed and parked)',
      () => this.messagesDelivered,
    );
    metrics.total('signalcast_sent_bytes_total', 'Bytes of the signal messages written to sockets, framing included', () => this.bytesSent);
    metrics.total('signalcast_slow_consumers_cut_total', 'Sockets closed (4008) for falling behind', () => this.slowConsumersCut);
    metrics.total(
      'signalcast_gaps_refilled_total',
      'Signal versions delivered from the database because their bus message was missed',
      () => this.gapsRefilled,
    );
    metrics.gauge(
      'signalcast_bus_up',
      'The bus that shares signals and tier changes is usable: 1 (Redis up, or one instance in-process), 0 (down)',
      () => (bus.status() === 'down' ? 0 : 1),
    );
    this.fanoutSeconds = metrics.histogram(
      'signalcast_fanout_duration_seconds',
      "From a signal's commit to its last socket written on this instance (the writing instance's clock)",
      DURATION_BUCKETS,
    );
  }

  async onModuleInit(): Promise<void> {
    this.deliveredSeq = await this.signals.latestStoredSeq();
    const unsubscribes = [
      this.bus.onSignal((event) => {
        this.seenSeq = Math.max(this.seenSeq, event.seq);
        this.eventsWaiting++;
        void this.enqueue(() => {
          this.eventsWaiting--;
          return this.deliver(event);
        });
      }),
      this.bus.onRecover(() => this.catchUp()),
    ];
    this.catchUpTimer = setInterval(() => this.catchUp(), this.catchUpIntervalMs);
    this.catchUpTimer.unref();
    this.unsubscribe = () => unsubscribes.forEach((unsubscribe) => unsubscribe());
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
    clearInterval(this.catchUpTimer);
  }

  /** When the signal with this seq was committed, if it is among the latest delivered here. */
  commitTimeOf(seq: number): number | undefined {
    return this.commitTimes.get(seq);
  }

  /** Delivers whatever is stored but not yet delivered here. */
  catchUp(): Promise<void> {
    return this.enqueue(async () => {
      const latest = await this.signals.latestStoredSeq();
      if (latest > this.deliveredSeq) await this.refill(latest + 1);
    });
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(task).catch((error: Error) => this.logger.error(`Delivery failed: ${error.message}`));
    return this.chain;
  }

  private async deliver(event: SignalEvent): Promise<void> {
    if (event.seq <= this.deliveredSeq) return;
    if (event.seq > this.deliveredSeq + 1 && !(await this.refill(event.seq))) {
      // The gap could not be read: never skip it. The event is in the database too; the next
      // event or the periodic catch-up delivers everything, in order, once it can be read.
      return;
    }
    await this.deliverOne(event);
  }

  /**
   * `moreFollow`: the caller has more events to deliver right after this one.
   *
   * After the tier lookup, everything happens in one synchronous step: the check that the tiers
   * are still current, the walk over the sockets, and the move of `deliveredSeq`. A tier change
   * answered before this step is honoured by it, and a socket that registers or starts a resume
   * after it sees `deliveredSeq` already past this event (so its replay or backlog cannot miss it).
   */
  private async deliverOne(event: SignalEvent, moreFollow = false): Promise<void> {
    const { symbol } = event.signal;
    if (event.minTier !== 'free' && event.seq > this.fencedSeq) await this.fence();
    let lookup: AudienceTiers | undefined;
    // If this throws (database down), the event stays undelivered and is retried by the catch-up.
    while (event.minTier !== 'free' && !(lookup = await this.tiersOfAudience(symbol)).current()) {
      // A tier of the audience changed, or a socket joined it, since the lookup: look again.
    }
    this.deliverToSockets(event, lookup?.tiers, moreFollow || this.eventsWaiting > 0);
    this.signalsBroadcast++;
    this.broadcastByType[event.type]++;
    this.deliveredSeq = event.seq;
    const committed = committedAt(event);
    if (Number.isNaN(committed)) return;
    this.fanoutSeconds.observe(Math.max(0, Date.now() - committed) / 1000);
    this.commitTimes.set(event.seq, committed);
    if (this.commitTimes.size > COMMIT_TIMES_KEPT) this.commitTimes.delete(this.commitTimes.keys().next().value!);
  }

  /**
   * Delivers the stored versions between what was delivered and `untilSeq` (exclusive). False
   * when the database could not be read.
   */
  private async refill(untilSeq: number): Promise<boolean> {
    while (this.deliveredSeq + 1 < untilSeq) {
      let events: SignalEvent[] | undefined;
      for (let attempt = 1; !events; attempt++) {
        try {
          events = await this.signals.revisionsBetween(this.deliveredSeq, untilSeq, GAP_PAGE);
        } catch (error) {
          if (attempt >= GAP_RETRIES) {
            this.logger.error(`Cannot refill seq ${this.deliveredSeq + 1}..${untilSeq - 1} yet: ${(error as Error).message}`);
            return false;
          }
          await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
        }
      }
      if (events.length === 0) return true;
      this.seenSeq = Math.max(this.seenSeq, events.at(-1)!.seq);
      for (const [i, event] of events.entries()) await this.deliverOne(event, i < events.length - 1);
      this.gapsRefilled += events.length;
    }
    return true;
  }

  /**
   * Before a premium signal is gated: every tier change answered anywhere before it was committed
   * must have been applied here. Tier changes and signals share the bus, but a signal committed on
   * this instance, or read from the database for a refill, did not travel behind them; the bus's
   * fence waits until everything published so far has been handed over. One fence covers every
   * signal seen by then. If it fails, the bus reports down and tiers are read from the database.
   */
  private async fence(): Promise<void> {
    const seen = this.seenSeq;
    await this.bus.fence().catch(() => undefined);
    this.fencedSeq = Math.max(this.fencedSeq, seen);
  }

  private deliverToSockets(event: SignalEvent, tiers: Map<string, Tier> | undefined, moreFollow: boolean): void {
    const bytes = frameText(encode(event.type, event.signal));
    for (const sockets of this.registry.audienceOf(event.signal.symbol)) {
      for (const connection of sockets) {
        if (tiers) {
          const tier = tiers.get(connection.userId);
          if (!tier || !canSee(tier, event.minTier)) continue;
        }
        this.offer(connection, event, bytes, moreFollow);
      }
    }
  }

  /**
   * The tiers of the users who may receive a signal of this symbol (its followers and the unfiltered
   * sockets): each cached one read once, all misses loaded in one query. The work follows the
   * audience, not everyone connected. A socket that joined the audience while a query ran (it
   * connected, or changed its filter) has its user looked up too; a user absent from the database
   * has none and receives nothing. `current()` tells, at the moment of the walk, whether the answer
   * still holds: no tier of these users changed since the lookup began, and nobody joined.
   */
  private async tiersOfAudience(symbol: string): Promise<AudienceTiers> {
    const generation = this.tiers.generation;
    const tiers = new Map<string, Tier>();
    const asked = new Set<string>();
    const missing = () => {
      const users = new Set<string>();
      for (const sockets of this.registry.audienceOf(symbol)) {
        for (const { userId } of sockets) if (!asked.has(userId)) users.add(userId);
      }
      return users;
    };
    for (let next = missing(); next.size > 0; next = missing()) {
      for (const userId of next) asked.add(userId);
      for (const [userId, tier] of await this.tiers.getMany(next)) tiers.set(userId, tier);
    }
    return { tiers, current: () => missing().size === 0 && !this.tiers.changedSince(asked, generation) };
  }

  private offer(connection: Connection, event: SignalEvent, bytes: FramedMessage, moreFollow: boolean): void {
    if (event.seq <= connection.lastSeq) return;
    switch (connection.phase) {
      case 'idle':
        return;
      case 'replaying':
        if (connection.backlog.length >= this.maxBacklog) this.cutOff(connection);
        else connection.backlog.push(event);
        return;
      case 'live':
        connection.lastSeq = event.seq;
        if (!matchesFilter(connection.filter, event.signal)) return;
        connection.sentSeq = event.seq;
        this.send(connection, bytes, moreFollow);
    }
  }

  /**
   * For a backlog drained after a replay: the event was gated when it was parked, and is gated
   * again by the tier the user has now, so a tier change made meanwhile holds.
   */
  sendParked(connection: Connection, event: SignalEvent, tier: Tier): boolean {
    if (event.seq <= connection.lastSeq) return false;
    connection.lastSeq = event.seq;
    if (!canSee(tier, event.minTier) || !matchesFilter(connection.filter, event.signal)) return false;
    this.send(connection, frameText(encode(event.type, event.signal)), true);
    return true;
  }

  /**
   * Sends an already-framed message; a socket that cannot keep up is cut off, never waited for.
   * `moreFollow`: more messages are about to be sent in this turn (see `writeFramed`).
   */
  send(connection: Connection, message: FramedMessage, moreFollow = false): void {
    const { socket } = connection;
    if (socket.readyState !== WebSocket.OPEN) return;
    try {
      writeFramed(socket, message, moreFollow);
      this.messagesDelivered++;
      this.bytesSent += message.frame.length;
    } catch (error) {
      this.logger.warn(`Dropping a failing socket: ${(error as Error).message}`);
      connection.terminate();
      return;
    }
    if (unsentBytes(socket) > this.maxBufferedBytes) this.cutOff(connection);
  }

  private cutOff(connection: Connection): void {
    this.slowConsumersCut++;
    connection.close('SLOW_CONSUMER');
  }
}

/** When a version was committed: as the writer stamped it, or its stored time when read back. */
export const committedAt = (event: SignalEvent): number => event.committedAt ?? Date.parse(event.signal.received_at);
