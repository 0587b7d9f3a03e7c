import { Injectable } from '@nestjs/common';
import type { WebSocket } from 'ws';
import { ClusterState } from '../bus/bus.types.js';
import type { Connection } from './connection.js';

/**
 * Open sockets indexed by user, so a broadcast walks users, never a flat list of sockets. Every
 * add and remove is told to the cluster state, which counts each user's sockets cluster-wide.
 */
@Injectable()
export class ConnectionRegistry {
  private readonly byUser = new Map<string, Set<Connection>>();
  private readonly bySocket = new Map<WebSocket, Connection>();
  /** False once shutdown has begun: new upgrades are refused. */
  accepting = true;

  constructor(private readonly cluster: ClusterState) {}

  add(connection: Connection): void {
    this.bySocket.set(connection.socket, connection);
    let sockets = this.byUser.get(connection.userId);
    if (!sockets) this.byUser.set(connection.userId, (sockets = new Set()));
    sockets.add(connection);
    this.cluster.socketOpened(connection.userId);
  }

  /** Returns the removed connection, or undefined if it was already gone. */
  remove(socket: WebSocket): Connection | undefined {
    const connection = this.bySocket.get(socket);
    if (!connection) return undefined;
    this.bySocket.delete(socket);
    const sockets = this.byUser.get(connection.userId);
    sockets?.delete(connection);
    if (sockets?.size === 0) this.byUser.delete(connection.userId);
    connection.dispose();
    this.cluster.socketClosed(connection.userId);
    return connection;
  }

  get(socket: WebSocket): Connection | undefined {
    return this.bySocket.get(socket);
  }

  countForUser(userId: string): number {
    return this.byUser.get(userId)?.size ?? 0;
  }

  get connectionCount(): number {
    return this.bySocket.size;
  }

  get userCount(): number {
    return this.byUser.size;
  }

  userIds(): IterableIterator<string> {
    return this.byUser.keys();
  }

  socketsOf(userId: string): ReadonlySet<Connection> | undefined {
    return this.byUser.get(userId);
  }

  all(): IterableIterator<Connection> {
    return this.bySocket.values();
  }
}
