/**
 * `npm run db:migrate`: applies pending migrations to DATABASE_URL (PostgreSQL) or, without it, to
 * the embedded database in DATA_DIR, as `prisma migrate deploy` would.
 */
import { loadEnv } from '../config/app-config.js';
import { openAdapter } from '../database/adapter.factory.js';
import { applyMigrations } from '../database/migrator.js';

const env = loadEnv();
const opened = await openAdapter({ databaseUrl: env.DATABASE_URL, dataDir: env.DATA_DIR, poolSize: 1 });
try {
  const applied = await applyMigrations(opened.adapter);
  console.log(applied.length ? `applied: ${applied.join(', ')}` : 'no pending migrations');
} finally {
  await opened.close();
}
// Done: the WebAssembly schema engine leaves a 10 s timer of its own behind after it is freed,
// which would keep this process (and whoever waits for it) waiting for nothing.
process.exit(process.exitCode ?? 0);
