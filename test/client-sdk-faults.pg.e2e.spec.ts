import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Signal } from '@signalcast/client';
import { Api } from './support/clients.js';
import { createProvider, createUser } from './support/ledger.js';
import { freePort, migrateOnce, requireBuild, sleep, startService, stopAll, waitFor, type ServiceProcess } from './support/processes.js';
import { RecordingClient, StoredSignals, expectExactlyOnce } from './support/sdk.js';
import { createTestDatabase, type TestDatabase } from './support/test-app.js';

/**
 * The client SDK (public API only) across a restart of the service itself: the production build
 * as a child process on a fresh PostgreSQL database, stopped with SIGTERM (graceful: `reconnect`,
 * then close 1001) or killed with SIGKILL (the client sees 1006), and started again on the same
 * port and database while a provider keeps syncing through the SDK's ProviderClient (which retries
 * through the downtime). The subscriber must see every signal stored after its start exactly once,
 * in seq order, ending at a marker synced last.
 */

type Fault = 'SIGTERM' | 'SIGKILL';
const FAULTS: Fault[] = ['SIGTERM', 'SIGKILL'];

/**
 * A fresh migrated database per test, prepared together up front: a migration takes ~10 s here,
 * most of it waiting (the db-migrate CLI lingers after its work), so the two overlap.
 */
const databases = new Map<Fault, TestDatabase>();
beforeAll(async () => {
  requireBuild();
  const t0 = Date.now();
  await Promise.all(
    FAULTS.map(async (fault) => {
      const database = await createTestDatabase();
      databases.set(fault, database);
      if (!database.url) throw new Error('this file runs on PostgreSQL only (vitest project e2e-postgres)');
      await migrateOnce(database.url);
    }),
  );
  console.log(`[client-sdk-faults] ${FAULTS.length} databases migrated in ${Date.now() - t0} ms`);
}, 90_000);

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch (error) {
      console.warn(`[client-sdk-faults] cleanup failed: ${(error as Error).message}`);
    }
  }
});
afterAll(async () => {
  await stopAll(); // last resort: whatever a failed cleanup left running
  await Promise.all([...databases.values()].map((database) => database.drop()));
});

/** The service on the test's database, on a port of its own that a restart keeps. */
async function startOnOwnPort(fault: Fault) {
  const databaseUrl = databases.get(fault)?.url;
  if (!databaseUrl) throw new Error(`no database for ${fault}: see beforeAll`);
  const name = `sdk-${fault.toLowerCase()}`;
  const port = await freePort();
  const current: { service: ServiceProcess } = { service: await startService({ name, databaseUrl, port, readyTimeoutMs: 30_000 }) };
  // Whichever incarnation is running at the end.
  cleanups.push(() => current.service.stop());
  return {
    current,
    api: new Api(current.service.asTestApp()),
    /** Starts the service again, on the same port and database (await the previous one's exit first). */
    restart: async () => {
      current.service = await startService({ name: `${name}-restarted`, databaseUrl, port, readyTimeoutMs: 30_000 });
      return current.service;
    },
  };
}

/**
 * The provider's background loop: new signals, and every third operation an amendment of an
 * earlier one (same external_id, a changed note), sometimes a small batch; one operation at a
 * time, each retried by the ProviderClient through the service's downtime.
 */
