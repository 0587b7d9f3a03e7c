import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DataDirInUseError, DataDirLock } from './data-dir-lock.js';

/** The lock's races, replayed step by step in one process (the e2e spec covers real processes). */
describe('DataDirLock', () => {
  const dirs: string[] = [];
  const fresh = () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'signalcast-lock-unit-'));
    dirs.push(dir);
    return { dir, file: path.join(dir, 'signalcast.lock') };
  };
  afterEach(() => dirs.splice(0).forEach((dir) => rmSync(dir, { recursive: true, force: true })));
  const breakStale = (file: string, text: string) =>
    (DataDirLock as unknown as { breakStale(file: string, text: string): boolean }).breakStale(file, text);
  const tokenOf = (file: string) => JSON.parse(readFileSync(file, 'utf8')).token;

  it('never removes a fresh lock on the word of a starter that judged an older one stale', () => {
    const { dir, file } = fresh();
    writeFileSync(file, '{"pi'); // unreadable: stale
    // A second starter read that text and is about to break it; the first takes the lock meanwhile.
    const first = DataDirLock.acquire(dir);
    const token = tokenOf(file);
    breakStale(file, '{"pi');
    expect(tokenOf(file)).toBe(token);
    expect(() => DataDirLock.acquire(dir)).toThrow(DataDirInUseError);
    first.release();
    expect(existsSync(file)).toBe(false);
  });

  it('lets one process at a time break a stale lock, and clears a break marker left by a crash', () => {
    const { dir, file } = fresh();
    writeFileSync(file, '{"pi');
    writeFileSync(`${file}.break`, '1');
    expect(breakStale(file, '{"pi')).toBe(false); // someone else is breaking it
    expect(readFileSync(file, 'utf8')).toBe('{"pi');
    const old = new Date(Date.now() - 60_000);
    utimesSync(`${file}.break`, old, old);
    DataDirLock.acquire(dir).release();
  });

  it('judges a holder in another pid namespace by its heartbeat, and one from another boot as gone', () => {
    const { dir, file } = fresh();
    const elsewhere = {
      pid: 1,
      started: '1',
      pidNamespace: 'pid:[1]',
      token: 'other',
      boot: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
    };
    expect(readlinkSync('/proc/self/ns/pid')).not.toBe(elsewhere.pidNamespace);
    writeFileSync(file, JSON.stringify(elsewhere));
    expect(() => DataDirLock.acquire(dir)).toThrow(DataDirInUseError);
    const silent = new Date(Date.now() - 60_000);
    utimesSync(file, silent, silent);
    DataDirLock.acquire(dir).release();

    writeFileSync(file, JSON.stringify({ pid: process.pid, started: null, boot: 'another-boot', token: 'old' }));
    DataDirLock.acquire(dir).release();
  });
});
