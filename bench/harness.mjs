#!/usr/bin/env node
// The benchmark harness: signalcast's production build next to the ceiling (a bare `ws`
// broadcaster) and the peer (Socket.IO), driven by the same client processes. See
// docs/benchmarks.md. Usage:
//   npm run bench -- [--scenario latency|burst|ingest|ingest-batch|ingest-rate|scale|smoke]
//                    [--sockets 1000,5000] [--targets signalcast,bare-ws,socketio] [--signals 20]
//                    [--rate 2]        (signals per second; 0: as fast as answered, --concurrency N)
//                    [--warmup 3]      (at a set rate: the first seconds' sync times reported apart)
//                    [--out file]
//                    (a target written `name:single` sends 20 signals at 2/s whatever the scenario
//                     says: the burst scenario measures the ceiling's one-at-a-time rate that way)
//                    [--profile dir]   (writes a V8 CPU profile of each server process to dir)
//                    [--batch 10]      (signals per sync request: the batch endpoint when > 1)
//                    [--symbols 50 --follow 2]  (signals spread over 50 symbols; each socket
//                                       subscribes to 2 of them with `?symbols=`; 0: no filter)
//                    [--duration 600 --reconnects 5]  (soak: seconds held, sockets resumed per second)
//                    [--per-worker 2500]  (sockets per client process)
//                    [--client library]   (the ws / socket.io-client libraries, not the raw-socket client)
//                    [--split]            (signalcast as two instances sharing PostgreSQL and Redis: one
//                                          takes the HTTP API and writes, one holds the sockets)
//                    (the target `signalcast:observed` is signalcast operated: its clients send delivery
//                     receipts as the SDK does, and Prometheus scrapes /metrics every second;
//                     `signalcast:scraped`: the scrapes without the receipts)
// Server processes are pinned to core 0 and clients to core 1 when `taskset` exists.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { clearInterval, setInterval } from 'node:timers';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- options
const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith('--') ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []),
);
const SCENARIOS = {
  smoke: { sockets: [20], signals: 6, rate: 10, targets: ['signalcast', 'bare-ws', 'socketio', 'bare-ws:single'] },
  latency: { sockets: [1000, 5000, 10000], signals: 20, rate: 2, targets: ['signalcast', 'bare-ws', 'socketio'] },
  burst: { sockets: [5000], signals: 100, rate: 0, targets: ['signalcast', 'bare-ws', 'socketio', 'bare-ws:single'] },
  // Every socket takes every signal its tier allows, one signal per POST: the issue's ingest case.
  ingest: { sockets: [1000], signals: 3000, rate: 0, concurrency: 64, targets: ['signalcast'] },
  // How a busy provider would send (10 signals per POST) to subscribers who follow a few symbols.
  'ingest-batch': { sockets: [1000], signals: 20000, rate: 0, concurrency: 64, batch: 10, symbols: 50, follow: 2, targets: ['signalcast'] },
  // The same, offered at the target rate (2,000 signals/s) instead of as fast as answered.
  // The first 3 s are the server's warm-up under this load: sent, delivered and checked like the
  // rest, but their sync times are reported apart (`sync_response_ms.all`).
  'ingest-rate': { sockets: [1000], signals: 26000, rate: 2000, warmup: 3, batch: 10, symbols: 50, follow: 2, targets: ['signalcast'] },
  scale: { sockets: [19900], signals: 2, rate: 1, targets: ['signalcast', 'bare-ws', 'socketio'] },
  // Held for `duration` seconds with steady signals, filters and a trickle of reconnects (resumed
  // with ?since=): memory and event-loop delay sampled each second, every socket's set checked at
  // the end. 19,900 sockets: the machine's open-files limit is 20,000 (hard), for the server too.
  soak: { sockets: [19900], rate: 4, duration: 600, symbols: 50, follow: 2, reconnects: 5, targets: ['signalcast'] },
};
const scenarioName = args.scenario ?? 'latency';
const scenario = { ...SCENARIOS[scenarioName] };
if (!SCENARIOS[scenarioName]) throw new Error(`unknown scenario ${scenarioName}`);
if (args.sockets) scenario.sockets = args.sockets.split(',').map(Number);
if (args.targets) scenario.targets = args.targets.split(',');
if (args.signals) scenario.signals = Number(args.signals);
if (args.rate) scenario.rate = Number(args.rate);
if (args.concurrency) scenario.concurrency = Number(args.concurrency);
for (const option of ['batch', 'symbols', 'follow', 'warmup', 'duration', 'reconnects'])
  if (args[option]) scenario[option] = Number(args[option]);
