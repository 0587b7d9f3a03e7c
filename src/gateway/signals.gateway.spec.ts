import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { describe, expect, it, vi } from 'vitest';
import type { WebSocket } from 'ws';
import type { AuthService } from '../auth/auth.service.js';
import type { TierCache } from '../auth/tier-cache.service.js';
import { InProcessClusterState } from '../bus/in-process-cluster.js';
import type { AppConfig } from '../config/app-config.js';
import type { Tier } from '../generated/prisma/enums.js';
import { Metrics } from '../metrics/metrics.js';
import type { DeliveryReceipts } from '../receipts/delivery-receipts.service.js';
import { strictMock } from '../testing/strict-mock.js';
import { ConnectionRegistry } from './connection-registry.js';
import type { FanoutService } from './fanout.service.js';
import type { ReplayService } from './replay.service.js';
import { SignalsGateway } from './signals.gateway.js';
import { UpgradeAuthenticator } from './upgrade-authenticator.js';

// The process's descriptors as the connection cap reads them: a soft limit of 60 open files, 10 open.
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const readFileSync = ((path: unknown, ...rest: unknown[]) =>
    path === '/proc/self/limits'
      ? 'Limit                     Soft Limit           Hard Limit           Units     \n' +
        'Max open files            60                   4096                 files     \n'
      : (fs.readFileSync as (...args: unknown[]) => unknown)(path, ...rest)) as typeof fs.readFileSync;
  const readdirSync = ((path: unknown, ...rest: unknown[]) =>
    path === '/proc/self/fd'
      ? Array.from({ length: 10 }, (_, fd) => String(fd))
      : (fs.readdirSync as (...args: unknown[]) => unknown)(path, ...rest)) as typeof fs.readdirSync;
  return { ...fs, default: { ...fs, readFileSync, readdirSync }, readFileSync, readdirSync };
});

/** 60 descriptors - (10 open + 10 for the pool + 2 for Redis + a margin of 32) = 6 sockets. */
const DESCRIPTOR_CAP = 6;

const CONFIG: Record<string, unknown> = {
  CORS_ORIGINS: [],
  DB_POOL_SIZE: 10,
  WS_MAX_CONNECTIONS: 1000,
  WS_MAX_SOCKETS_PER_USER: 5,
  WS_HEARTBEAT_INTERVAL_MS: 30_000,
  WS_TOKEN_EXPIRY_WARNING_MS: 60_000,
  WS_MAX_CONNECTION_LIFETIME_MS: 0,
  WS_RATE_LIMIT_PER_SECOND: 20,
  WS_RATE_LIMIT_BURST: 40,
  WS_RATE_LIMIT_STRIKES: 20,
};

class FakeSocket extends EventEmitter {
  readonly OPEN = 1;
  readonly CLOSED = 3;
  readyState = 1;
  sent: string[] = [];
  closedWith?: number;
  send(text: string): void {
    this.sent.push(text);
  }
  close(code: number): void {
    this.closedWith = code;
    this.readyState = 2;
  }
  terminate(): void {
    this.readyState = 3;
  }
  ping(): void {}
}

/** A cluster where other instances hold `elsewhere` sockets of every user (live or not: their counts outlive them by up to the TTL). */
class ClusterWithOthers extends InProcessClusterState {
  elsewhere = 0;
  override async userSockets(userId: string): Promise<number> {
    return (await super.userSockets(userId)) + this.elsewhere;
  }
}

function setup() {
  const config = strictMock<AppConfig>({ get: ((key: string) => CONFIG[key]) as AppConfig['get'] });
  const cluster = new ClusterWithOthers('test');
  const registry = new ConnectionRegistry(cluster);
  const auth = strictMock<AuthService>({ authenticateToken: (token: string) => ({ userId: token, role: 'subscriber' }) });
  const authenticator = new UpgradeAuthenticator(auth, registry, config, new Metrics());
  let releaseTiers!: () => void;
  const tiersHeld = new Promise<void>((resolve) => (releaseTiers = resolve));
  const tiers = strictMock<TierCache>({
    current: async (): Promise<Tier> => {
      await tiersHeld;
      return 'free';
    },
  });
  const fanout = { deliveredSeq: 0 } as FanoutService;
  const gateway = new SignalsGateway(
    registry,
    tiers,
    fanout,
    auth,
    strictMock<ReplayService>(),
    cluster,
    config,
    authenticator,
    new Metrics(),
    strictMock<DeliveryReceipts>(),
  );
  /** An upgrade that passes the authenticator, then its connection handled by the gateway. */
  const upgrade = (userId: string) => {
    const request = { url: `/ws/signals?token=${userId}`, headers: {} } as IncomingMessage;
    const decision = authenticator.authenticate(request);
    if (!decision.ok) throw new Error(`upgrade refused: ${decision.status}`);
    const socket = new FakeSocket();
    return { socket, handled: gateway.handleConnection(socket as unknown as WebSocket, request) };
  };
  return { config, registry, cluster, upgrade, releaseTiers };
}

describe('SignalsGateway', () => {
  it('holds sockets that raced through the upgrade check to the cap the descriptors allow, not to WS_MAX_CONNECTIONS', async () => {
    const { registry, upgrade, releaseTiers } = setup();
    // Every upgrade passes while none is registered yet: their tier lookups are all in flight.
    const upgrades = Array.from({ length: DESCRIPTOR_CAP + 2 }, (_, i) => upgrade(`user${i}`));
    releaseTiers();
    await Promise.all(upgrades.map(({ handled }) => handled));
    expect(registry.connectionCount).toBe(DESCRIPTOR_CAP);
    expect(upgrades.map(({ socket }) => socket.closedWith ?? 'open')).toEqual([...Array<string>(DESCRIPTOR_CAP).fill('open'), 1013, 1013]);
  });

  it('reads its configuration once, when it is built', async () => {
    const { config, upgrade, releaseTiers } = setup();
    const readsAtStart = config.get.mock.calls.length;
    const { socket, handled } = upgrade('reader');
    releaseTiers();
    await handled;
    socket.emit('message', Buffer.from(JSON.stringify({ type: 'ping', id: 1 })), false);
    await vi.waitFor(() => expect(socket.sent.map((text) => JSON.parse(text).type)).toEqual(['welcome', 'pong']));
    expect(config.get.mock.calls.length).toBe(readsAtStart);
  });

  it("refuses a user's socket past the cap with 4529 when this instance holds them, with 4429 (retry later) when others do", async () => {
    const { cluster, upgrade, releaseTiers } = setup();
    releaseTiers();
    // Other instances' counts may belong to one that just died (they outlive it by up to the TTL):
    // the client is told to retry, not to give up.
    cluster.elsewhere = 5;
    const counted = upgrade('busy');
    await counted.handled;
    expect(counted.socket.closedWith).toBe(4429);

    cluster.elsewhere = 0;
    const here = Array.from({ length: 6 }, () => upgrade('local'));
    for (const { handled } of here) await handled;
    expect(here.map(({ socket }) => socket.closedWith ?? 'open')).toEqual([...Array<string>(5).fill('open'), 4529]);
  });

  it("holds a user's sockets whose lookups were in flight together to the cap across the cluster", async () => {
    const { cluster, upgrade, releaseTiers } = setup();
    cluster.elsewhere = 3;
    const racing = Array.from({ length: 4 }, () => upgrade('racer'));
    releaseTiers();
    for (const { handled } of racing) await handled;
    expect(racing.map(({ socket }) => socket.closedWith ?? 'open')).toEqual(['open', 'open', 4429, 4429]);
  });
});
