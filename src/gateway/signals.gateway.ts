import type { IncomingMessage } from 'node:http';
import { Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { WebSocketGateway, type OnGatewayConnection, type OnGatewayDisconnect } from '@nestjs/websockets';
import type { WebSocket } from 'ws';
import { AuthService } from '../auth/auth.service.js';
import type { Principal } from '../auth/principal.js';
import { TierCache } from '../auth/tier-cache.service.js';
import { ClusterState } from '../bus/bus.types.js';
import { TokenBucket } from '../common/rate-limiter.js';
import { AppConfig } from '../config/app-config.js';
import type { Tier } from '../generated/prisma/enums.js';
import { Metrics } from '../metrics/metrics.js';
import { DeliveryReceipts } from '../receipts/delivery-receipts.service.js';
import { TIERS } from '../signals/entitlement.js';
import type { Counter } from 'prom-client';
import { filterToWire } from '../signals/signal-filter.js';
import { ConnectionRegistry } from './connection-registry.js';
import { Connection } from './connection.js';
import { FanoutService } from './fanout.service.js';
import { ReplayService } from './replay.service.js';
import { filterOf, principalOf, sinceOf, UpgradeAuthenticator } from './upgrade-authenticator.js';
import { closeCodeLabel, WS_CLOSE } from './ws-close-codes.js';
import { parseClientFrame, parseReceiptFrame, type ClientRequest } from './ws-messages.js';

/** How long shutdown waits for sockets to finish their close handshake. */
const SHUTDOWN_CLOSE_WAIT_MS = 2_000;

/**
 * `/ws/signals`: connection lifecycle (welcome, heartbeats, token expiry, lifetime, shutdown) and
 * the client protocol. Delivery is FanoutService's job, resume ReplayService's.
 */
@WebSocketGateway({ path: '/ws/signals' })
export class SignalsGateway implements OnGatewayConnection, OnGatewayDisconnect, OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(SignalsGateway.name);
  private heartbeat?: NodeJS.Timeout;
  private readonly heartbeatIntervalMs: number;
  private readonly ratePerSecond: number;
  private readonly rateBurst: number;
  private readonly rateStrikes: number;
  private readonly maxSocketsPerUser: number;
  private readonly tokenExpiryWarningMs: number;
  private readonly maxLifetimeMs: number;
  private readonly opened: Counter;
  private readonly closed: Counter<'code'>;
  private readonly rateLimited: Counter<'scope'>;
  /** Receipts of users whose tier is not cached, looked up together at the end of the turn. */
  private readonly awaitingTier = new Map<string, PendingReceipt[]>();
  private tierCounts?: Promise<TierCounts>;

  constructor(
    private readonly registry: ConnectionRegistry,
    private readonly tiers: TierCache,
    private readonly fanout: FanoutService,
    private readonly auth: AuthService,
    private readonly replay: ReplayService,
    private readonly cluster: ClusterState,
    config: AppConfig,
    private readonly upgrades: UpgradeAuthenticator,
    metrics: Metrics,
    private readonly receipts: DeliveryReceipts,
  ) {
    this.heartbeatIntervalMs = config.get('WS_HEARTBEAT_INTERVAL_MS');
    this.ratePerSecond = config.get('WS_RATE_LIMIT_PER_SECOND');
    this.rateBurst = config.get('WS_RATE_LIMIT_BURST');
    this.rateStrikes = config.get('WS_RATE_LIMIT_STRIKES');
    this.maxSocketsPerUser = config.get('WS_MAX_SOCKETS_PER_USER');
    this.tokenExpiryWarningMs = config.get('WS_TOKEN_EXPIRY_WARNING_MS');
    this.maxLifetimeMs = config.get('WS_MAX_CONNECTION_LIFETIME_MS');
    this.opened = metrics.counter('signalcast_connections_opened_total', 'WebSockets opened (upgrades accepted)');
    this.closed = metrics.counter(
      'signalcast_connections_closed_total',
      'WebSockets closed, by close code (1006: dropped without a close)',
      ['code'],
    );
    this.rateLimited = metrics.rateLimited;
    metrics.gauge(
      'signalcast_connections',
      'Open sockets on this instance, by the tier of their user',
      async () => (await this.byTier()).sockets,
      ['tier'],
    );
    metrics.gauge('signalcast_users', 'Users with a socket on this instance, by tier', async () => (await this.byTier()).users, ['tier']);
  }

  /**
   * This instance's sockets and users by tier, for the two gauges of one scrape (computed once).
   * From the cached tiers, the rest looked up in one query that may take at most a second: a scrape
   * must answer while the database does not (users whose tier is unknown then are left out).
   */
  private byTier(): Promise<TierCounts> {
    // Both gauges are collected in the same pass of a scrape: the second finds the first's count running.
    this.tierCounts ??= this.countByTier().finally(() => (this.tierCounts = undefined));
    return this.tierCounts;
  }

  private async countByTier(): Promise<TierCounts> {
    const socketsOf = new Map<string, number>();
    for (const { userId } of this.registry.all()) socketsOf.set(userId, (socketsOf.get(userId) ?? 0) + 1);
    const tiers = new Map<string, Tier>();
    for (const userId of socketsOf.keys()) {
      const tier = this.tiers.peek(userId);
      if (tier) tiers.set(userId, tier);
    }
    const uncached = [...socketsOf.keys()].filter((userId) => !tiers.has(userId));
    if (uncached.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      const loaded = await Promise.race([
        this.tiers.getMany(uncached).catch(() => new Map<string, Tier>()),
        new Promise<Map<string, Tier>>((resolve) => (timer = setTimeout(() => resolve(new Map()), 1_000))),
      ]);
      clearTimeout(timer);
      for (const [userId, tier] of loaded) tiers.set(userId, tier);
    }
    const sockets = new Map<Tier, number>(TIERS.map((tier) => [tier, 0]));
    const users = new Map<Tier, number>(TIERS.map((tier) => [tier, 0]));
    for (const [userId, count] of socketsOf) {
      const tier = tiers.get(userId);
      if (!tier) continue;
      sockets.set(tier, sockets.get(tier)! + count);
      users.set(tier, users.get(tier)! + 1);
    }
    const labelled = (counts: Map<Tier, number>) => [...counts].map(([tier, count]): [{ tier: Tier }, number] => [{ tier }, count]);
    return { sockets: labelled(sockets), users: labelled(users) };
  }

  onModuleInit(): void {
    this.heartbeat = setInterval(() => this.beat(), this.heartbeatIntervalMs);
    this.heartbeat.unref();
  }

  /** Graceful shutdown: refuse new sockets, tell every client to reconnect elsewhere, close 1001. */
  async onModuleDestroy(): Promise<void> {
    clearInterval(this.heartbeat);
    this.registry.accepting = false;
    const closing = [...this.registry.all()].map(
      (connection) =>
        new Promise<void>((resolve) => {
          connection.socket.once('close', () => resolve());
          this.goAway(connection);
        }),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closing), new Promise((resolve) => (timer = setTimeout(resolve, SHUTDOWN_CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
  }

  async handleConnection(socket: WebSocket, request: IncomingMessage): Promise<void> {
    this.opened.inc();
    socket.once('close', (code: number) => this.closed.inc({ code: closeCodeLabel(code) }));
    const principal = principalOf(request);
    if (!principal) return void socket.close(WS_CLOSE.UNAUTHORIZED.code, WS_CLOSE.UNAUTHORIZED.reason);
    const bucket = TokenBucket.perSecond(this.ratePerSecond, this.rateBurst);
    const connection = new Connection(socket, principal, bucket);
    this.registry.setFilter(connection, filterOf(request));
    const since = sinceOf(request);
    // Whatever happens before registration, a closed socket leaves no timers behind.
    socket.once('close', () => connection.dispose());
    // Replaying from the start: nothing live reaches the socket before its replay is done.
    if (since !== undefined) connection.phase = 'replaying';
    socket.on('error', (error) => this.logger.debug(`Socket error: ${error.message}`));
    socket.on('pong', () => (connection.alive = true));
    // Requests are answered from the first frame on, even while the tier is being looked up.
    socket.on('message', (data: Buffer, isBinary: boolean) => this.onFrame(connection, data, isBinary));

    let tier;
    try {
      tier = await this.tiers.current(principal.userId);
    } catch (error) {
      this.logger.warn(`Tier lookup at connect failed: ${(error as Error).message}`);
      return connection.close('INTERNAL_ERROR');
    }
    if (!tier) return connection.close('UNAUTHORIZED');
    if (socket.readyState !== socket.OPEN) return;
    if (!this.registry.accepting) return this.goAway(connection);
    // The user's sockets on other instances: the cluster's count less this instance's at the same
    // moment (this instance's own count is read again at the registration, below).
    const mineAtRead = this.registry.countForUser(principal.userId);
    const elsewhere = (await this.cluster.userSockets(principal.userId).catch(() => mineAtRead)) - mineAtRead;
    if (socket.readyState !== socket.OPEN) return;
    if (!this.registry.accepting) return this.goAway(connection);
    // The upgrade checked the same cap, but sockets whose lookups were in flight together all passed
    // it: checked again here, in the same step as the registration, so none of them goes past it.
    if (this.upgrades.atConnectionLimit()) return connection.close('TRY_AGAIN_LATER');
    // Counted across the cluster: the cap holds whichever instances the user's sockets land on. The
    // sockets counted here are certain; other instances' counts may belong to one that just died
    // (they outlive it by up to CLUSTER_INSTANCE_TTL_MS), so that refusal tells the client to retry.
    // Both counts as of now: sockets of the same user whose lookups were in flight together each
    // see the others that registered first.
    const mine = this.registry.countForUser(principal.userId);
    if (mine >= this.maxSocketsPerUser) return connection.close('TOO_MANY_CONNECTIONS');
    if (mine + elsewhere >= this.maxSocketsPerUser) return connection.close('TOO_MANY_CONNECTIONS_IN_CLUSTER');
    // Registration and welcome happen together: every signal with a seq above `latest_seq`
    // reaches this socket, and nothing reaches it before the welcome.
    this.registry.add(connection);
    const welcomeSeq = this.fanout.deliveredSeq;
    this.coverFrom(connection, since ?? welcomeSeq);
    connection.notify('welcome', {
      user_id: principal.userId,
      tier,
      server_time: new Date().toISOString(),
      latest_seq: welcomeSeq,
      token_expires_at: expiryOf(principal),
    });
    this.scheduleTokenExpiry(connection);
    this.scheduleLifetime(connection);
    if (since !== undefined) await this.replay.resume(connection, since);
  }

  private goAway(connection: Connection): void {
    connection.notify('reconnect', { reason: 'shutdown' });
    connection.close('GOING_AWAY');
  }

  handleDisconnect(socket: WebSocket): void {
    this.registry.remove(socket);
  }

  /** Terminates sockets that did not answer the previous ping, and pings the rest. */
  private beat(): void {
    for (const connection of this.registry.all()) {
      if (!connection.alive) {
        connection.terminate();
        continue;
      }
      connection.alive = false;
      connection.socket.ping();
    }
  }

  private onFrame(connection: Connection, data: Buffer, isBinary: boolean): void {
    if (!connection.bucket.take().allowed) {
      this.rateLimited.inc({ scope: 'ws' });
      if (++connection.strikes >= this.rateStrikes) return connection.close('RATE_LIMITED');
      return connection.notify('error', { code: 'rate_limited', message: 'Too many requests; slow down' });
    }
    connection.strikes = 0;
    const receipt = isBinary ? undefined : parseReceiptFrame(data);
    if (receipt) {
      // One per socket per signal: answered here, without the general parse. Before the welcome,
      // as any request then, it is refused by `handle`.
      if (this.registry.get(connection.socket)) return this.received(connection, receipt.seq, receipt.heldMs, {});
    }
    const frame = parseClientFrame(data, isBinary);
    if (!frame.ok) {
      const { code, message, field, id } = frame;
      return connection.notify('error', { code, message, ...(field && { field }), ...(id !== undefined && { id }) });
    }
    void this.handle(connection, frame.request).catch((error: Error) => {
      this.logger.error(`Request ${frame.request.type} failed: ${error.message}`);
      connection.notify('error', { code: 'internal_error', message: 'Request failed', ...idOf(frame.request) });
    });
  }

  private async handle(connection: Connection, request: ClientRequest): Promise<void> {
    const withId = idOf(request);
    if (request.type === 'ping') return connection.notify('pong', withId);
    if (request.type === 'auth') return this.refreshToken(connection, request.token, withId);
    if (!this.registry.get(connection.socket)) {
      return connection.notify('error', { code: 'invalid_request', message: 'Wait for the welcome message', ...withId });
    }
    // Receipts are welcome during a replay too: a client acknowledges replayed signals as it goes.
    if (request.type === 'received') return this.received(connection, request.seq, request.held_ms ?? 0, withId);
    if (connection.phase === 'replaying') {
      return connection.notify('error', { code: 'replay_in_progress', message: 'Wait for replay_complete', ...withId });
    }
    switch (request.type) {
      case 'subscribe':
        this.registry.setFilter(connection, request.filters);
        connection.phase = 'live';
        return connection.notify('ack', { ...withId, subscribed: true, filters: filterToWire(connection.filter) });
      case 'unsubscribe':
        connection.phase = 'idle';
        return connection.notify('ack', { ...withId, subscribed: false });
      case 'resume':
        this.coverFrom(connection, request.since);
        return this.replay.resume(connection, request.since, request.id);
    }
  }

  /**
   * `received`: the client processed everything sent on this socket up to `seq`. It covers the
   * socket's signals from where it started (`coveredFrom`) to `seq`. A receipt for the newest live
   * signal this socket was sent measures its delivery latency: commit to receipt, less the time
   * the client says it held the receipt (`held_ms`: the SDK holds one up to 250 ms in a burst),
   * an upper bound that includes the receipt's way back. Older or repeated receipts move nothing.
   */
  private received(connection: Connection, seq: number, heldMs: number, withId: { id?: string | number }): void {
    // Never past what this socket was handed, nor past what this instance delivered (a resume
    // position from the future sets `lastSeq` without anything having been sent).
    const sent = Math.min(connection.lastSeq, this.fanout.deliveredSeq);
    if (seq > sent) {
      return connection.notify('error', {
        code: 'invalid_request',
        message: `seq: ${seq} is past the last signal sent on this socket (${sent})`,
        field: 'seq',
        ...withId,
      });
    }
    const at = Date.now();
    // At or below where this socket started: a receipt an earlier socket still owed (the SDK sends
    // it after the replay); it acknowledges what that socket was sent, up to `seq`.
    if (seq <= connection.coveredFrom) return this.receipts.owed(connection.userId, seq, at);
    if (seq <= connection.receivedSeq) return;
    connection.receivedSeq = seq;
    const committed = seq === connection.sentSeq ? this.fanout.commitTimeOf(seq) : undefined;
    // The SDK holds a receipt at most one window (250 ms): a larger `held_ms` is not taken off.
    const latencyMs = committed === undefined ? undefined : Math.max(0, at - committed - Math.min(heldMs, RECEIPT_WINDOW_MS));
    this.withTier({ userId: connection.userId, from: connection.coveredFrom, seq, at, latencyMs });
  }

  /**
   * Records a receipt with the user's tier: cached, or looked up with the other uncached users'
   * receipts of this turn in one query (after a while of free signals only, tiers fall out of the
   * cache, and a broadcast's receipts all arrive together).
   */
  private withTier(receipt: PendingReceipt): void {
    const tier = this.tiers.peek(receipt.userId);
    if (tier) return this.receipts.received({ ...receipt, tier });
    const waiting = this.awaitingTier.get(receipt.userId);
    if (waiting) return void waiting.push(receipt);
    this.awaitingTier.set(receipt.userId, [receipt]);
    if (this.awaitingTier.size > 1) return;
    setImmediate(() => {
      const batch = new Map(this.awaitingTier);
      this.awaitingTier.clear();
      const record = (tiers: Map<string, Tier>) => {
        for (const [userId, receipts] of batch) for (const one of receipts) this.receipts.received({ ...one, tier: tiers.get(userId) });
      };
      this.tiers.getMany(batch.keys()).then(record, () => record(new Map()));
    });
  }

  /**
   * Where this socket's receipts start to cover: its resume position, or the seq current at its
   * welcome (never past what this instance delivered). A resume position is not an acknowledgement
   * by itself: a client may start from a position it never reached (the SDK's `history`, a polled
   * `latest_seq`), and what lies before it was never sent to this socket.
   */
  private coverFrom(connection: Connection, seq: number): void {
    connection.coveredFrom = Math.min(seq, this.fanout.deliveredSeq);
    connection.receivedSeq = Math.max(connection.receivedSeq, connection.coveredFrom);
  }

  /** `auth`: a fresh token for the same user extends the connection; anything else is refused. */
  private refreshToken(connection: Connection, token: string, withId: { id?: string | number }): void {
    const principal = this.auth.authenticateToken(token);
    if (!principal) {
      return connection.notify('error', { code: 'invalid_token', message: 'Invalid or expired token', field: 'token', ...withId });
    }
    if (principal.userId !== connection.userId) {
      return connection.notify('error', {
        code: 'token_user_mismatch',
        message: 'The token belongs to another user',
        field: 'token',
        ...withId,
      });
    }
    connection.principal = principal;
    this.scheduleTokenExpiry(connection);
    connection.notify('ack', { ...withId, token_expires_at: expiryOf(principal) ?? undefined });
  }

  /** Warns before the token's `exp`, and closes the socket at `exp` unless a refresh came first. */
  private scheduleTokenExpiry(connection: Connection): void {
    for (const timer of connection.tokenTimers) connection.cancel(timer);
    const expiresAt = connection.principal.tokenExpiresAt;
    if (expiresAt === undefined) return;
    const left = expiresAt * 1000 - Date.now();
    connection.tokenTimers = [
      connection.later(left - this.tokenExpiryWarningMs, () =>
        connection.notify('token_expiring', { expires_at: new Date(expiresAt * 1000).toISOString() }),
      ),
      connection.later(left, () => connection.close('TOKEN_EXPIRED')),
    ];
  }

  /** With a maximum lifetime, each socket is asked to reconnect once it is reached (±10 % jitter). */
  private scheduleLifetime(connection: Connection): void {
    if (this.maxLifetimeMs <= 0) return;
    connection.later(this.maxLifetimeMs * (0.9 + Math.random() * 0.1), () => {
      connection.notify('reconnect', { reason: 'max_lifetime' });
      connection.close('RECONNECT');
    });
  }
}

type TierCounts = { sockets: [{ tier: Tier }, number][]; users: [{ tier: Tier }, number][] };

/** How long the SDK holds a receipt at most (its window during a burst). */
const RECEIPT_WINDOW_MS = 250;

type PendingReceipt = { userId: string; from: number; seq: number; at: number; latencyMs?: number };

const idOf = (request: { id?: string | number }) => (request.id === undefined ? {} : { id: request.id });
const expiryOf = (principal: Principal) =>
  principal.tokenExpiresAt === undefined ? null : new Date(principal.tokenExpiresAt * 1000).toISOString();
