import { Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { WebSocket } from 'ws';
import { TierCache } from '../auth/tier-cache.service.js';
import { MessageBus, type Unsubscribe } from '../bus/bus.types.js';
import type { Tier } from '../generated/prisma/enums.js';
import { canSee } from '../signals/entitlement.js';
import type { SignalEvent } from '../signals/signal.types.js';
import { ConnectionRegistry, type Connection } from './connection-registry.js';
import { encode } from './ws-messages.js';

/**
 * Delivers bus events to this instance's sockets: each message is serialized once and the same
 * bytes go to every eligible socket. Events are delivered strictly in the order received; a tier
 * lookup (one query for all uncached users) only delays the events behind it.
 */
@Injectable()
export class FanoutService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(FanoutService.name);
  private unsubscribe?: Unsubscribe;
  private chain: Promise<void> = Promise.resolve();
  signalsBroadcast = 0;
  messagesDelivered = 0;

  constructor(
    private readonly bus: MessageBus,
    private readonly registry: ConnectionRegistry,
    private readonly tiers: TierCache,
  ) {}

  onModuleInit(): void {
    this.unsubscribe = this.bus.onSignal((event) => {
      this.chain = this.chain.then(() => this.deliver(event)).catch((error: Error) => {
        this.logger.error(`Delivering seq ${event.seq} failed: ${error.message}`);
      });
    });
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
  }

  /** Resolves when every event received so far has been handed to the sockets. */
  idle(): Promise<void> {
    return this.chain;
  }

  private async deliver(event: SignalEvent): Promise<void> {
    const bytes = Buffer.from(encode(event.type, event.signal));
    this.signalsBroadcast++;
    if (event.minTier === 'free') {
      for (const connection of this.registry.all()) this.send(connection, bytes);
      return;
    }
    let tiers: Map<string, Tier>;
    try {
      tiers = await this.tiersOfConnectedUsers();
    } catch (error) {
      // The database is unreachable: gate with what the cache holds rather than stall everyone.
      this.logger.warn(`Tier lookup failed, delivering seq ${event.seq} by cached tiers: ${(error as Error).message}`);
      tiers = this.tiers.cached(this.registry.userIds());
    }
    for (const [userId, tier] of tiers) {
      if (!canSee(tier, event.minTier)) continue;
      for (const connection of this.registry.socketsOf(userId) ?? []) this.send(connection, bytes);
    }
  }

  /** Cached tiers of every connected user; all misses together cost one query. */
  async tiersOfConnectedUsers(): Promise<Map<string, Tier>> {
    return this.tiers.getMany(this.registry.userIds());
  }

  private send(connection: Connection, bytes: Buffer): void {
    const { socket } = connection;
    if (socket.readyState !== WebSocket.OPEN) return;
    try {
      socket.send(bytes, { binary: false });
      this.messagesDelivered++;
    } catch (error) {
      this.logger.warn(`Dropping a failing socket: ${(error as Error).message}`);
      this.registry.remove(socket);
      socket.terminate();
    }
  }
}
