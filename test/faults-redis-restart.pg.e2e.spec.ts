import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api, flush, markerBody, signalBody, WsClient } from './support/clients.js';
import { createProvider, createUser, filterQuery, Ledger, LogicalSubscriber, type Filter, type Tier } from './support/ledger.js';
import { sleep, startRedisServer, stopAll, waitFor, type ManagedProcess } from './support/processes.js';
import { createTestDatabase, startApp, type TestApp, type TestDatabase } from './support/test-app.js';

const ACCEPTED_BEFORE_KILL = 30;
const ACCEPTED_AFTER_RESTART = 30;
const DOWN_FOR_MS = 2_000;

const within = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([promise, sleep(ms).then(() => Promise.reject(new Error(`${what} took over ${ms} ms`)))]);

/**
 * Two instances (in-process) on the shared PostgreSQL and a `redis-server` of this test's own,
 * which is SIGKILLed mid-stream and replaced by a new, empty one on the same port after ~2 s. The
 * instances' periodic catch-up is set to a minute, so what B's sockets get of the signals published
 * while Redis was gone comes from the refill on reconnect and on the next seq jump.
 */
describe('Redis restarted (SIGKILL, then a new server) during a stream of syncs', () => {
  let redis: ManagedProcess & { port: number };
  let database: TestDatabase;
  let a: TestApp;
  let b: TestApp;
  let apiA: Api;
  let apiB: Api;

  beforeAll(async () => {
    redis = await startRedisServer();
    database = await createTestDatabase();
    if (!database.url) throw new Error('this file runs on PostgreSQL only (vitest project e2e-postgres)');
    const common = {
      REDIS_URL: `redis://127.0.0.1:${redis.port}`,
      REDIS_KEY_PREFIX: `sc-test-redis-restart-${randomBytes(4).toString('hex')}:`,
      CLUSTER_REPORT_INTERVAL_MS: '200',
      CLUSTER_INSTANCE_TTL_MS: '1500',
      BUS_CATCHUP_INTERVAL_MS: '60000',
    };
    a = await startApp(database, { ...common, INSTANCE_ID: 'inst-a' });
    b = await startApp(database, { ...common, INSTANCE_ID: 'inst-b' });
    apiA = new Api(a);
    apiB = new Api(b);
  }, 60_000);

  afterAll(async () => {
    // Closing an instance talks to Redis: bounded, in case a failure left Redis down.
    await Promise.all([a, b].map((app) => (app ? within(app.close(), 10_000, 'closing an instance').catch(() => undefined) : undefined)));
    await stopAll();
    await database?.drop();
  });

  it('keeps accepting, reports degraded, fills B from the database, and applies later tier changes on B', { timeout: 60_000 }, async () => {
    const started = Date.now();
    const provider = await createProvider(apiA);
    const admin = await apiA.admin();

    const plan: { tier: Tier; filter?: Filter; on: 'a' | 'b' }[] = [
      { tier: 'pro', on: 'b' },
      { tier: 'free', on: 'b' },
      { tier: 'elite', filter: { symbols: ['ETHUSDT', 'MARKER'] }, on: 'b' },
      { tier: 'basic', filter: { minConfidence: 70 }, on: 'b' },
      { tier: 'elite', on: 'a' },
      { tier: 'free', on: 'a' },
    ];
    const subscribers = await Promise.all(
      plan.map(async ({ tier, filter, on }, i) => {
        const user = await createUser(apiA, tier);
        const subscriber = new LogicalSubscriber(`${tier}#${i}@${on}${filterQuery(filter)}`, tier, user.token, filter);
        const app = on === 'a' ? a : b;
        subscriber.legs.push({ client: await WsClient.connect(app.wsUrl + filterQuery(filter), { token: user.token }), instance: on });
        return subscriber;
      }),
    );
    const sockets = subscribers.map((s) => s.current.client);

    // /health of both instances, every 100 ms.
    const health: { at: number; instance: 'a' | 'b'; code: number; status?: string; bus?: string }[] = [];
    let watching = true;
    const watch = async (instance: 'a' | 'b', app: TestApp) => {
      while (watching) {
        try {
          const response = await fetch(`${app.baseUrl}/health`, { signal: AbortSignal.timeout(5_000) });
          const body = (await response.json()) as { status?: string; bus?: string };
          health.push({ at: Date.now(), instance, code: response.status, status: body.status, bus: body.bus });
        } catch (error) {
          health.push({ at: Date.now(), instance, code: -1, status: (error as Error).message });
        }
        await sleep(100);
      }
    };
    const watchers = Promise.all([watch('a', a), watch('b', b)]);
    const latest = (instance: 'a' | 'b') => health.findLast((h) => h.instance === instance);
    await waitFor(() => latest('a')?.bus === 'up' && latest('b')?.bus === 'up', 5_000, 'the instances did not report bus up');

    // One provider syncing through A without pause: creates, and an amendment every fifth sync.
    const ledger = new Ledger();
    const syncs: { at: number; status: number }[] = [];
    const unexpected: string[] = [];
    let stop = false;
    const producer = (async () => {
      const bodies: Record<string, unknown>[] = [];
      for (let n = 0; !stop; n++) {
        const amend = n % 5 === 4;
        const body = amend
          ? { ...bodies[bodies.length - 2]!, note: `amended at ${n}` }
          : signalBody({
              external_id: `redis-restart-${n}`,
              symbol: ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'][n % 3],
              premium: n % 4 === 1,
              confidence: 50 + ((n * 11) % 50),
            });
        if (amend) bodies[bodies.length - 2] = body;
        else bodies.push(body);
        const response = await apiA.sync(provider.apiKey, body);
        syncs.push({ at: Date.now(), status: response.status });
        if (response.status !== (amend ? 200 : 201) || response.body?.result !== (amend ? 'updated' : 'created')) {
          unexpected.push(`${body.external_id}: ${response.status} ${JSON.stringify(response.body)}`);
          continue;
        }
        ledger.record(response.body);
      }
    })();
    producer.catch(() => undefined);

    await waitFor(() => syncs.length >= ACCEPTED_BEFORE_KILL, 20_000, 'the stream did not get going');
    const killedAt = Date.now();
    await redis.kill('SIGKILL');
    const degradedA = waitFor(
      () => health.find((h) => h.instance === 'a' && h.at > killedAt && h.bus === 'down'),
      10_000,
      'A did not report bus down',
    );
    const degradedB = waitFor(
      () => health.find((h) => h.instance === 'b' && h.at > killedAt && h.bus === 'down'),
      10_000,
      'B did not report bus down',
    );
    await Promise.all([degradedA, degradedB]);
    await sleep(Math.max(0, killedAt + DOWN_FOR_MS - Date.now()));
    const duringOutage = syncs.filter((s) => s.at > killedAt).length;
    redis = await startRedisServer(redis.port);
    const restartedAt = Date.now();
    await waitFor(
      () =>
        health.find((h) => h.instance === 'a' && h.at > restartedAt && h.bus === 'up') &&
        health.find((h) => h.instance === 'b' && h.at > restartedAt && h.bus === 'up'),
      15_000,
      'the instances did not report bus up after Redis came back',
    );
    const recoveredAt = Date.now();
    const syncsAtRecovery = syncs.length;
    await waitFor(() => syncs.length >= syncsAtRecovery + ACCEPTED_AFTER_RESTART, 20_000, 'the stream stalled after Redis came back');
    stop = true;
    await producer;
    watching = false;
    await watchers;

    await flush(apiA, provider.apiKey, sockets, markerBody({ confidence: 90 }));

    // Syncs: accepted (201, or 200 for amendments) before, during and after the outage.
    expect(unexpected).toEqual([]);
    expect(duringOutage).toBeGreaterThan(0);
    // /health: always 200; degraded with the bus down during the outage, ok and up around it.
    expect(health.filter((h) => h.code !== 200)).toEqual([]);
    for (const instance of ['a', 'b'] as const) {
      const mine = health.filter((h) => h.instance === instance);
      expect(mine.filter((h) => h.bus === 'down').every((h) => h.status === 'degraded')).toBe(true);
      expect(mine.filter((h) => h.bus === 'up').every((h) => h.status === 'ok')).toBe(true);
      expect(mine.some((h) => h.bus === 'down')).toBe(true);
      expect(mine.at(-1)).toMatchObject({ status: 'ok', bus: 'up' });
    }
    // Sockets on both instances: every signal they may see, exactly once, in order; still open.
    expect(subscribers.flatMap((s) => s.problems(ledger))).toEqual([]);
    for (const socket of sockets) expect(socket.closeEvent).toBeUndefined();
    const seqs = ledger.seqs();
    expect(seqs.at(-1)! - seqs[0]! + 1).toBe(seqs.length);
    const proOnB = subscribers[0]!;
    expect(proOnB.current.client.seqs()).toEqual(seqs);

    // Tier changes made after Redis is back reach B. First, B must hold the current tiers in its
    // cache (it dropped them when its bus reconnected): a premium signal reaches the pro socket on
    // B and not the free one.
    const upgraded = await createUser(apiA, 'free');
    const downgraded = await createUser(apiA, 'pro');
    const upSocket = await WsClient.connect(b.wsUrl, { token: upgraded.token });
    const downSocket = await WsClient.connect(b.wsUrl, { token: downgraded.token });
    const warmup = await apiA.sync(provider.apiKey, signalBody({ premium: true }));
    expect(warmup.status).toBe(201);
    await downSocket.next((m) => m.seq === warmup.body.seq);
    await flush(apiA, provider.apiKey, [upSocket, downSocket]);
    expect(upSocket.seqs()).not.toContain(warmup.body.seq);

    expect((await apiA.setTier(upgraded.id, 'pro')).status).toBe(200);
    const afterUpgrade = await apiA.sync(provider.apiKey, signalBody({ premium: true }));
    await upSocket.next((m) => m.seq === afterUpgrade.body.seq, 5_000);

    const downgradeAnswer = await apiA.setTier(downgraded.id, 'free');
    expect(downgradeAnswer.status).toBe(200);
    const afterDowngrade = await apiA.sync(provider.apiKey, signalBody({ premium: true }));
    const regular = await apiA.sync(provider.apiKey, signalBody());
    await downSocket.next((m) => m.seq === regular.body.seq, 5_000);
    await flush(apiA, provider.apiKey, [upSocket, downSocket]);
    expect(downSocket.seqs()).not.toContain(afterDowngrade.body.seq);
    // Nothing premium synced after the downgrade was answered (afterUpgrade came before it).
    expect(downSocket.signals().filter((m) => m.premium && m.seq > afterUpgrade.body.seq)).toEqual([]);

    // The new Redis started empty: the instances' reports and socket counts are back in it, and
    // the cluster numbers add up to the sockets open now (6 + 2, one user each).
    const open = sockets.length + 2;
    const statsB = await waitFor(
      async () => {
        const stats = (await apiB.request('GET', '/ws/stats', { token: admin })).body;
        return stats.instances.length === 2 && stats.total_connections === open ? stats : undefined;
      },
      5_000,
      `/ws/stats on B does not show both instances and ${open} sockets after the Redis restart`,
    );
    expect(statsB.bus).toBe('up');
    expect(statsB.instances.map((i: { instance_id: string }) => i.instance_id)).toEqual(['inst-a', 'inst-b']);
    expect(statsB.active_users).toBe(open);
    expect(statsB.users_by_tier).toEqual({ free: 3, basic: 1, pro: 2, elite: 2 });
    const b_ = statsB.instances.find((i: { instance_id: string }) => i.instance_id === 'inst-b');
    console.log(
      `[faults-redis-restart] ${syncs.length} syncs through A (seq ${seqs[0]}..${seqs.at(-1)}), ${duringOutage} of them accepted with Redis down; ` +
        `redis-server SIGKILLed, a new one up after ${restartedAt - killedAt} ms, both instances bus up ${recoveredAt - restartedAt} ms later; ` +
        `bus down seen first at +${(await degradedA).at - killedAt} ms (A) / +${(await degradedB).at - killedAt} ms (B); ` +
        `B refilled ${b_?.gaps_refilled} signals from the database; ${sockets.length + 2} sockets, ` +
        `${subscribers.reduce((n, s) => n + s.receivedCount(), 0)} signals received; tier up/down changes applied on B; ${Date.now() - started} ms`,
    );
    await Promise.all([...sockets, upSocket, downSocket].map((socket) => socket.close()));
  });
});