if (scenario.duration) scenario.signals = Math.round(scenario.duration * scenario.rate);
scenario.batch ??= 1;
scenario.symbols ??= 2;
scenario.follow ??= 0;
const SYMBOLS = Array.from({ length: scenario.symbols }, (_, i) => `SYM${i}USDT`);
/** Sockets per client process (`--per-worker`). */
const SOCKETS_PER_WORKER = Number(args['per-worker'] ?? 2500);
// `--client library`: the `ws` and `socket.io-client` libraries instead of the raw-socket client.
if (args.client) process.env.BENCH_CLIENT = args.client;
scenario.client = process.env.BENCH_CLIENT === 'library' ? 'library' : 'raw';
const WARMUP_SIGNALS = 5;
const TIER_MIX = [
  ['free', 0.4],
  ['basic', 0.2],
  ['pro', 0.25],
  ['elite', 0.15],
];
const USERS = Number(args.users ?? Math.min(200, Math.max(4, Math.max(...scenario.sockets))));
const hasTaskset = existsSync('/usr/bin/taskset');
// The harness (the provider's requests) runs beside the clients, off the server's core.
if (hasTaskset) execFileSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
const profileArgs = args.profile ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(args.profile)}`] : [];
const pinned = (core, command, argv) => (hasTaskset ? ['taskset', ['-c', String(core), command, ...argv]] : [command, argv]);

// ---------------------------------------------------------------- processes
function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const children = new Set();
function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}
process.on('exit', () => children.forEach((child) => child.kill('SIGKILL')));

/** Clock ticks per second of /proc/<pid>/stat's CPU times (USER_HZ: 100 on Linux). */
const TICKS_PER_S = 100;

/** RSS and CPU ticks of a process, or the sum over several (a split target's instances). */
function processStats(pids) {
  let rss = 0;
  let cpuTicks = 0;
  for (const pid of [pids].flat()) {
    try {
      rss += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      cpuTicks += Number(fields[11]) + Number(fields[12]);
    } catch {
      /* gone */
    }
  }
  return { rss, cpuTicks };
}

/** CPU ticks of every PostgreSQL process on this machine (its server runs beside the benchmark). */
function postgresTicks() {
  let ticks = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (!stat.includes('(postgres)')) continue;
      const fields = stat.split(') ')[1].split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      /* gone */
    }
  }
  return ticks;
}

/** The server's real pid (under taskset the child is taskset, which execs node: same pid). */
async function waitHttp(url, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      /* not up yet */
    }
    await sleep(200);
  }
  throw new Error(`${url} did not come up`);
}

/**
 * The provider's HTTP client, for every target alike: `node:http` over kept-alive connections.
 * It runs beside the load clients, and `fetch` cost about 1 ms of that core per request (measured
 * at 150 requests/s), time taken from the clients and PostgreSQL.
 */
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
function request(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method, headers: body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(body) }, agent },
      (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function api(base, method, pathname, { token, apiKey, body } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (apiKey) headers['x-api-key'] = apiKey;
  const { status, text } = await request(base + pathname, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status, body: text ? JSON.parse(text) : undefined };
}

async function inParallel(items, concurrency, fn) {
  const results = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i], i);
      }
    }),
  );
  return results;
}

// ---------------------------------------------------------------- targets
/** The n-th signal a provider sends (one in three premium). */
function syncBody(n, externalId) {
  return {
    external_id: externalId,
    symbol: SYMBOLS[n % SYMBOLS.length],
    market: 'crypto',
    side: 'long',
    entry: '64250.5',
    stop_loss: '63100',
    take_profits: ['65500', '67000'],
    confidence: 75,
    timeframe: '4h',
    note: 'benchmark signal',
    premium: n % 3 === 1,
    issued_at: new Date().toISOString(),
  };
}

/**
 * What the baselines broadcast: a message shaped like signalcast's `signal` message, field for
 * field, so the clients parse the same JSON for every target.
 */
function wireSignal(seq) {
  const { premium: _premium, ...body } = syncBody(seq, `bench-${seq}`);
  const at = new Date().toISOString();
  return {
    type: 'signal',
    id: '0b9f6c1e-6a36-4c55-9a57-3f1a1f3f8c21',
    seq,
    provider: '5d2f3a9e-0c8b-4a41-8e33-2b7c4d1e9f60',
    ...body,
    premium: false,
    status: 'active',
    version: 1,
    received_at: at,
    expires_at: null,
  };
}

/** signalcast: the production build, its own database, users and a provider made through the admin API. */
async function startSignalcast(socketCount, { observed = false, receipts = observed } = {}) {
  const port = await freePort();
  const metricsToken = randomBytes(24).toString('base64url');
  const admin = { email: 'bench-admin@signalcast.bench', password: 'bench-admin-password' };
  const env = {
    ...process.env,
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    JWT_SECRET: randomBytes(48).toString('base64url'),
    ADMIN_EMAIL: admin.email,
    ADMIN_PASSWORD: admin.password,
    SEED_DEMO: 'false',
    AUTH_RATE_LIMIT_MAX: '1000000',
    WS_MAX_SOCKETS_PER_USER: '1000000',
    WS_MAX_CONNECTIONS: '1000000',
    SYNC_BATCH_MAX_ITEMS: '1000',
    DB_MIGRATE_ON_START: 'true',
    ...(observed && { METRICS_TOKEN: metricsToken }),
  };
  let dataDir;
  let dropDatabase = async () => undefined;
  if (process.env.DATABASE_URL) {
    const { default: pg } = await import('pg');
    const name = `signalcast_bench_${randomBytes(4).toString('hex')}`;
    const adminDb = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await adminDb.connect();
    await adminDb.query(`CREATE DATABASE ${name}`);
    await adminDb.end();
    const url = new URL(process.env.DATABASE_URL);
    url.pathname = `/${name}`;
    env.DATABASE_URL = url.toString();
    dropDatabase = async () => {
      const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    };
  } else {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'signalcast-bench-'));
    env.DATA_DIR = dataDir;
  }
  const spawnServer = async (extraEnv = {}) => {
    const [command, argv] = pinned(0, process.execPath, [...profileArgs, path.join(root, 'dist/main.js')]);
    const child = track(spawn(command, argv, { env: { ...env, ...extraEnv }, stdio: ['ignore', 'ignore', 'inherit'] }));
    await waitHttp(`http://127.0.0.1:${extraEnv.PORT ?? port}/health`);
    return child;
  };
  // --split: the instance started first takes the HTTP API (and writes); a second one, sharing the
  // database and a Redis bus, holds every socket. Both on the server's core.
  const split = 'split' in args;
  if (split && !process.env.DATABASE_URL) throw new Error('--split needs DATABASE_URL (two instances share the database)');
  if (split) {
    env.REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    env.REDIS_KEY_PREFIX = `bench-${randomBytes(4).toString('hex')}:`;
  }
  const servers = [await spawnServer(split ? { INSTANCE_ID: 'api' } : {})];
  const socketsPort = split ? await freePort() : port;
  if (split) servers.push(await spawnServer({ INSTANCE_ID: 'sockets', PORT: String(socketsPort), DB_MIGRATE_ON_START: 'false' }));
  const base = `http://127.0.0.1:${port}`;

  const adminToken = (await api(base, 'POST', '/api/auth/token', { body: admin })).body.access_token;
  const tiers = TIER_MIX.flatMap(([tier, share]) => Array.from({ length: Math.max(1, Math.round(USERS * share)) }, () => tier));
  const users = await inParallel(tiers, 4, async (tier, i) => {
    const email = `bench-${i}@signalcast.bench`;
    const password = 'bench-user-password';
    const created = await api(base, 'POST', '/api/v1/admin/users', {
      token: adminToken,
      body: { email, password, role: 'subscriber', tier },
    });
    if (created.status !== 201) throw new Error(`create user: ${created.status} ${JSON.stringify(created.body)}`);
    const token = (await api(base, 'POST', '/api/auth/token', { body: { email, password } })).body.access_token;
    return { tier, token };
  });
  const provider = await api(base, 'POST', '/api/v1/admin/users', {
    token: adminToken,
    body: { email: 'bench-provider@signalcast.bench', password: 'bench-provider-password', role: 'provider', tier: 'free' },
  });
  const apiKey = (await api(base, 'POST', `/api/v1/admin/users/${provider.body.id}/api-keys`, { token: adminToken })).body.key;

  // Sockets spread over the tier mix: socket i belongs to a user of the i-th tier slot.
  const slots = TIER_MIX.flatMap(([tier, share]) => Array.from({ length: Math.round(share * 20) }, () => tier));
  const byTier = {};
  for (const user of users) (byTier[user.tier] ??= []).push(user);
  const clients = Array.from({ length: socketCount }, (_, i) => {
    const pool = byTier[slots[i % slots.length]];
    const user = pool[Math.floor(i / slots.length) % pool.length];
    const symbols =
      scenario.follow > 0 ? Array.from({ length: scenario.follow }, (_, k) => SYMBOLS[(i + k * 7) % SYMBOLS.length]) : undefined;
    return { ...user, symbols };
  });
  let seq = 0;
  let scraper;
  return {
    name: observed ? (receipts ? 'signalcast:observed' : 'signalcast:scraped') : 'signalcast',
    kind: 'signalcast',
    receipts,
    /** Observed: a scrape of every instance's /metrics each second while signals flow (Prometheus scrapes every 15 s by default). */
    startScraping() {
      if (!observed) return;
      const times = [];
      let bytes = 0;
      const bases = [...new Set([base, `http://127.0.0.1:${socketsPort}`])];
      const timer = setInterval(async () => {
        for (const url of bases) {
          const started = now();
          const response = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } }).catch(() => undefined);
          if (response?.status !== 200) continue;
          bytes += (await response.text()).length;
          times.push(now() - started);
        }
      }, 1000);
      scraper = { timer, times, bytes: () => bytes };
    },
    /** What the scrapes cost, and the delivery latency the receipts measured (from `/ws/stats`). */
    async stopScraping() {
      if (!scraper) return undefined;
      clearInterval(scraper.timer);
      const times = scraper.times.sort((a, b) => a - b);
      const { body } = await api(`http://127.0.0.1:${socketsPort}`, 'GET', '/ws/stats', { token: adminToken });
      return {
        scrapes: times.length,
        scrape_ms: { p50: round(quantile(times, 0.5), 1), max: round(times.at(-1), 1) },
        exposition_bytes: times.length ? Math.round(scraper.bytes() / times.length) : 0,
        receipts_delivery_latency_ms: body.delivery_latency_ms,
        slo: body.slo,
      };
    },
    pid: servers.map((child) => child.pid),
    wsUrl: `ws://127.0.0.1:${socketsPort}/ws/signals`,
    clients,
    /** The numbers of the instance that holds the sockets, from `/ws/stats`. */
    async stats() {
      const { body } = await api(`http://127.0.0.1:${socketsPort}`, 'GET', '/ws/stats', { token: adminToken });
      return body.instances.find((i) => i.instance_id === body.instance_id);
    },
    /**
     * Sends signals i..i+batch-1 through the real sync endpoint (the batch endpoint when batch > 1);
     * resolves with what each one became.
     */
    async send(i, batch) {
      const bodies = Array.from({ length: batch }, (_, k) => syncBody(i * batch + k, `bench-${process.pid}-${++seq}`));
      const single = bodies.length === 1;
      const response = single
        ? await api(base, 'POST', '/api/v1/external-signals/sync/signal', { apiKey, body: bodies[0] })
        : await api(base, 'POST', '/api/v1/external-signals/sync/signals', { apiKey, body: { signals: bodies } });
      const results = single ? [{ status: response.status, ...response.body }] : (response.body.results ?? []);
      if (response.status >= 300 || results.some((r) => r.status !== 201))
        throw new Error(`sync: ${response.status} ${JSON.stringify(response.body)}`);
      return results.map((r, k) => ({ seq: r.seq, premium: bodies[k].premium, symbol: bodies[k].symbol }));
    },
    async stop() {
      await Promise.all(
        servers.map((child) => {
          child.kill('SIGTERM');
          return new Promise((resolve) => child.once('exit', resolve));
        }),
      );
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
      await dropDatabase();
    },
  };
}

