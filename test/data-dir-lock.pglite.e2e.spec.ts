import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Api, signalBody } from './support/clients.js';
import { startApp, type TestApp } from './support/test-app.js';

/** The embedded database: one process at a time on a data directory, and a crash never blocks a restart. */
describe('embedded data directory lock', () => {
  const embedded = { drop: async () => undefined };
  const dirs: string[] = [];
  const freshDir = () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'signalcast-lock-'));
    dirs.push(dir);
    return dir;
  };
  afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

  /** A lock file as another process would leave it: its pid and its start time. */
  const lockFor = (dir: string, pid: number, started: string | null) =>
    writeFileSync(path.join(dir, 'signalcast.lock'), JSON.stringify({ pid, started, token: 'other' }));
  const startTimeOf = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19]!;

  it('refuses a second instance on the same directory, naming it and the holder, and loses nothing', async () => {
    const dir = freshDir();
    const first = await startApp(embedded, { DATA_DIR: dir });
    const api = new Api(first);
    const provider = await api.provider();
    const stored = [];
    for (let i = 0; i < 3; i++) stored.push((await api.sync(provider.apiKey, signalBody())).body.seq);

    const second = startApp(embedded, { DATA_DIR: dir });
    await expect(second).rejects.toThrow(`${path.resolve(dir)} is in use by process ${process.pid}`);
    await first.close();

    const again: TestApp = await startApp(embedded, { DATA_DIR: dir });
    const reader = await new Api(again).user('elite');
    const listed = await new Api(again).request('GET', '/api/v1/signals', { token: reader.token });
    expect(listed.body.data.map((s: { seq: number }) => s.seq)).toEqual(stored);
    await again.close();
  });

  it('refuses while another live process holds the lock, and takes it over once that process was killed', async () => {
    const dir = freshDir();
    const holder = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    await new Promise((resolve) => holder.once('spawn', resolve));
    const exited = new Promise((resolve) => holder.once('exit', resolve));
    try {
      lockFor(dir, holder.pid!, startTimeOf(holder.pid!));
      await expect(startApp(embedded, { DATA_DIR: dir })).rejects.toThrow(`is in use by process ${holder.pid}`);
    } finally {
      holder.kill('SIGKILL');
    }
    await exited;
    const app = await startApp(embedded, { DATA_DIR: dir });
    expect(JSON.parse(readFileSync(path.join(dir, 'signalcast.lock'), 'utf8')).pid).toBe(process.pid);
    await app.close();
  });

  it('takes over a lock whose pid now belongs to another process, or that cannot be read', async () => {
    for (const leave of [
      (dir: string) => lockFor(dir, process.pid, 'not-our-start-time'),
      (dir: string) => writeFileSync(path.join(dir, 'signalcast.lock'), '{"pi'),
    ]) {
      const dir = freshDir();
      leave(dir);
      const app = await startApp(embedded, { DATA_DIR: dir });
      await app.close();
    }
  });
});