function startSyncLoop(stored: StoredSignals, label: string) {
  const externalIds: string[] = [];
  let stopped = false;
  let ops = 0;
  let failure: unknown;
  /** Answered `unchanged` although the body was new: committed, but the answer was lost (a retry). */
  let committedButLost = 0;
  const timeline: { startedAt: number; endedAt?: number }[] = [];

  /**
   * StoredSignals records only `created`/`updated` answers. Every body sent here is new (a new
   * external_id or a new note), so an `unchanged` answer is the retry of a sync that was stored
   * before the service died with its answer: the stored version is the one answered.
   */
  const keep = (signal: Signal) => {
    if (stored.versions.some((v) => v.id === signal.id && v.version === signal.version)) return;
    committedButLost++;
    stored.versions.push({ seq: signal.seq, id: signal.id, version: signal.version, premium: signal.premium });
  };
  const fresh = () => {
    const externalId = `${label}-${externalIds.length}`;
    externalIds.push(externalId);
    return { external_id: externalId, premium: externalIds.length % 4 === 0 };
  };
  const amendment = (i: number) => {
    const externalId = externalIds[(i * 7) % externalIds.length]!;
    const index = Number(externalId.slice(label.length + 1));
    // The same fields as when it was created (signalBody's defaults), only the note changes.
    return { external_id: externalId, premium: (index + 1) % 4 === 0, note: `amended at op ${i}` };
  };

  const done = (async () => {
    for (let i = 0; !stopped; i++) {
      const op: { startedAt: number; endedAt?: number } = { startedAt: Date.now() };
      timeline.push(op);
      if (i % 10 === 9) {
        const signals = await stored.syncMany(3, (k) => (k === 1 && externalIds.length > 0 ? amendment(i) : fresh()));
        signals.forEach(keep);
      } else {
        keep(await stored.sync(i % 3 === 2 ? amendment(i) : fresh()));
      }
      op.endedAt = Date.now();
      ops++;
      await sleep(15);
    }
  })();
  done.catch((error: unknown) => (failure = error));

  return {
    get ops() {
      return ops;
    },
    get committedButLost() {
      return committedButLost;
    },
    /** Operations that were in flight at `at` (when no service listened: they rode out the downtime). */
    spanning: (at: number) => timeline.filter((op) => op.startedAt <= at && (op.endedAt ?? Infinity) > at).length,
    /** Throws the loop's error, if it stopped on one (waitFor reports it as its last error); else true. */
    check: (): true => {
      if (failure) throw failure as Error;
      return true;
    },
    stop: async (timeoutMs = 10_000) => {
      stopped = true;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        done.finally(() => clearTimeout(timer)),
        new Promise<never>(
          (_, reject) => (timer = setTimeout(() => reject(new Error(`the sync loop did not stop within ${timeoutMs} ms`)), timeoutMs)),
        ),
      ]);
    },
  };
}

/** waitFor, with what the subscriber went through when it times out. */
async function waitExplained(
  check: () => unknown,
  timeoutMs: number,
  message: string,
  sdk: RecordingClient,
  loop: { ops: number },
): Promise<void> {
  try {
    await waitFor(check, timeoutMs, message);
  } catch (error) {
    throw new Error(
      `${(error as Error).message}; ${loop.ops} syncs, ${sdk.seen.length} signals seen; states: ${sdk.stateNames()}; errors: ${JSON.stringify(sdk.errors.slice(-5))}`,
    );
  }
}

