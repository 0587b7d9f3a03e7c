import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api, flush, markerBody, WsClient } from './support/clients.js';
import { createUser, filterQuery, Ledger, LogicalSubscriber, type Filter, type Tier } from './support/ledger.js';
import { migrateOnce, requireBuild, sleep, startService, stopAll, waitFor, type ServiceProcess } from './support/processes.js';
import { createTestDatabase, type TestDatabase } from './support/test-app.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const NAMES = ['a', 'b', 'c'] as const;
type Name = (typeof NAMES)[number];
/** Operations (creates and amendments) per producer; two producers, through A and through B. */
const OPS_PER_PRODUCER = 120;
const TTL_MS = 1_500;

/**
 * Three instances as real processes (`node dist/main.js`) on one PostgreSQL and the real Redis.
 * One is SIGKILLed in the middle of a burst: its clients lose their sockets without a close frame
 * (1006) and resume on the survivors with `?since=` and their filter, while the burst goes on.
 */
describe('an instance killed (SIGKILL) in the middle of a burst', () => {
  let database: TestDatabase;
  const services = {} as Record<Name, ServiceProcess>;
  const api = {} as Record<Name, Api>;
  const prefix = `sc-test-kill-${randomBytes(4).toString('hex')}:`;

  beforeAll(async () => {
    requireBuild();
    database = await createTestDatabase();
    if (!database.url) throw new Error('this file runs on PostgreSQL only (vitest project e2e-postgres)');
    const t0 = Date.now();
    await migrateOnce(database.url);
    const migrated = Date.now() - t0;
    const started = await Promise.allSettled(
      NAMES.map((name) =>
        startService({
          name: `inst-${name}`,
          databaseUrl: database.url!,
          env: {
            REDIS_URL,
            REDIS_KEY_PREFIX: prefix,
            INSTANCE_ID: `inst-${name}`,
            CLUSTER_REPORT_INTERVAL_MS: '200',
            CLUSTER_INSTANCE_TTL_MS: String(TTL_MS),
            BUS_CATCHUP_INTERVAL_MS: '1000',
          },
          readyTimeoutMs: 45_000,
        }),
      ),
    );
    started.forEach((result, i) => {
      if (result.status === 'fulfilled') services[NAMES[i]!] = result.value;
    });
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    for (const name of NAMES) api[name] = new Api(services[name].asTestApp());
    console.log(`[faults-instance-kill] migrated in ${migrated} ms, three instances ready after ${Date.now() - t0} ms`);
  }, 90_000);

  afterAll(async () => {
    await stopAll();
    await database?.drop();
  });

  it('gives every subscriber every signal it may see, once and in seq order, across the kill', { timeout: 60_000 }, async () => {
    const started = Date.now();
    const provider = await api.a.provider();
    const admin = await api.a.admin();

    // Subscribers: (user tier, filter, the instances their sockets start on). C is killed.
    const marker = { side: 'short', confidence: 80, market: 'crypto' } as const;
    const plan: { tier: Tier; filter?: Filter; on: Name[] }[] = [
      { tier: 'free', on: ['a', 'c'] },
      { tier: 'free', filter: { symbols: ['ETHUSDT', 'MARKER'] }, on: ['c'] },
      { tier: 'basic', filter: { minConfidence: 70 }, on: ['b'] },
      { tier: 'basic', filter: { minConfidence: 70 }, on: ['c'] },
      { tier: 'pro', on: ['b', 'c'] },
      { tier: 'pro', filter: { symbols: ['BTCUSDT', 'SOLUSDT', 'MARKER'], minConfidence: 50 }, on: ['c'] },
      { tier: 'elite', filter: { sides: ['short'] }, on: ['a', 'c'] },
      { tier: 'elite', on: ['b'] },
    ];
    const users = await Promise.all(plan.map(({ tier }, i) => createUser(api[NAMES[i % 3]!], tier)));
    const subscribers: { subscriber: LogicalSubscriber; startedOn: Name }[] = [];
    for (const [i, entry] of plan.entries()) {
      for (const on of entry.on) {
        const subscriber = new LogicalSubscriber(
          `${entry.tier}#${i}@${on}${filterQuery(entry.filter)}`,
          entry.tier,
          users[i]!.token,
          entry.filter,
        );
        const client = await WsClient.connect(services[on].wsUrl + filterQuery(entry.filter), { token: subscriber.token });
        subscriber.legs.push({ client, instance: on });
        subscribers.push({ subscriber, startedOn: on });
      }
    }
    const onC = subscribers.filter((s) => s.startedOn === 'c').map((s) => s.subscriber);

    // Clients of C resume as soon as their socket dies, on A or B, while the burst goes on.
    const closeCodes: number[] = [];
    const resumed = onC.map(
      (subscriber, i) =>
        new Promise<void>((resolve, reject) => {
          subscriber.current.client.socket.once('close', (code) => {
            closeCodes.push(code);
            const target: Name = i % 2 === 0 ? 'a' : 'b';
            void (async () => {
              for (let attempt = 1; ; attempt++) {
                subscriber.reconnectAttempts++;
                const since = subscriber.processedSeq();
                try {
                  const client = await WsClient.connect(services[target].wsUrl + filterQuery(subscriber.filter), {
                    token: subscriber.token,
                    since,
                  });
                  subscriber.legs.push({ client, since, instance: target });
                  return resolve();
                } catch (error) {
                  if (attempt >= 5) return reject(new Error(`${subscriber.name}: resume on ${target} failed: ${(error as Error).message}`));
                  await sleep(100 * attempt);
                }
              }
            })();
          });
        }),
    );

    // The burst: two producers (through A and through B, the instances that stay up), each
    // creating signals and amending some of its own (some twice), concurrently.
    const ledger = new Ledger();
    let done = 0;
    const counts = { created: 0, updated: 0 };
    const symbols = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'];
    const sides = ['long', 'short', 'buy', 'sell'];
    const producer = async (via: 'a' | 'b', p: number) => {
      const bodies: Record<string, unknown>[] = [];
      for (let i = 0; i < OPS_PER_PRODUCER; i++) {
        let body: Record<string, unknown>;
        let expected: string;
        if (i % 3 === 2 && bodies.length >= 2) {
          const target = bodies[bodies.length - 1 - (i % 2)]!;
          body = { ...target, stop_loss: String(60_000 + i), note: `amended at op ${i}` };
          bodies[bodies.indexOf(target)] = body;
          expected = 'updated';
        } else {
          body = {
            external_id: `kill-${p}-${i}`,
            symbol: symbols[(i + p) % 3],
            market: 'crypto',
            side: sides[(i * 7 + p) % 4],
            entry: '64250.5',
            stop_loss: '63100',
            take_profits: ['65500'],
            confidence: 40 + ((i * 13 + p * 7) % 60),
            timeframe: '4h',
            note: null,
            premium: i % 4 === 1,
            issued_at: '2026-11-21T10:00:00.000Z',
          };
          bodies.push(body);
          expected = 'created';
        }
        const response = await api[via].sync(provider.apiKey, body);
        if (response.status !== (expected === 'created' ? 201 : 200) || response.body?.result !== expected) {
          throw new Error(`sync ${i} via ${via}: ${response.status} ${JSON.stringify(response.body)} (expected ${expected})`);
        }
        ledger.record(response.body);
        counts[expected as 'created' | 'updated']++;
        done++;
      }
    };
    const producers = Promise.all([producer('a', 0), producer('b', 1)]);
    // Awaited below; these only keep an early failure elsewhere from surfacing as unhandled.
    producers.catch(() => undefined);
    for (const resume of resumed) resume.catch(() => undefined);

    // SIGKILL C in the middle of the burst.
    await waitFor(() => done >= OPS_PER_PRODUCER, 30_000, 'the burst did not reach its middle');
    const killedAtOp = done;
    const exit = await services.c.kill('SIGKILL');
    const killedAt = Date.now();
    expect(exit.signal).toBe('SIGKILL');
    // Watches /ws/stats from the kill on, to time when inst-c drops out.
    const stats = async () => (await api.a.request('GET', '/ws/stats', { token: admin })).body;
    const ids = (s: { instances: { instance_id: string }[] }) => s.instances.map((i) => i.instance_id);
    const droppedAfter = waitFor(
      async () => (!ids(await stats()).includes('inst-c') ? Date.now() - killedAt : undefined),
      TTL_MS + 5_000,
      'inst-c did not leave /ws/stats within 5 s after its TTL',
      100,
    );
    droppedAfter.catch(() => undefined);

    await producers;
    await Promise.race([
      Promise.all(resumed),
      sleep(20_000).then(() => Promise.reject(new Error('clients of the killed instance did not all resume within 20 s'))),
    ]);
    expect(closeCodes).toHaveLength(onC.length);
    expect(new Set(closeCodes)).toEqual(new Set([1006]));
    for (const subscriber of onC) {
      await subscriber.current.client.next((m) => m.type === 'replay_complete' || m.type === 'resync_required', 15_000);
      expect(subscriber.current.client.messages.find((m) => m.type === 'resync_required')).toBeUndefined();
    }

    // A marker that every socket may see, on every current socket: everything before it has arrived.
    const flushMarker = markerBody(marker);
    const all = subscribers.map((s) => s.subscriber);
    await flush(
      api.a,
      provider.apiKey,
      all.map((s) => s.current.client),
      flushMarker,
    );

    const problems = all.flatMap((subscriber) => subscriber.problems(ledger));
    expect(problems).toEqual([]);
    for (const subscriber of all) {
      expect(subscriber.receivedCount(), `${subscriber.name} received nothing`).toBeGreaterThan(0);
      expect(subscriber.current.client.socket.readyState).toBe(subscriber.current.client.socket.OPEN);
    }
    // The survivors' sockets never reconnected, so they received every version, nothing collapsed.
    for (const { subscriber, startedOn } of subscribers) if (startedOn !== 'c') expect(subscriber.collapsedCount(ledger)).toBe(0);
    // What was stored is gapless, and is what the sync answers said: each signal's stored current
    // state is its latest answered version.
    const seqs = ledger.seqs();
    expect(seqs.at(-1)! - seqs[0]! + 1).toBe(seqs.length);
    const latest = new Map<string, { seq: number; version: number }>();
    for (const v of ledger.bySeq.values()) if ((latest.get(v.externalId)?.seq ?? 0) < v.seq) latest.set(v.externalId, v);
    const listed = await api.b.request('GET', '/api/v1/signals?after_seq=0&limit=500', { token: admin });
    expect(listed.status).toBe(200);
    const stored = new Map<string, { seq: number; version: number }>(
      listed.body.data
        .filter((r: { note: string | null }) => r.note !== 'flush')
        .map((r: { external_id: string; seq: number; version: number }) => [r.external_id, { seq: r.seq, version: r.version }]),
    );
    expect(listed.body.has_more).toBe(false);
    expect(stored).toEqual(new Map([...latest].map(([id, v]) => [id, { seq: v.seq, version: v.version }])));

    // The killed instance leaves the cluster's numbers once its TTL has passed, and the socket
    // counts add up to the sockets that are open (C's are gone with it).
    const droppedAfterMs = await droppedAfter;
    const after = await waitFor(
      async () => {
        const s = await stats();
        return ids(s).join() === 'inst-a,inst-b' && s.total_connections === all.length ? s : undefined;
      },
      5_000,
      'the cluster totals on A do not add up to the open sockets',
    );
    expect(
      (await api.b.request('GET', '/ws/stats', { token: admin })).body.instances.map((i: { instance_id: string }) => i.instance_id),
    ).toEqual(['inst-a', 'inst-b']);
    for (const survivor of ['a', 'b'] as const) expect(services[survivor].running).toBe(true);

    const collapsed = onC.reduce((sum, s) => sum + s.collapsedCount(ledger), 0);
    console.log(
      `[faults-instance-kill] ${counts.created} signals created + ${counts.updated} amendments through A and B ` +
        `(seq ${seqs[0]}..${seqs.at(-1)}), inst-c SIGKILLed after ${killedAtOp} ops; ${all.length} sockets ` +
        `(${onC.length} on C: closed ${[...new Set(closeCodes)].join()}, resumed with ${onC.reduce((n, s) => n + s.reconnectAttempts, 0)} attempt(s)); ` +
        `${all.reduce((n, s) => n + s.receivedCount(), 0)} signals received, ${collapsed} superseded versions collapsed by replays; ` +
        `inst-c left /ws/stats ${droppedAfterMs} ms after the kill; write_conflicts ${after.instances.map((i: { write_conflicts: number }) => i.write_conflicts).join('/')}, ` +
        `gaps_refilled ${after.instances.map((i: { gaps_refilled: number }) => i.gaps_refilled).join('/')}; ${Date.now() - started} ms`,
    );
    await Promise.all(all.map((s) => s.current.client.close()));
  });
});
