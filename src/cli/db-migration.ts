/**
 * `npm run db:migration -- <name>`: writes prisma/migrations/<timestamp>_<name>/migration.sql for
 * the difference between the existing migrations and prisma/schema.prisma. Runs on a throw-away
 * in-memory PGlite database (its shadow database replays the existing migrations), so it needs
 * neither PostgreSQL nor the native schema engine.
 */
import { openAdapter } from '../database/adapter.factory.js';
import { createMigration } from '../database/migrator.js';

const name = (process.argv[2] ?? '').trim();
if (!/^[a-z0-9_]+$/.test(name)) {
  console.error('usage: npm run db:migration -- <name>   (lowercase letters, digits and _)');
  process.exit(2);
}
const opened = await openAdapter({ dataDir: 'memory://', poolSize: 1 });
try {
  const dir = await createMigration(opened.adapter, name);
  console.log(dir ? `created ${dir}` : 'schema.prisma matches the migrations: nothing to create');
} finally {
  await opened.close();
}
// Done: the WebAssembly schema engine leaves a 10 s timer of its own behind after it is freed,
// which would keep this process (and whoever waits for it) waiting for nothing.
process.exit(process.exitCode ?? 0);
