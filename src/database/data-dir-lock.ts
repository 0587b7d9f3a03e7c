import { randomBytes } from 'node:crypto';
import { linkSync, readFileSync, readlinkSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Who holds a data directory: a pid is not enough, since pids are reused after a crash. */
interface Holder {
  pid: number;
  /** The process's start time (Linux: clock ticks since boot), when it can be read. */
  started: string | null;
  /** The boot and the pid namespace the pid belongs to (another container sees other pids). */
  boot?: string | null;
  pidNamespace?: string | null;
  token: string;
}

/** A holder touches the lock this often; one seen from another pid namespace is alive while it does. */
const HEARTBEAT_MS = 5_000;
const HEARTBEAT_STALE_MS = 4 * HEARTBEAT_MS;
/** Breaking a stale lock takes microseconds: a break marker older than this was left by a crash. */
const BREAK_MARKER_STALE_MS = 10_000;
/** For a short synchronous wait while another process breaks a stale lock. */
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

const readOr = <T>(read: () => T): T | null => {
  try {
    return read();
  } catch {
    return null;
  }
};
const BOOT = readOr(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
const PID_NAMESPACE = readOr(() => readlinkSync('/proc/self/ns/pid'));

export class DataDirInUseError extends Error {
  constructor(
    readonly dir: string,
    readonly holder: Holder,
  ) {
    super(
      `The embedded database in ${path.resolve(dir)} is in use by process ${holder.pid}. ` +
        'Two processes on one PGlite directory overwrite each other and lose acknowledged signals. ' +
        'Stop that process first, give this one another DATA_DIR, or use PostgreSQL (DATABASE_URL) to run several instances.',
    );
    this.name = 'DataDirInUseError';
  }
}

const LOCK_FILE = 'signalcast.lock';

/** `/proc/<pid>/stat` field 22: fixed for a process's life, different for a reused pid. */
function startTimeOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function isAlive(holder: Holder, file: string): boolean {
  if (holder.boot && BOOT && holder.boot !== BOOT) return false;
  if (holder.pidNamespace && PID_NAMESPACE && holder.pidNamespace !== PID_NAMESPACE) {
    // Its pid means nothing here: it is alive while it keeps touching the lock.
    const touched = readOr(() => statSync(file).mtimeMs);
    return touched !== null && Date.now() - touched < HEARTBEAT_STALE_MS;
  }
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return holder.started === null || startTimeOf(holder.pid) === holder.started;
}

/** The lock file's text, or `null` if there is none. */
const readLock = (file: string): string | null => readOr(() => readFileSync(file, 'utf8'));

function parseHolder(text: string | null): Holder | undefined {
  try {
    const holder = JSON.parse(text ?? '') as Holder;
    return Number.isSafeInteger(holder.pid) && typeof holder.token === 'string' ? holder : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One process at a time on an embedded database directory. The lock is a file created atomically
 * (written aside, then hard-linked into place, so it is never seen half-written) naming the
 * holder's pid and start time. A lock whose process is gone (a crash, SIGKILL) is stale and taken
 * over, so it never blocks a restart.
 */
export class DataDirLock {
  private released = false;
  private readonly onExit = () => this.release();
  private readonly heartbeat: NodeJS.Timeout;

  private constructor(
    private readonly file: string,
    private readonly holder: Holder,
  ) {
    process.once('exit', this.onExit);
    this.heartbeat = setInterval(() => readOr(() => utimesSync(file, new Date(), new Date())), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** Takes the directory, or throws `DataDirInUseError` naming the process that holds it. */
  static acquire(dir: string): DataDirLock {
    const file = path.join(dir, LOCK_FILE);
    const holder: Holder = {
      pid: process.pid,
      started: startTimeOf(process.pid),
      boot: BOOT,
      pidNamespace: PID_NAMESPACE,
      token: randomBytes(8).toString('hex'),
    };
    const draft = `${file}.${holder.token}`;
    writeFileSync(draft, JSON.stringify(holder));
    try {
      for (let attempt = 0; attempt < 20; attempt++) {
        try {
          linkSync(draft, file);
          return new DataDirLock(file, holder);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        }
        const text = readLock(file);
        if (text === null) continue; // released meanwhile: try again
        const current = parseHolder(text);
        if (current && isAlive(current, file)) throw new DataDirInUseError(dir, current);
        if (!DataDirLock.breakStale(file, text)) Atomics.wait(PAUSE, 0, 0, 10); // another process is breaking it
      }
      throw new Error(`Could not lock ${path.resolve(dir)}: the lock file keeps changing`);
    } finally {
      unlinkSync(draft);
    }
  }

  /**
   * Removes a lock judged stale, if it is still the one judged (same text). Breaking is exclusive:
   * only the process that created the break marker may remove the lock, so two starters can never
   * remove each other's fresh lock. A marker left by a crash in those microseconds is cleared.
   */
  private static breakStale(file: string, staleText: string): boolean {
    const marker = `${file}.break`;
    try {
      writeFileSync(marker, String(process.pid), { flag: 'wx' });
    } catch {
      const age = readOr(() => Date.now() - statSync(marker).mtimeMs);
      if (age !== null && age > BREAK_MARKER_STALE_MS) readOr(() => unlinkSync(marker));
      return false;
    }
    try {
      if (readLock(file) === staleText) unlinkSync(file);
      return true;
    } finally {
      unlinkSync(marker);
    }
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    clearInterval(this.heartbeat);
    process.removeListener('exit', this.onExit);
    if (parseHolder(readLock(this.file))?.token === this.holder.token) unlinkSync(this.file);
  }
}
