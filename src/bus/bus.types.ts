import { z } from 'zod';
import { utcTimestamp } from '../common/wire-schemas.js';
import type { Tier } from '../generated/prisma/enums.js';
import { latencyWindowSchema } from '../receipts/latency-window.js';
import type { SignalEvent } from '../signals/signal.types.js';

/** A committed change to a user that every instance must apply to its caches. */
export interface UserChange {
  userId: string;
  /** The new tier; absent when the tier did not change. */
  tier?: Tier;
  /** The user's role or API keys changed: cached credentials must be dropped. */
  credentialsChanged?: boolean;
}

export type Unsubscribe = () => void;

/** `in-process`: single instance; `up`/`down`: the shared bus (Redis) is reachable or not. */
export const busStatusSchema = z.enum(['in-process', 'up', 'down']);
export type BusStatus = z.infer<typeof busStatusSchema>;

/**
 * Fan-out between instances. The instance that stores a signal publishes it once; every instance
 * (itself included) receives it through `onSignal` and delivers it to its own sockets.
 *
 * Contract (checked against every implementation by `message-bus.contract.ts`):
 * - the publishing instance's own handlers run synchronously inside `publish*`, before it returns,
 *   and never again for the same message: local delivery does not depend on the shared bus;
 * - other instances' handlers run in publish order per publisher;
 * - delivery to other instances is at most once; a lost message is detected by its `seq` (the
 *   fan-out refills gaps from the database) and `onRecover` tells when the bus came back.
 */
export abstract class MessageBus {
  abstract publishSignal(event: SignalEvent): Promise<void>;
  abstract onSignal(handler: (event: SignalEvent) => void): Unsubscribe;
  /**
   * Tier changes, role changes and key revocations, so that every instance applies them at once.
   * Rejects if the other instances could not be told (the shared bus is unreachable).
   */
  abstract publishUserChange(change: UserChange): Promise<void>;
  abstract onUserChange(handler: (change: UserChange) => void): Unsubscribe;
  /**
   * Resolves once every message published on the shared bus before this call has been handed to
   * this instance's handlers: a tier change answered anywhere before a signal was committed is
   * applied here before that signal is delivered. Rejects when that cannot be known in time; the
   * bus then reports `down` until it has reconnected and recovered, so nothing trusts what it may
   * have missed meanwhile.
   */
  abstract fence(): Promise<void>;
  /** Called after the shared bus recovers from an outage (messages may have been missed). */
  abstract onRecover(handler: () => void): Unsubscribe;
  abstract status(): BusStatus;
}

const count = z.int().min(0);

/** One instance's live numbers, as `/ws/stats` shows them. */
export const instanceSnapshotSchema = z.object({
  instance_id: z.string(),
  total_connections: count,
  active_users: count,
  signals_broadcast: count,
  messages_delivered: count,
  slow_consumers_disconnected: count,
  /** Signals this instance delivered from the database because their bus message was missed. */
  gaps_refilled: count,
  /** Sync groups this instance read and planned again because another instance wrote first. */
  write_conflicts: count,
  delivered_seq: count,
  /** The process's resident memory and V8 heap in use, when the snapshot was taken. */
  rss_bytes: count,
  heap_used_bytes: count,
  /** Event-loop delay since the previous snapshot (how late timers and I/O callbacks ran). */
  event_loop_delay_ms: z.object({ p50: z.number().min(0), p99: z.number().min(0), max: z.number().min(0) }),
  started_at: utcTimestamp,
  reported_at: utcTimestamp,
  /** Delivery latencies of the last 5 minutes in fixed buckets, per tier (instances' windows add up). */
  delivery_latency: latencyWindowSchema.optional(),
});

export type InstanceSnapshot = z.infer<typeof instanceSnapshotSchema>;

/**
 * What the instances of a cluster know of each other: who is alive, their numbers, and the
 * sockets each user holds across all of them. An instance that stops reporting drops out after
 * a bounded time (`CLUSTER_INSTANCE_TTL_MS`).
 */
export abstract class ClusterState {
  abstract readonly instanceId: string;
  /** This instance opened / closed a socket for the user. */
  abstract socketOpened(userId: string): void;
  abstract socketClosed(userId: string): void;
  /** Sockets the user holds on every live instance, this one included. */
  abstract userSockets(userId: string): Promise<number>;
  /** Users with at least one socket on any live instance. */
  abstract connectedUsers(): Promise<Set<string>>;
  /** Publishes this instance's numbers (called periodically and on demand). */
  abstract report(snapshot: InstanceSnapshot): Promise<void>;
  /** The latest numbers of every live instance. */
  abstract instances(): Promise<InstanceSnapshot[]>;
  /** Graceful shutdown: drop out of the cluster now instead of after the TTL. */
  abstract leave(): Promise<void>;
}