/** A baseline server (bare ws or Socket.IO): everyone receives everything. */
async function startBaseline(name, script, socketCount) {
  const port = await freePort();
  const [command, argv] = pinned(0, process.execPath, [...profileArgs, path.join(here, script)]);
  const child = track(spawn(command, argv, { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
  await new Promise((resolve) => child.once('message', resolve));
  const base = `http://127.0.0.1:${port}`;
  return {
    name,
    kind: name === 'socketio' ? 'socketio' : 'ws',
    pid: child.pid,
    wsUrl: name === 'socketio' ? base : `ws://127.0.0.1:${port}`,
    clients: Array.from({ length: socketCount }, () => ({ tier: 'all', token: '' })),
    async send(i) {
      const seq = i + 1;
      await request(`${base}/publish`, { method: 'POST', body: JSON.stringify(wireSignal(seq)) });
      return [{ seq, premium: false, symbol: undefined }];
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

/** How a target sends: the scenario's plan, or one signal at a time for a `name:single` target. */
const SINGLE = { signals: 20, rate: 2, batch: 1 };
const planOf = (targetName) => (targetName.endsWith(':single') ? { ...scenario, ...SINGLE } : scenario);

function startTarget(name, sockets) {
  name = name.replace(/:single$/, '');
  if (name === 'signalcast') return startSignalcast(sockets);
  if (name === 'signalcast:observed') return startSignalcast(sockets, { observed: true });
  if (name === 'signalcast:scraped') return startSignalcast(sockets, { observed: true, receipts: false });
  if (name === 'bare-ws') return startBaseline('bare-ws', 'baseline-ws.mjs', sockets);
  if (name === 'socketio') return startBaseline('socketio', 'baseline-socketio.mjs', sockets);
  throw new Error(`unknown target ${name}`);
}

// ---------------------------------------------------------------- clients
function startWorkers(count) {
  return Promise.all(
    Array.from({ length: count }, () => {
      const [command, argv] = pinned(1, process.execPath, [path.join(here, 'client-worker.mjs')]);
      const child = track(spawn(command, argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
      const pending = new Map();
      child.on('message', (message) => pending.get(message.cmd)?.(message));
      const ask = (message, reply) => new Promise((resolve) => (pending.set(reply, resolve), child.send(message)));
      return { child, ask };
    }),
  );
}

// ---------------------------------------------------------------- measuring
const quantile = (sorted, q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : NaN);
const round = (value, digits = 1) => (Number.isFinite(value) ? Number(value.toFixed(digits)) : null);
const visible = (tier, premium) => !premium || tier === 'pro' || tier === 'elite' || tier === 'all';

async function runOne(targetName, socketCount) {
  const plan = planOf(targetName);
  const target = await startTarget(targetName, socketCount);
  const workers = await startWorkers(Math.ceil(socketCount / SOCKETS_PER_WORKER));
  try {
    // Warm-up before any socket exists (JIT, connection pools): not measured, not delivered.
    for (let i = 0; i < WARMUP_SIGNALS; i++) await target.send(i, plan.batch);
    await sleep(500);
    const idleBefore = processStats(target.pid);
    const connectStarted = now();
    const shares = workers.map((_, w) => target.clients.filter((_, i) => i % workers.length === w));
    const connected = await Promise.all(
      workers.map((worker, w) =>
        worker.ask(
          {
            cmd: 'connect',
            kind: target.kind,
            url: target.wsUrl,
            clients: shares[w],
            concurrency: 100,
            receipts: target.receipts === true,
          },
          'connected',
        ),
      ),
    );
    const connectSeconds = (now() - connectStarted) / 1000;
    const opened = connected.reduce((sum, c) => sum + c.opened, 0);
    const errors = connected.flatMap((c) => c.errors);
    await sleep(2000);
    const idleAfter = processStats(target.pid);

    // Send the signals: at `rate` per second, or all at once (rate 0) with bounded concurrency.
    const sent = new Map();
    const responses = [];
    const allResponses = [];
    const warmupUntil = plan.rate > 0 ? (plan.warmup ?? 0) * 1000 : 0;
    /** Sync response times by the second (of the run) their request was sent in. */
    const syncBySecond = Array.from({ length: Math.ceil(plan.rate > 0 ? plan.signals / plan.rate : 0) + 1 }, () => []);
    const cpuBefore = processStats(target.pid);
    const clientsBefore = workers.map((worker) => processStats(worker.child.pid).cpuTicks);
    const harnessBefore = process.cpuUsage();
    const postgresBefore = postgresTicks();
    // How late the harness's own callbacks run: a sync time includes it (the harness shares the
    // load core with the clients).
    const harnessDelay = monitorEventLoopDelay({ resolution: 1 });
    harnessDelay.enable();
    const runStarted = now();
    target.startScraping?.();
    const soak = plan.duration ? startSoakSampler(target, workers, plan, runStarted) : undefined;
    const sendOne = async (i) => {
      const started = now();
      const signals = await target.send(i, plan.batch);
      const finished = now();
      for (const { seq, premium, symbol } of signals) sent.set(seq, { at: started, premium, symbol });
      allResponses.push(finished - started);
      if (started - runStarted >= warmupUntil) responses.push(finished - started);
      syncBySecond[Math.floor((started - runStarted) / 1000)]?.push(finished - started);
    };
    const requests = Math.ceil(plan.signals / plan.batch);
    if (plan.rate > 0) {
      const inFlight = [];
      for (let i = 0; i < requests; i++) {
        const due = runStarted + (i * plan.batch * 1000) / plan.rate;
        await sleep(Math.max(0, due - now()));
        inFlight.push(sendOne(i));
      }
      await Promise.all(inFlight);
    } else {
      await inParallel(
        Array.from({ length: requests }, (_, i) => i),
        plan.concurrency ?? 50,
        sendOne,
      );
    }
    const sendSeconds = (now() - runStarted) / 1000;
    harnessDelay.disable();
    const soakReport = await soak?.stop();

    // Wait until every expected delivery arrived (or give up after a while), then collect.
    const expectedCache = new Map();
    const expectedFor = ({ tier, symbols }) => {
      const key = `${tier} ${symbols ?? ''}`;
      if (!expectedCache.has(key)) {
        const follows = (symbol) => !symbols || symbols.includes(symbol);
        const seqs = [...sent].filter(([, s]) => visible(tier, s.premium) && follows(s.symbol)).map(([seq]) => seq);
        expectedCache.set(
          key,
          seqs.sort((a, b) => a - b),
        );
      }
      return expectedCache.get(key);
    };
    let sockets = [];
    const deadline = now() + 30_000 + socketCount;
    for (;;) {
      sockets = (await Promise.all(workers.map((worker) => worker.ask({ cmd: 'collect' }, 'collected')))).flatMap((r) => r.sockets);
      const missing = sockets.some((s) => s.seqs.length < expectedFor(s).length);
      if (!missing || now() > deadline) break;
      await sleep(500);
    }
    const cpuAfter = processStats(target.pid);
    const observed = await target.stopScraping?.();
    const clientTicks = workers.reduce((sum, worker, w) => sum + processStats(worker.child.pid).cpuTicks - clientsBefore[w], 0);
    const harnessCpu = process.cpuUsage(harnessBefore);
    const postgresCpu = postgresTicks() - postgresBefore;
    const wall = (now() - runStarted) / 1000;

    // Correctness: each socket has exactly what its tier allows, in seq order. The baselines
    // promise no order across concurrent publishes (their seq is the harness's), only the set.
    let wrong = 0;
    const wrongExamples = [];
    for (const socket of sockets) {
      const expected = expectedFor(socket);
      const got = target.kind === 'signalcast' ? socket.seqs : [...socket.seqs].sort((a, b) => a - b);
      if (
        (target.kind === 'signalcast' && socket.outOfOrder > 0) ||
        got.length !== expected.length ||
        got.some((seq, i) => seq !== expected[i])
      ) {
        if (wrong++ < 3) {
          const have = new Set(got);
          const want = new Set(expected);
          wrongExamples.push({
            tier: socket.tier,
            symbols: socket.symbols,
            out_of_order: socket.outOfOrder,
            missing: expected.filter((seq) => !have.has(seq)).slice(0, 10),
            unexpected: got.filter((seq) => !want.has(seq)).slice(0, 10),
            duplicates: got.length - have.size,
          });
        }
      }
    }
    const perDelivery = [];
    const lastPerSignal = new Map();
    const firstPerSignal = new Map();
    let firstSend = Infinity;
    let lastReceive = 0;
    for (const { at } of sent.values()) firstSend = Math.min(firstSend, at);
    for (const socket of sockets) {
      socket.seqs.forEach((seq, i) => {
        const info = sent.get(seq);
        if (!info) return;
        const latency = socket.times[i] - info.at;
        perDelivery.push(latency);
        lastPerSignal.set(seq, Math.max(lastPerSignal.get(seq) ?? 0, latency));
        firstPerSignal.set(seq, Math.min(firstPerSignal.get(seq) ?? Infinity, latency));
        lastReceive = Math.max(lastReceive, socket.times[i]);
      });
    }
    perDelivery.sort((a, b) => a - b);
    const last = [...lastPerSignal.values()].sort((a, b) => a - b);
    // One signal at a time, per signal: eligible deliveries / time from the POST to the last
    // delivery (includes the request, validation and the commit), and / time from the first to the
    // last delivery (the fan-out alone: what each server spends once it starts broadcasting).
    const eligible = (seq) => {
      const { premium, symbol } = sent.get(seq);
      return sockets.filter((s) => visible(s.tier, premium) && (!s.symbols || s.symbols.includes(symbol))).length;
    };
    const perSignalRate = [...lastPerSignal].map(([seq, ms]) => eligible(seq) / (ms / 1000)).sort((a, b) => a - b);
    const fanoutRate = [...lastPerSignal]
      .map(([seq, ms]) => eligible(seq) / (Math.max(0.01, ms - firstPerSignal.get(seq)) / 1000))
      .sort((a, b) => a - b);
    responses.sort((a, b) => a - b);
    allResponses.sort((a, b) => a - b);
    return {
      target: targetName,
      sockets: socketCount,
      opened,
      connect_errors: errors,
      connect_rate_per_s: round(opened / connectSeconds, 0),
      rss_idle_bytes_per_connection: round((idleAfter.rss - idleBefore.rss) / Math.max(1, opened), 0),
      server_rss_mb: round(cpuAfter.rss / 2 ** 20, 1),
      signals: sent.size,
      deliveries: perDelivery.length,
      correct: wrong === 0 && opened === socketCount,
      sockets_with_wrong_set: wrong,
      ...(wrong > 0 && { wrong_examples: wrongExamples }),
      latency_ms: {
        p50: round(quantile(perDelivery, 0.5), 2),
        p99: round(quantile(perDelivery, 0.99), 2),
        max: round(perDelivery.at(-1), 2),
      },
      last_delivery_ms: { p50: round(quantile(last, 0.5), 2), p99: round(quantile(last, 0.99), 2), max: round(last.at(-1), 2) },
      deliveries_per_s: round(perDelivery.length / ((lastReceive - firstSend) / 1000), 0),
      single_signal_deliveries_per_s_p50: round(quantile(perSignalRate, 0.5), 0),
      fanout_deliveries_per_s_p50: round(quantile(fanoutRate, 0.5), 0),
      ingest_signals_per_s: round(sent.size / sendSeconds, 0),
      sync_response_ms: {
        // After the warm-up seconds, if any (else the same as `all`).
        p50: round(quantile(responses, 0.5), 2),
        p99: round(quantile(responses, 0.99), 2),
        all: { p50: round(quantile(allResponses, 0.5), 2), p99: round(quantile(allResponses, 0.99), 2), warmup_s: warmupUntil / 1000 },
        // At a set rate: the p99 of each second, to tell warm-up and hiccups from the steady state.
        p99_by_second: syncBySecond.map((times) =>
          round(
            quantile(
              times.sort((a, b) => a - b),
              0.99,
            ),
            1,
          ),
        ),
      },
      server_cpu_percent: round(((cpuAfter.cpuTicks - cpuBefore.cpuTicks) / TICKS_PER_S / wall) * 100, 0),
      // The server's user+system CPU over the measured window (from the first POST until every
      // delivery was collected) per delivery: the figure the machine's noise moves least. For
      // signalcast it includes the sync requests and the commits (PostgreSQL's own CPU is not in it).
      server_cpu_us_per_delivery: round(
        ((cpuAfter.cpuTicks - cpuBefore.cpuTicks) / TICKS_PER_S / Math.max(1, perDelivery.length)) * 1e6,
        2,
      ),
      // The load side, on the other core: the client processes, and the harness sending the POSTs.
      // Near 100 % together, the clients bound the measurement.
      client_cpu_percent: round((clientTicks / TICKS_PER_S / wall) * 100, 0),
      client_processes: workers.length,
      harness_cpu_percent: round(((harnessCpu.user + harnessCpu.system) / 1e6 / wall) * 100, 0),
      // PostgreSQL's processes (0 on the embedded database, which runs inside the server).
      database_cpu_percent: round((postgresCpu / TICKS_PER_S / wall) * 100, 0),
      harness_event_loop_delay_ms: { p50: round(harnessDelay.percentile(50) / 1e6, 1), p99: round(harnessDelay.percentile(99) / 1e6, 1) },
      ...(soakReport && { soak: soakReport }),
      ...(observed && { observed }),
    };
  } finally {
    for (const worker of workers) worker.child.send({ cmd: 'close' });
    await target.stop();
    await sleep(500);
  }
}

// ---------------------------------------------------------------- soak
/** Least-squares slope of `value` over `t` (ms), per minute. */
function slopePerMinute(samples, value) {
  const n = samples.length;
  if (n < 2) return NaN;
  const mt = samples.reduce((sum, s) => sum + s.t, 0) / n;
  const mv = samples.reduce((sum, s) => sum + value(s), 0) / n;
  const cov = samples.reduce((sum, s) => sum + (s.t - mt) * (value(s) - mv), 0);
  const varT = samples.reduce((sum, s) => sum + (s.t - mt) ** 2, 0);
  return (cov / varT) * 60_000;
}

/**
 * Each second while the signals flow: the server's RSS (from /proc), its V8 heap and event-loop
 * delay (from /ws/stats), and a few sockets dropped and resumed with ?since=.
 */
function startSoakSampler(target, workers, plan, startedAt) {
  const samples = [];
  let reconnects = 0;
  let stopped = false;
  let turn = 0;
  const loop = (async () => {
    while (!stopped) {
      const tick = now();
      const stats = await target.stats().catch(() => undefined);
      samples.push({
        t: tick - startedAt,
        rss: processStats(target.pid).rss,
        heap: stats?.heap_used_bytes ?? NaN,
        loopP99: stats?.event_loop_delay_ms.p99 ?? NaN,
        connections: stats?.total_connections ?? NaN,
      });
      if (plan.reconnects > 0) {
        const worker = workers[turn++ % workers.length];
        reconnects += (await worker.ask({ cmd: 'reconnect', count: plan.reconnects }, 'reconnected')).count;
      }
      await sleep(Math.max(0, 1000 - (now() - tick)));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      const lastFive = samples.filter((s) => s.t >= samples.at(-1).t - 5 * 60_000);
      const mb = (bytes) => round(bytes / 2 ** 20, 1);
      const loop99 = samples
        .map((s) => s.loopP99)
        .filter(Number.isFinite)
        .sort((a, b) => a - b);
      return {
        seconds: round(samples.at(-1).t / 1000, 0),
        samples: samples.length,
        reconnects,
        connections_min: Math.min(...samples.map((s) => s.connections)),
        rss_mb: { first: mb(samples[0].rss), last: mb(samples.at(-1).rss), max: mb(Math.max(...samples.map((s) => s.rss))) },
        heap_mb: { first: mb(samples[0].heap), last: mb(samples.at(-1).heap), max: mb(Math.max(...samples.map((s) => s.heap))) },
        rss_slope_mb_per_min_last_5_min: round(slopePerMinute(lastFive, (s) => s.rss) / 2 ** 20, 2),
        heap_slope_mb_per_min_last_5_min: round(slopePerMinute(lastFive, (s) => s.heap) / 2 ** 20, 2),
        event_loop_delay_p99_ms: { median_of_seconds: round(quantile(loop99, 0.5), 1), worst_second: round(loop99.at(-1), 1) },
        per_second: samples.map((s) => [round(s.t / 1000, 0), mb(s.rss), mb(s.heap), s.loopP99]),
      };
    },
  };
}

// ---------------------------------------------------------------- report
function table(results) {
  const columns = [
    ['target', (r) => r.target],
    ['N', (r) => r.sockets],
    ['ok', (r) => (r.correct ? 'yes' : `NO (${r.sockets_with_wrong_set} wrong, ${r.opened} open)`)],
    ['deliv/s', (r) => r.deliveries_per_s],
    ['1-signal deliv/s', (r) => r.single_signal_deliveries_per_s_p50],
    ['fan-out deliv/s', (r) => r.fanout_deliveries_per_s_p50],
    ['p50 ms', (r) => r.latency_ms.p50],
    ['p99 ms', (r) => r.latency_ms.p99],
    ['last p50', (r) => r.last_delivery_ms.p50],
    ['last p99', (r) => r.last_delivery_ms.p99],
    ['B/conn', (r) => r.rss_idle_bytes_per_connection],
    ['conn/s', (r) => r.connect_rate_per_s],
    ['sync p50', (r) => r.sync_response_ms.p50],
    ['sync p99', (r) => r.sync_response_ms.p99],
    ['signals/s', (r) => r.ingest_signals_per_s],
    ['cpu %', (r) => r.server_cpu_percent],
    ['cpu µs/deliv', (r) => r.server_cpu_us_per_delivery],
    ['client cpu %', (r) => `${r.client_cpu_percent} (${r.client_processes}p) +${r.harness_cpu_percent}`],
  ];
  const rows = results.map((r) => columns.map(([, get]) => String(get(r))));
  const widths = columns.map(([name], i) => Math.max(name.length, ...rows.map((row) => row[i].length)));
  const line = (cells) => `| ${cells.map((cell, i) => cell.padEnd(widths[i])).join(' | ')} |`;
  return [line(columns.map(([name]) => name)), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function ratios(results) {
  const lines = [];
  for (const n of new Set(results.map((r) => r.sockets))) {
    const of = (name) => results.find((r) => r.sockets === n && r.target === name);
    const sc = of('signalcast');
    const observed = of('signalcast:observed');
    const single = of('bare-ws:single');
    const ceiling = of('bare-ws');
    // Operated (receipts and scrapes) against plain, each as a ratio to the ceiling of the same run.
    for (const [name, run] of [
      ['signalcast', sc],
      ['signalcast:scraped', of('signalcast:scraped')],
      ['signalcast:observed', observed],
    ]) {
      if (!run || !sc || (!observed && !of('signalcast:scraped'))) continue;
      const parts = [];
      if (ceiling) {
        parts.push(
          `one-signal deliveries/s ${round(run.single_signal_deliveries_per_s_p50 / ceiling.single_signal_deliveries_per_s_p50, 2)}x`,
        );
        parts.push(`last-delivery p99 ${round(run.last_delivery_ms.p99 / ceiling.last_delivery_ms.p99, 2)}x`);
        parts.push(`server CPU per delivery ${round(run.server_cpu_us_per_delivery / ceiling.server_cpu_us_per_delivery, 2)}x`);
      }
      if (single)
        parts.push(`deliveries/s ${round(run.deliveries_per_s / single.single_signal_deliveries_per_s_p50, 2)}x of bare-ws:single`);
      if (parts.length) lines.push(`N=${n} ${name} / the ceiling: ${parts.join(', ')}`);
    }
    for (const base of ['bare-ws', 'socketio']) {
      const other = of(base);
      if (!sc || !other) continue;
      lines.push(
        `N=${n} signalcast / ${base}: deliveries/s ${round(sc.deliveries_per_s / other.deliveries_per_s, 2)}x, ` +
          `one-signal deliveries/s ${round(sc.single_signal_deliveries_per_s_p50 / other.single_signal_deliveries_per_s_p50, 2)}x ` +
          `(fan-out alone ${round(sc.fanout_deliveries_per_s_p50 / other.fanout_deliveries_per_s_p50, 2)}x), ` +
          `last-delivery p99 ${round(sc.last_delivery_ms.p99 / other.last_delivery_ms.p99, 2)}x, ` +
          `RSS/conn ${round(sc.rss_idle_bytes_per_connection / other.rss_idle_bytes_per_connection, 2)}x, ` +
          `server CPU per delivery ${round(sc.server_cpu_us_per_delivery / other.server_cpu_us_per_delivery, 2)}x`,
      );
    }
    if (sc && single) {
      lines.push(
        `N=${n} signalcast deliveries/s / the ceiling's one signal at a time (bare-ws:single): ` +
          `${round(sc.deliveries_per_s / single.single_signal_deliveries_per_s_p50, 2)}x`,
      );
    }
  }
  return lines.join('\n');
}

const machine = {
  cpu: os.cpus()[0]?.model,
  cores: os.cpus().length,
  memory_gb: round(os.totalmem() / 2 ** 30, 1),
  node: process.version,
  kernel: os.release(),
  database: process.env.DATABASE_URL ? 'postgresql' : 'pglite',
  signalcast: 'split' in args ? 'two instances on a Redis bus: one takes the HTTP API, one holds the sockets' : 'one instance',
  pinned: hasTaskset ? 'server on core 0, clients on core 1' : 'not pinned',
  open_files_limit: 'see `ulimit -n`',
};

const results = [];
for (const sockets of scenario.sockets) {
  for (const target of scenario.targets) {
    process.stderr.write(`${scenarioName}: ${target} with ${sockets} sockets...\n`);
    results.push(await runOne(target, sockets));
  }
}
const report = { scenario: scenarioName, options: scenario, machine, at: new Date().toISOString(), results };
console.log(`\n${scenarioName} (${machine.cores} cores, ${machine.cpu}, ${machine.database}, ${machine.pinned})\n`);
console.log(table(results));
for (const { soak } of results.filter((r) => r.soak)) {
  const { per_second: _perSecond, ...summary } = soak;
  console.log(`\nsoak: ${JSON.stringify(summary)}`);
}
const ratioText = ratios(results);
if (ratioText) console.log(`\n${ratioText}`);
const out = args.out ?? path.join(root, 'bench/results', `${report.at.replace(/[:.]/g, '-')}-${scenarioName}.json`);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(report, null, 2));
console.log(`\nwritten to ${path.relative(root, out)}`);
const failed = results.filter((r) => !r.correct);
if (failed.length > 0) {
  console.error(`FAILED: wrong delivery set for ${failed.map((r) => `${r.target}@${r.sockets}`).join(', ')}`);
  for (const r of failed) console.error(JSON.stringify(r.wrong_examples));
  process.exit(1);
}
process.exit(0);
