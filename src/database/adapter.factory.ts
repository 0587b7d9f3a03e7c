import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { DataDirLock } from './data-dir-lock.js';

export interface OpenedAdapter {
  adapter: SqlMigrationAwareDriverAdapterFactory;
  kind: 'postgresql' | 'pglite';
  /** Releases what the adapter holds beyond Prisma's own pool (the embedded database). */
  close(): Promise<void>;
}

export interface AdapterOptions {
  databaseUrl?: string;
  /** PGlite data directory, or `memory://` for a throw-away database. */
  dataDir: string;
  poolSize: number;
}

/** PostgreSQL when a URL is given, otherwise the embedded PGlite database in `dataDir`. */
export async function openAdapter(options: AdapterOptions): Promise<OpenedAdapter> {
  if (options.databaseUrl) {
    return {
      kind: 'postgresql',
      adapter: new PrismaPg({
        connectionString: options.databaseUrl,
        max: options.poolSize,
        connectionTimeoutMillis: 5_000,
        // Short queries only: PostgreSQL's JIT never pays off here and can cost far more than the
        // query. Without statistics (autovacuum off, or a young table) the writer's read was
        // estimated above `jit_above_cost` at ~40k signals and spent ~180 ms compiling, each time.
        // Sessions in UTC: the drivers hand PostgreSQL a Date without its offset, which it reads in
        // the session's time zone (a server set to another zone would shift such instants by hours;
        // the queries that compare instants also pass them with their offset).
        // An `options` parameter in DATABASE_URL replaces these.
        options: '-c jit=off -c TimeZone=UTC',
      }),
      close: async () => undefined,
    };
  }
  if (options.dataDir.startsWith('memory://')) {
    const pglite = await PGlite.create(options.dataDir);
    return { kind: 'pglite', adapter: new PrismaPGlite(pglite), close: () => pglite.close() };
  }
  await mkdir(options.dataDir, { recursive: true });
  const lock = DataDirLock.acquire(options.dataDir);
  try {
    const pglite = await PGlite.create(options.dataDir);
    return {
      kind: 'pglite',
      adapter: new PrismaPGlite(pglite),
      close: async () => {
        await pglite.close();
        lock.release();
      },
    };
  } catch (error) {
    lock.release();
    throw error;
  }
}
