import { Logger } from '@nestjs/common';
import type { SignalEvent } from '../signals/signal.types.js';
import { MessageBus, type BusStatus, type UserChange, type Unsubscribe } from './bus.types.js';
import type { RedisClients } from './redis-clients.js';
import { Subscribers } from './subscribers.js';

type Envelope = { o: string; s: SignalEvent } | { o: string; u: UserChange };

/** Longer than any healthy round trip to Redis; past it, what the subscriber holds is not trusted. */
const FENCE_TIMEOUT_MS = 1_000;

/**
 * Redis pub/sub between instances. Everything goes through one channel, so every instance sees
 * the messages in the order Redis received them (a tier change published before a signal is
 * applied before it). Local handlers run first and directly, so this instance keeps serving its
 * sockets while Redis is down; messages from Redis that this instance sent are ignored.
 */
export class RedisBus extends MessageBus {
  private readonly logger = new Logger(RedisBus.name);
  private readonly signals = new Subscribers<SignalEvent>();
  private readonly users = new Subscribers<UserChange>();
  private readonly recovered = new Subscribers<void>();
  private readonly channel: string;
  /** True until the first connection too, so the first `ready` triggers a catch-up. */
  private wasDown = true;
  /**
   * Until the subscription is confirmed after a (re)connect, or after a fence timed out (the
   * subscriber may be silently dead or far behind): the bus counts as down.
   */
  private unverified = true;

  constructor(
    private readonly redis: RedisClients,
    prefix: string,
    private readonly instanceId: string,
  ) {
    super();
    this.channel = `${prefix}bus`;
    const { subscriber } = redis;
    subscriber.on('message', (_channel: string, raw: string) => this.receive(raw));
    subscriber.on('close', () => {
      this.wasDown = true;
      this.unverified = true;
    });
    subscriber.on('ready', () => {
      if (!this.wasDown) return;
      this.wasDown = false;
      // The PONG comes after the re-subscription is in force: from then on nothing is missed, and
      // what was missed before is read from the database by the recover handlers.
      void this.confirmSubscription().then((confirmed) => {
        if (!confirmed) return; // the connection dropped again: the next `ready` retries
        this.unverified = false;
        this.logger.log('Connected to Redis: catching up from the database');
        this.recovered.emit(undefined, (error) => this.logger.error(`Recover handler failed: ${String(error)}`));
      });
    });
  }

  /** Subscribes; resolves once Redis confirmed (or rejects if it cannot be reached now). */
  async connect(): Promise<void> {
    await this.redis.subscriber.subscribe(this.channel);
  }

  async publishSignal(event: SignalEvent): Promise<void> {
    this.signals.emit(event, this.logHandlerError);
    // Not awaited: the write loop never waits on Redis (commands go out in call order anyway).
    this.send({ o: this.instanceId, s: event });
  }

  onSignal(handler: (event: SignalEvent) => void): Unsubscribe {
    return this.signals.add(handler);
  }

  /** Awaited (bounded by the command timeout): an admin change is sent before it is answered. */
  async publishUserChange(change: UserChange): Promise<void> {
    this.users.emit(change, this.logHandlerError);
    await this.redis.command.publish(this.channel, JSON.stringify({ o: this.instanceId, u: change } satisfies Envelope));
  }

  /**
   * Waits until the subscription is in force: a subscribed connection answers PING with
   * `["pong", ""]`, one not subscribed yet with `PONG`.
   */
  private async confirmSubscription(): Promise<boolean> {
    for (;;) {
      const reply: unknown = await this.redis.subscriber.ping().catch(() => undefined);
      if (Array.isArray(reply)) return true;
      if (reply === undefined || this.redis.subscriber.status !== 'ready') return false;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /**
   * A PING on the subscriber connection: Redis answers it after every message it had already
   * pushed to this subscriber, so once the PONG is read, every earlier publish has been handled.
   */
  async fence(): Promise<void> {
    if (this.unverified) throw new Error('The Redis subscription is not confirmed');
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.redis.subscriber.ping(),
        new Promise(
          (_, reject) => (timer = setTimeout(() => reject(new Error('Redis did not answer the fence in time')), FENCE_TIMEOUT_MS)),
        ),
      ]);
    } catch (error) {
      if (!this.unverified) {
        this.unverified = true;
        this.logger.warn(`${(error as Error).message}: the bus counts as down until the subscriber reconnects`);
        this.redis.subscriber.disconnect(true);
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  onUserChange(handler: (change: UserChange) => void): Unsubscribe {
    return this.users.add(handler);
  }

  onRecover(handler: () => void): Unsubscribe {
    return this.recovered.add(handler);
  }

  status(): BusStatus {
    return this.redis.up && !this.unverified ? 'up' : 'down';
  }

  /**
   * At most once. A lost signal is found by seq and refilled from the database; a lost user change
   * is covered by every instance flushing its caches when its bus recovers.
   */
  private send(envelope: Envelope): Promise<void> {
    return this.redis.command.publish(this.channel, JSON.stringify(envelope)).then(
      () => undefined,
      (error: Error) => this.logger.warn(`Publish to Redis failed: ${error.message}`),
    );
  }

  private receive(raw: string): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(raw) as Envelope;
    } catch {
      this.logger.warn('Ignoring a malformed bus message');
      return;
    }
    if (envelope.o === this.instanceId) return;
    if ('s' in envelope) this.signals.emit(envelope.s, this.logHandlerError);
    else if ('u' in envelope) this.users.emit(envelope.u, this.logHandlerError);
  }

  private readonly logHandlerError = (error: unknown) => this.logger.error(`Bus handler failed: ${String(error)}`);
}
