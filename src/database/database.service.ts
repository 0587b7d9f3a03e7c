import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { PrismaClient } from '../generated/prisma/client.js';
import { AppConfig } from '../config/app-config.js';
import { openAdapter, type OpenedAdapter } from './adapter.factory.js';
import { applyMigrations } from './migrator.js';

/**
 * Owns the Prisma client. PostgreSQL when `DATABASE_URL` is set, otherwise the embedded PGlite
 * database in `DATA_DIR`, which is created and migrated on first start.
 */
@Injectable()
export class DatabaseService implements OnApplicationShutdown {
  private readonly logger = new Logger(DatabaseService.name);
  private opened?: OpenedAdapter;
  private client?: PrismaClient;

  constructor(private readonly config: AppConfig) {}

  get prisma(): PrismaClient {
    if (!this.client) throw new Error('DatabaseService used before connect()');
    return this.client;
  }

  /** Called once by the module factory, before anything else can query. */
  async connect(): Promise<void> {
    this.opened = await openAdapter({
      databaseUrl: this.config.get('DATABASE_URL'),
      dataDir: this.config.get('DATA_DIR'),
      poolSize: this.config.get('DB_POOL_SIZE'),
    });
    if (this.opened.kind === 'pglite' || this.config.get('DB_MIGRATE_ON_START')) {
      const applied = await applyMigrations(this.opened.adapter);
      if (applied.length) this.logger.log(`Applied migrations: ${applied.join(', ')}`);
    }
    this.client = new PrismaClient({ adapter: this.opened.adapter });
    this.logger.log(this.opened.kind === 'pglite' ? `Embedded database (PGlite) in ${this.config.get('DATA_DIR')}` : 'PostgreSQL database');
  }

  /** Readiness: one round trip, bounded in time. */
  async ping(timeoutMs = 2_000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    try {
      return await Promise.race([this.prisma.$queryRaw`SELECT 1`.then(() => true), timeout]);
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.client?.$disconnect();
    await this.opened?.close();
  }
}
