import { randomBytes } from 'node:crypto';
import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Who holds a data directory: a pid is not enough, since pids are reused after a crash. */
interface Holder {
  pid: number;
  /** The process's start time (Linux: clock ticks since boot), when it can be read. */
  started: string | null;
  token: string;
}

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

function isAlive(holder: Holder): boolean {
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return holder.started === null || startTimeOf(holder.pid) === holder.started;
}

function readHolder(file: string): Holder | undefined {
  try {
    const holder = JSON.parse(readFileSync(file, 'utf8')) as Holder;
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

  private constructor(
    private readonly file: string,
    private readonly holder: Holder,
  ) {
    process.once('exit', this.onExit);
  }

  /** Takes the directory, or throws `DataDirInUseError` naming the process that holds it. */
  static acquire(dir: string): DataDirLock {
    const file = path.join(dir, LOCK_FILE);
    const holder: Holder = { pid: process.pid, started: startTimeOf(process.pid), token: randomBytes(8).toString('hex') };
    const draft = `${file}.${holder.token}`;
    writeFileSync(draft, JSON.stringify(holder));
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          linkSync(draft, file);
          return new DataDirLock(file, holder);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        }
        const current = readHolder(file);
        if (current && isAlive(current)) throw new DataDirInUseError(dir, current);
        DataDirLock.removeStale(file, current);
      }
      throw new Error(`Could not lock ${path.resolve(dir)}: the lock file keeps changing`);
    } finally {
      unlinkSync(draft);
    }
  }

  /**
   * Moves a stale lock aside. Another process may have replaced it in the meantime: what was moved
   * is checked, and a live lock taken by mistake is put back.
   */
  private static removeStale(file: string, stale: Holder | undefined): void {
    const aside = `${file}.stale-${randomBytes(8).toString('hex')}`;
    try {
      renameSync(file, aside);
    } catch {
      return;
    }
    const moved = readHolder(aside);
    if (moved && stale && moved.token !== stale.token && isAlive(moved)) {
      try {
        linkSync(aside, file);
      } catch {
        // Someone locked it again already: the next attempt reads who.
      }
    }
    unlinkSync(aside);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    process.removeListener('exit', this.onExit);
    if (readHolder(this.file)?.token === this.holder.token) unlinkSync(this.file);
  }
}
