#!/usr/bin/env node
// npm run cluster [-- N]: N local instances (ports PORT..PORT+N-1, default 3000) sharing one
// PostgreSQL and one Redis, for trying the cluster out. Ctrl-C stops them all.
//   DATABASE_URL  default postgresql://postgres@127.0.0.1:5432/signalcast (created if missing)
//   REDIS_URL     default redis://127.0.0.1:6379
//   JWT_SECRET    default: one random secret shared by the instances of this run
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

const count = Number(process.argv[2] ?? 3);
if (!Number.isInteger(count) || count < 1 || count > 16) {
  console.error('usage: npm run cluster -- <instances 1-16>');
  process.exit(2);
}
const basePort = Number(process.env.PORT ?? 3000);
const databaseUrl = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/signalcast';
const env = {
  ...process.env,
  DATABASE_URL: databaseUrl,
  REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  JWT_SECRET: process.env.JWT_SECRET ?? randomBytes(48).toString('base64url'),
  ADMIN_EMAIL: process.env.ADMIN_EMAIL ?? 'admin@cluster.local',
  ADMIN_PASSWORD: process.env.ADMIN_PASSWORD ?? 'cluster-admin-password',
};

// Create the database if it does not exist, then migrate it once for all instances.
const url = new URL(databaseUrl);
const name = url.pathname.slice(1);
url.pathname = '/postgres';
const admin = new pg.Client({ connectionString: url.toString() });
await admin.connect();
const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
await admin.end();
const migrate = spawnSync(process.execPath, ['dist/cli/db-migrate.js'], { env, stdio: 'inherit' });
if (migrate.status !== 0) process.exit(migrate.status ?? 1);

const children = Array.from({ length: count }, (_, i) => {
  const port = basePort + i;
  const child = spawn(process.execPath, ['dist/main.js'], {
    env: { ...env, PORT: String(port), INSTANCE_ID: `local-${port}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (chunk) => process.stdout.write(String(chunk).replace(/^(?=.)/gm, `[${port}] `)));
  }
  child.on('exit', (code) => console.log(`[${port}] exited with ${code}`));
  return child;
});
console.log(
  `\n${count} instances on ports ${basePort}-${basePort + count - 1}; admin ${env.ADMIN_EMAIL} / ${
    process.env.ADMIN_PASSWORD ? '(from ADMIN_PASSWORD)' : env.ADMIN_PASSWORD
  }\nCluster stats: GET http://localhost:${basePort}/ws/stats (admin token). Ctrl-C stops all.\n`,
);
const stop = () => children.forEach((child) => child.kill('SIGTERM'));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
