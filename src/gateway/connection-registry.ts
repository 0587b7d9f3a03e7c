import { Injectable } from '@nestjs/common';
import type { WebSocket } from 'ws';
import { ClusterState } from '../bus/bus.types.js';
import type { SignalFilter } from '../signals/signal-filter.js';
import type { Connection } from './connection.js';

/**
 * Open sockets indexed by user (per-user caps, tier changes) and by the symbols their filter
 * follows, so a broadcast visits only the sockets that may want its symbol, never every socket.
 * Every add and remove is told to the cluster state, which counts each user's sockets cluster-wide.
 * A connection leaves when its socket has closed, and already when the server starts closing it
 * (`Connection.close`): a socket in its close handshake is neither delivered to nor counted.
 */
@Injectable()
export class ConnectionRegistry {
  private readonly byUser = new Map<string, Set<Connection>>();
  private readonly bySocket = new Map<WebSocket, Connection>();
  /** Sockets whose filter names symbols, by each symbol it names. */
  private readonly bySymbol = new Map<string, Set<Connection>>();
  /** Sockets whose filter names no symbol: every symbol may concern them. */
  private readonly anySymbol = new Set<Connection>();
  /** False once shutdown has begun: new upgrades are refused. */
  accepting = true;

  constructor(private readonly cluster: ClusterState) {}

  add(connection: Connection): void {
    this.bySocket.set(connection.socket, connection);
    let sockets = this.byUser.get(connection.userId);
    if (!sockets) this.byUser.set(connection.userId, (sockets = new Set()));
    sockets.add(connection);
    this.index(connection);
    connection.registered(() => this.remove(connection.socket));
    this.cluster.socketOpened(connection.userId);
  }

  /** Sets a connection's filter, registered or not, keeping the symbol index in step. */
  setFilter(connection: Connection, filter: SignalFilter | undefined): void {
    const registered = this.bySocket.get(connection.socket) === connection;
    if (registered) this.unindex(connection);
    connection.filter = filter;
    if (registered) this.index(connection);
  }

  /**
   * The sockets a signal of this symbol may concern (their filter's other criteria, their tier and
   * their phase are still to be checked), as disjoint sets.
   */
  audienceOf(symbol: string): ReadonlySet<Connection>[] {
    const followers = this.bySymbol.get(symbol);
    return followers ? [this.anySymbol, followers] : [this.anySymbol];
  }

  private index(connection: Connection): void {
    const symbols = connection.filter?.symbols;
    if (!symbols) return void this.anySymbol.add(connection);
    for (const symbol of symbols) {
      let followers = this.bySymbol.get(symbol);
      if (!followers) this.bySymbol.set(symbol, (followers = new Set()));
      followers.add(connection);
    }
  }

  private unindex(connection: Connection): void {
    this.anySymbol.delete(connection);
    for (const symbol of connection.filter?.symbols ?? []) {
      const followers = this.bySymbol.get(symbol);
      followers?.delete(connection);
      if (followers?.size === 0) this.bySymbol.delete(symbol);
    }
  }

  /** Returns the removed connection, or undefined if it was already gone. */
  remove(socket: WebSocket): Connection | undefined {
    const connection = this.bySocket.get(socket);
    if (!connection) return undefined;
    this.bySocket.delete(socket);
    const sockets = this.byUser.get(connection.userId);
    sockets?.delete(connection);
    if (sockets?.size === 0) this.byUser.delete(connection.userId);
    this.unindex(connection);
    connection.registered(undefined);
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

  all(): IterableIterator<Connection> {
    return this.bySocket.values();
  }
}
