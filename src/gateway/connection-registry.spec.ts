import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { InProcessClusterState } from '../bus/in-process-cluster.js';
import { TokenBucket } from '../common/rate-limiter.js';
import type { SignalFilter } from '../signals/signal-filter.js';
import { ConnectionRegistry } from './connection-registry.js';
import { Connection } from './connection.js';

const connection = (userId: string) =>
  new Connection({} as WebSocket, { userId, role: 'subscriber', tokenExpiresAt: 0 }, TokenBucket.perSecond(1, 1));
const follows = (...symbols: string[]): SignalFilter => ({ symbols: new Set(symbols) });
const audience = (registry: ConnectionRegistry, symbol: string) =>
  registry
    .audienceOf(symbol)
    .flatMap((sockets) => [...sockets].map((c) => c.userId))
    .sort();

describe('ConnectionRegistry symbol index', () => {
  it('offers a symbol only to its followers and to sockets that name no symbol', () => {
    const registry = new ConnectionRegistry(new InProcessClusterState('test'));
    const btc = connection('btc');
    registry.setFilter(btc, follows('BTCUSDT'));
    const both = connection('both');
    registry.setFilter(both, follows('BTCUSDT', 'ETHUSDT'));
    const everything = connection('everything');
    const longsOnly = connection('longs');
    registry.setFilter(longsOnly, { sides: new Set(['long']) });
    for (const c of [btc, both, everything, longsOnly]) registry.add(c);

    expect(audience(registry, 'BTCUSDT')).toEqual(['both', 'btc', 'everything', 'longs']);
    expect(audience(registry, 'ETHUSDT')).toEqual(['both', 'everything', 'longs']);
    expect(audience(registry, 'SOLUSDT')).toEqual(['everything', 'longs']);
  });

  it('moves a socket when its filter changes and forgets it when it goes', () => {
    const registry = new ConnectionRegistry(new InProcessClusterState('test'));
    const socket = connection('a');
    registry.add(socket);
    registry.setFilter(socket, follows('ETHUSDT'));
    expect(audience(registry, 'BTCUSDT')).toEqual([]);
    expect(audience(registry, 'ETHUSDT')).toEqual(['a']);
    registry.setFilter(socket, undefined);
    expect(audience(registry, 'BTCUSDT')).toEqual(['a']);
    registry.setFilter(socket, follows('SOLUSDT'));
    registry.remove(socket.socket);
    expect(audience(registry, 'SOLUSDT')).toEqual([]);
    expect(audience(registry, 'BTCUSDT')).toEqual([]);
  });
});
