import { readFile, readdir, mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { bindMigrationAwareSqlAdapterFactory, type SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import type { MigrationList, SchemaEngine } from '@prisma/schema-engine-wasm';

/** `prisma/` sits two levels above both `src/database/` and `dist/database/`. */
export const PRISMA_DIR = fileURLToPath(new URL('../../prisma/', import.meta.url));
const MIGRATIONS_DIR = path.join(PRISMA_DIR, 'migrations');
const SCHEMA_PATH = path.join(PRISMA_DIR, 'schema.prisma');
const NO_FILTERS = { externalTables: [], externalEnums: [] };

type Bindings = typeof import('@prisma/schema-engine-wasm/schema_engine_bg');
let bindings: Promise<Bindings> | undefined;

/**
 * Prisma's schema engine compiled to WebAssembly: the native binary cannot be downloaded on our
 * machines. It is instantiated by hand, as the package's own entry would do, because that entry
 * imports a `.wasm` file, which Node 22.12–22.18 and 24.0–24.4 refuse and later ones call experimental.
 */
function loadBindings(): Promise<Bindings> {
  bindings ??= (async () => {
    const bg = await import('@prisma/schema-engine-wasm/schema_engine_bg');
    const require = createRequire(import.meta.url);
    const wasmPath = path.join(path.dirname(require.resolve('@prisma/schema-engine-wasm/schema_engine_bg')), 'schema_engine_bg.wasm');
    const { instance } = await WebAssembly.instantiate(await readFile(wasmPath), {
      './schema_engine_bg.js': bg as unknown as WebAssembly.ModuleImports,
    });
    bg.__wbg_set_wasm(instance.exports);
    (instance.exports as { __wbindgen_start(): void }).__wbindgen_start();
    return bg;
  })();
  return bindings;
}

/**
 * Runs `work` with a schema engine on `adapter`, then frees the engine and disposes every
 * connection it opened through the factory. The engine never disposes them itself: on PostgreSQL
 * each is a pg pool whose idle client kept `npm run db:migrate` alive ~10 s after it was done.
 */
async function withEngine<T>(adapter: SqlMigrationAwareDriverAdapterFactory, work: (engine: SchemaEngine) => Promise<T>): Promise<T> {
  const { SchemaEngine } = await loadBindings();
  const schema = await readFile(SCHEMA_PATH, 'utf8');
  const opened: { dispose(): Promise<void> }[] = [];
  const tracked: SqlMigrationAwareDriverAdapterFactory = Object.create(adapter, {
    connect: { value: async () => track(await adapter.connect()) },
    connectToShadowDb: { value: async () => track(await adapter.connectToShadowDb()) },
  });
  const track = <C extends { dispose(): Promise<void> }>(connection: C): C => (opened.push(connection), connection);
  const engine = await SchemaEngine.new(
    { datamodels: [[SCHEMA_PATH, schema]] },
    () => undefined,
    bindMigrationAwareSqlAdapterFactory(tracked),
  );
  try {
    return await work(engine);
  } finally {
    engine.free();
    await Promise.all(opened.map((connection) => connection.dispose()));
  }
}

async function readMigrations(): Promise<MigrationList> {
  const entries = await readdir(MIGRATIONS_DIR, { withFileTypes: true }).catch(() => []);
  const directories = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  const lockPath = path.join(MIGRATIONS_DIR, 'migration_lock.toml');
  return {
    baseDir: MIGRATIONS_DIR,
    lockfile: {
      path: 'migration_lock.toml',
      content: await readFile(lockPath, 'utf8').catch(() => null),
    },
    shadowDbInitScript: '',
    migrationDirectories: await Promise.all(
      directories.map(async (dir) => ({
        path: dir,
        migrationFile: {
          path: 'migration.sql',
          content: await readFile(path.join(MIGRATIONS_DIR, dir, 'migration.sql'), 'utf8').then(
            (value) => ({ tag: 'ok' as const, value }),
            (error: Error) => ({ tag: 'error' as const, value: error.message }),
          ),
        },
      })),
    ),
  };
}

/** Applies pending migrations exactly as `prisma migrate deploy` would; returns their names. */
export async function applyMigrations(adapter: SqlMigrationAwareDriverAdapterFactory): Promise<string[]> {
  const migrationsList = await readMigrations();
  return withEngine(
    adapter,
    async (engine) => (await engine.applyMigrations({ migrationsList, filters: NO_FILTERS })).appliedMigrationNames,
  );
}

/**
 * The SQL that would bring a database migrated with every migration in prisma/migrations to
 * schema.prisma, or `null` when they match. `adapter` must be a throw-away database: the
 * migrations are applied to it and the schema engine diffs it against the schema. (The WebAssembly
 * engine's own `createMigration` wants a shadow database from a factory that is not exposed.)
 */
export async function pendingSchemaChange(adapter: SqlMigrationAwareDriverAdapterFactory): Promise<string | null> {
  await applyMigrations(adapter);
  const files = [{ path: SCHEMA_PATH, content: await readFile(SCHEMA_PATH, 'utf8') }];
  return withEngine(adapter, async (engine) => {
    const { stdout } = await engine.diff({
      from: { tag: 'schemaDatasource', files, configDir: PRISMA_DIR },
      to: { tag: 'schemaDatamodel', files },
      script: true,
      exitCode: null,
      filters: NO_FILTERS,
    });
    return !stdout || /^-- This is an empty migration/.test(stdout.trim()) ? null : stdout;
  });
}

/** Writes prisma/migrations/<timestamp>_<name>/migration.sql for the pending schema change. */
export async function createMigration(adapter: SqlMigrationAwareDriverAdapterFactory, name: string): Promise<string | null> {
  const sql = await pendingSchemaChange(adapter);
  if (sql === null) return null;
  const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
  const dir = path.join(MIGRATIONS_DIR, `${stamp}_${name}`);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'migration.sql'), sql);
  const lockPath = path.join(MIGRATIONS_DIR, 'migration_lock.toml');
  await readFile(lockPath).catch(() =>
    writeFile(
      lockPath,
      '# Please do not edit this file manually\n# It should be added in your version-control system (e.g., Git)\nprovider = "postgresql"\n',
    ),
  );
  return dir;
}