async function scenario(fault: Fault) {
  const started = Date.now();
  const { current, api, restart } = await startOnOwnPort(fault);
  const url = current.service.baseUrl;
  const phases: string[] = [`ready ${Date.now() - started}`];
  const phase = (name: string) => phases.push(`${name} ${Date.now() - started}`);
  const [user, provider] = await Promise.all([createUser(api, 'elite'), createProvider(api)]);
  const stored = new StoredSignals(url, provider.apiKey);
  const sdk = new RecordingClient({ url, getToken: () => user.token, backoff: { minMs: 50, maxMs: 400 } });
  cleanups.push(() => sdk.client.close());
  const from = await sdk.start();

  phase('live');
  const loop = startSyncLoop(stored, `${fault}-${Date.now()}`);
  // Stopped (at the latest) before the service: otherwise its retries would outlive the test.
  cleanups.push(() => loop.stop(2_000).catch(() => undefined));

  // The fault, in the middle of the stream, once the subscriber is receiving it live.
  await waitExplained(() => loop.check() && loop.ops >= 25 && sdk.seen.length >= 15, 15_000, 'the stream did not start', sdk, loop);
  const seenBefore = sdk.seen.length;
  const statesBefore = sdk.states.length;
  phase('fault');
  const seqAtFault = Math.max(0, ...stored.versions.map((v) => v.seq));
  const faultAt = Date.now();
  const exit = await current.service.kill(fault, 15_000);
  const exitedAt = Date.now();
  // SIGTERM: a graceful shutdown (Nest re-raises the signal after its hooks; exit code 0 would do too).
  expect(fault === 'SIGKILL' ? [fault] : [fault, 0], `exit after ${fault}:\n${current.service.output()}`).toContain(
    exit.signal ?? exit.code,
  );
  await restart();
  const upAt = Date.now();

  // The loop goes on after the restart; the subscriber comes back (a `reconnect` spreads its
  // return over 0–5 s) and replays while signals keep coming.
  await waitExplained(
    () => loop.check() && sdk.states.slice(statesBefore).some((change) => change.state === 'live'),
    20_000,
    'the subscriber did not come back live',
    sdk,
    loop,
  );
  phase('live again');
  const opsAtUp = loop.ops;
  await waitExplained(() => loop.check() && loop.ops >= opsAtUp + 15, 15_000, 'the sync loop did not go on after the restart', sdk, loop);
  await loop.stop();
  phase('loop stopped');
  const marker = await stored.sync({ note: 'marker' });
  await sdk.waitForVersion(marker.id, 1, 20_000);
  await sdk.reach('live', 10_000);
  phase('marker seen');

  // The path: the fault's close code, then back through a replay from lastSeq to live.
  const path = sdk.states.slice(statesBefore);
  const expectedCode = fault === 'SIGTERM' ? 1001 : 1006;
  expect(path[0], `first change after ${fault} (states: ${sdk.stateNames()})`).toMatchObject({ state: 'disconnected', code: expectedCode });
  expect(sdk.stateNames()).toMatch(
    new RegExp(`^connecting > live > disconnected\\(${expectedCode}\\) > .*(connecting|polling) > replaying > live$`),
  );
  // A `reconnect` spreads the return over 0–5 s; a lost connection backs off within maxMs (400).
  expect(path[0]!.retryInMs).toBeLessThanOrEqual(fault === 'SIGTERM' ? 5_000 : 400);
  for (const change of path.filter((c) => c.state === 'disconnected' && c.code === 1006)) expect(change.retryInMs).toBeLessThanOrEqual(400);
  expect(sdk.states.some((change) => change.state === 'failed' || change.state === 'closed')).toBe(false);
  expect(sdk.errors.filter((error) => error.code === 'position_reset')).toEqual([]);

  // Exactly once and in order, across the restart; every (id, version) counted.
  const pairs = sdk.seen.map((signal) => `${signal.id}@${signal.version}`);
  expect(new Set(pairs).size, 'an (id, version) delivered twice').toBe(pairs.length);
  expectExactlyOnce(sdk, stored, from);
  expect(sdk.client.lastSeq).toBe(marker.seq);
  expect(sdk.seen.at(-1)).toMatchObject({ id: marker.id, seq: marker.seq });
  // The stream really went across: signals before and after, syncs that rode out the downtime.
  expect(seenBefore).toBeGreaterThan(0);
  expect(
    sdk.seen.filter((signal) => signal.seq > seqAtFault && signal.id !== marker.id).length,
    'signals stored after the fault',
  ).toBeGreaterThan(0);
  // No server listens in the first 250 ms after the exit (a restarting Node takes longer to boot).
  expect(loop.spanning(exitedAt + 250), 'a sync that rode out the downtime').toBeGreaterThanOrEqual(1);
  expect(
    sdk.seen.some((signal) => signal.version > 1),
    'amendments delivered',
  ).toBe(true);

  const amendments = stored.versions.filter((v) => v.version > 1).length;
  console.log(
    `[client-sdk-faults] ${fault}: ${stored.versions.length} versions stored (${amendments} amendments, ${loop.committedButLost} answered only by a retry), ` +
      `${sdk.seen.length} delivered (${seenBefore} before the fault); exit after ${exitedAt - faultAt} ms, back up after ${upAt - faultAt} ms; ` +
      `path ${path.map((change) => `${change.state}${change.code ? `(${change.code})` : ''}`).join(' > ')}; ` +
      `errors ${JSON.stringify([...new Set(sdk.errors.map((error) => error.code))])}; ${sdk.sockets.constructed()} sockets; ${Date.now() - started} ms (${phases.join(', ')})`,
  );
}

describe('client SDK: exactly once across a restart of the service (PostgreSQL)', () => {
  it('a stop with SIGTERM (reconnect, 1001) and a start again on the same port', { timeout: 60_000 }, () => scenario('SIGTERM'));
  it('a kill with SIGKILL (1006) and a start again on the same port', { timeout: 60_000 }, () => scenario('SIGKILL'));
});
