import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api, markerBody, signalBody, WsClient } from './support/clients.js';
import { createProvider, createUser, filterQuery, Ledger, LogicalSubscriber, type Filter, type Tier } from './support/ledger.js';
import { requireBuild, sleep, startService, stopAll, ThrowawayPostgres, waitFor, type ServiceProcess } from './support/processes.js';

/** Concurrent provider streams, each syncing one signal at a time. */
const STREAMS = 3;
const ACCEPTED_BEFORE_RESTART = 45;
const ACCEPTED_AFTER_RESTART = 45;
const DOWN_FOR_MS = 2_000;

/**
 * A PostgreSQL server of this test's own (system binaries, a temp data directory, a free port),
 * restarted (fast shutdown, ~2 s down, start) while providers stream syncs into the service (the
 * production build as a real process). Nothing accepted may be lost or stored twice, and nothing
 * refused may have been sent.
 */
describe('PostgreSQL restarted during a stream of syncs', () => {
  let postgres: ThrowawayPostgres;
  let service: ServiceProcess;
  let api: Api;

  beforeAll(async () => {
    requireBuild();
    postgres = await ThrowawayPostgres.create();
    service = await startService({
      name: 'signalcast',
      databaseUrl: postgres.url(),
      // The provider's key is re-verified against the database every second: the outage hits
      // both the key check and the writer.
      env: { DB_MIGRATE_ON_START: 'true', BUS_CATCHUP_INTERVAL_MS: '500', DB_POOL_SIZE: '5', API_KEY_CACHE_TTL_MS: '1000' },
      readyTimeoutMs: 45_000,
    });
    api = new Api(service.asTestApp());
  }, 90_000);

  afterAll(async () => {
    await stopAll();
    await postgres?.destroy();
  });

  it('answers 503 during the outage, keeps sockets open, and loses or doubles nothing', { timeout: 60_000 }, async () => {
    const started = Date.now();
    const provider = await createProvider(api);
    await api.admin();

    const plan: { tier: Tier; filter?: Filter }[] = [
      { tier: 'elite' },
      { tier: 'pro' },
      { tier: 'pro', filter: { symbols: ['ETHUSDT', 'MARKER'] } },
      { tier: 'free' },
    ];
    const subscribers = await Promise.all(
      plan.map(async ({ tier, filter }, i) => {
        const user = await createUser(api, tier);
        const subscriber = new LogicalSubscriber(`${tier}#${i}${filterQuery(filter)}`, tier, user.token, filter);
        subscriber.legs.push({
          client: await WsClient.connect(service.wsUrl + filterQuery(filter), { token: user.token }),
          instance: 'signalcast',
        });
        return subscriber;
      }),
    );
    const sockets = subscribers.map((s) => s.current.client);

    // /health, every 100 ms, from before the outage to after it.
    const health: { at: number; status: number; database?: string }[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        try {
          const response = await fetch(`${service.baseUrl}/health`, { signal: AbortSignal.timeout(5_000) });
          const body = (await response.json()) as { database?: string };
          health.push({ at: Date.now(), status: response.status, database: body.database });
        } catch (error) {
          health.push({ at: Date.now(), status: -1, database: (error as Error).message });
        }
        await sleep(100);
      }
    })();

    // Providers: each signal is retried, as a provider should, until it is accepted.
    const ledger = new Ledger();
    const accepted: { externalId: string; seq: number; afterRefusal: boolean }[] = [];
    const unexpected: string[] = [];
    const refusals = { unavailable: 0, connection: 0 };
    const refusalMessages = new Map<string, number>();
    let committedButRefused = 0;
    let stop = false;
    const stream = async (w: number) => {
      for (let n = 0; !stop; n++) {
        const body = signalBody({
          external_id: `pg-restart-${w}-${n}`,
          symbol: ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'][(n + w) % 3],
          premium: n % 3 === 1,
          confidence: 50 + ((n * 7 + w) % 50),
        });
        let refused = false;
        const deadline = Date.now() + 30_000;
        for (;;) {
          if (Date.now() > deadline) throw new Error(`${body.external_id} was not accepted within 30 s`);
          let response;
          try {
            response = await api.sync(provider.apiKey, body);
          } catch (error) {
            refusals.connection++;
            refused = true;
            unexpected.push(`${body.external_id}: connection error ${(error as Error).message}`);
            await sleep(100);
            continue;
          }
          if (response.status === 201 || response.status === 200) {
            if (response.status === 200) {
              // Only a retry may be answered "unchanged": the first attempt was stored after all.
              if (!refused || response.body.result !== 'unchanged')
                unexpected.push(`${body.external_id}: 200 ${response.body.result} on a first attempt`);
              committedButRefused++;
            }
            ledger.record(response.body, true);
            accepted.push({ externalId: body.external_id as string, seq: response.body.seq, afterRefusal: refused });
            break;
          }
          if (response.status === 503 && response.body?.code === 'database_unavailable') {
            refusals.unavailable++;
            refusalMessages.set(response.body.message, (refusalMessages.get(response.body.message) ?? 0) + 1);
          } else {
            unexpected.push(`${body.external_id}: ${response.status} ${JSON.stringify(response.body)}`);
          }
          refused = true;
          await sleep(100);
        }
      }
    };
    const streams = Promise.all(Array.from({ length: STREAMS }, (_, w) => stream(w)));
    streams.catch(() => undefined);

    await waitFor(() => accepted.length >= ACCEPTED_BEFORE_RESTART, 30_000, 'the stream did not get going');
    const acceptedBefore = accepted.length;
    const stoppedAt = Date.now();
    await postgres.stopFast();
    const downAt = Date.now();
    await sleep(DOWN_FOR_MS);
    await postgres.start();
    const upAt = Date.now();
    await waitFor(() => accepted.length >= acceptedBefore + ACCEPTED_AFTER_RESTART, 30_000, 'the stream did not recover after the restart');
    stop = true;
    await streams;
    await waitFor(() => health.at(-1)?.status === 200, 10_000, '/health did not come back to 200');
    watching = false;
    await watcher;

    // Everything before the marker has reached every socket.
    const marker = markerBody();
    const flushed = await api.sync(provider.apiKey, marker);
    expect(flushed.status).toBe(201);
    ledger.record(flushed.body);
    await Promise.all(sockets.map((socket) => socket.next((m) => m.type === 'signal' && m.external_id === marker.external_id, 10_000)));

    // Providers: 503 database_unavailable during the outage, never a 500 or anything else.
    expect(unexpected).toEqual([]);
    expect(refusals.unavailable).toBeGreaterThan(0);
    expect(service.running).toBe(true);

    // /health: 200 before, 503 (database down) during, 200 again after.
    const first503 = health.findIndex((h) => h.status === 503);
    expect(health[0]?.status).toBe(200);
    expect(first503).toBeGreaterThan(0);
    expect(health[first503]!.database).toBe('down');
    expect(health.filter((h) => h.status !== 200 && h.status !== 503)).toEqual([]);
    const healthDownMs = (health.findLast((h) => h.status === 503)?.at ?? 0) - health[first503]!.at;

    // Sockets: open throughout, every accepted signal they may see exactly once, in seq order.
    for (const socket of sockets) {
      expect(socket.closeEvent).toBeUndefined();
      expect(socket.socket.readyState).toBe(socket.socket.OPEN);
      expect(socket.messages.filter((m) => m.type === 'error' || m.type === 'reconnect')).toEqual([]);
    }
    expect(subscribers.flatMap((s) => s.problems(ledger))).toEqual([]);
    const acceptedSeqs = accepted.map((a) => a.seq).sort((a, b) => a - b);
    for (const subscriber of subscribers.filter((s) => s.tier !== 'free' && !s.filter)) {
      expect(subscriber.current.client.seqs()).toEqual(acceptedSeqs);
    }
    // seq is gapless over what was accepted (the marker included), and one per accepted signal.
    const seqs = ledger.seqs();
    expect(new Set(acceptedSeqs).size).toBe(accepted.length);
    expect(seqs.at(-1)! - seqs[0]! + 1).toBe(seqs.length);

    // Stored: one row per external_id, as many rows as accepted syncs, with the answered seqs.
    const rows: { external_id: string; seq: number; note: string | null }[] = [];
    for (let after = 0, more = true; more;) {
      const page = await api.request('GET', `/api/v1/signals?after_seq=${after}&limit=500`, { token: await api.admin() });
      expect(page.status).toBe(200);
      rows.push(...page.body.data);
      after = page.body.next_after_seq;
      more = page.body.has_more;
    }
    const signalRows = rows.filter((r) => r.note !== 'flush');
    expect(new Set(signalRows.map((r) => r.external_id)).size).toBe(signalRows.length);
    expect(signalRows.length).toBe(accepted.length);
    expect(signalRows.map((r) => r.seq).sort((a, b) => a - b)).toEqual(acceptedSeqs);
    const revisions = await postgres.query<{ count: string }>('SELECT count(*) FROM signal_revisions');
    expect(Number(revisions.rows[0]!.count)).toBe(rows.length);

    console.log(
      `[faults-postgres-restart] ${accepted.length} signals accepted from ${STREAMS} streams (${acceptedBefore} before the restart), ` +
        `seq ${seqs[0]}..${seqs.at(-1)}; PostgreSQL down ${upAt - downAt} ms (fast shutdown took ${downAt - stoppedAt} ms); ` +
        `${refusals.unavailable} x 503 database_unavailable (${[...refusalMessages].map(([m, n]) => `${n} "${m}"`).join(', ')}), ${refusals.connection} connection errors, ${committedButRefused} committed-but-refused retries answered unchanged; ` +
        `/health 503 for ${healthDownMs} ms (${health.filter((h) => h.status === 503).length}/${health.length} polls); ` +
        `${sockets.length} sockets, ${subscribers.reduce((n, s) => n + s.receivedCount(), 0)} signals received; ${Date.now() - started} ms`,
    );
    await Promise.all(sockets.map((socket) => socket.close()));
  });
});
