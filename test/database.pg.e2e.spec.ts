import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAdapter } from '../src/database/adapter.factory.js';
import { DatabaseService } from '../src/database/database.service.js';
import { createTestDatabase, startApp, type TestApp, type TestDatabase } from './support/test-app.js';

/** PostgreSQL only: how the service's connections are set up. */
describe('PostgreSQL connections', () => {
  let database: TestDatabase;
  let app: TestApp;

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await startApp(database);
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  async function jitThrough(url: string): Promise<unknown> {
    const opened = await openAdapter({ databaseUrl: url, dataDir: 'memory://', poolSize: 1 });
    const connection = await opened.adapter.connect();
    try {
      const result = await connection.queryRaw({ sql: 'SHOW jit', args: [], argTypes: [] });
      return result.rows[0]?.[0];
    } finally {
      await connection.dispose();
      await opened.close();
    }
  }

  it('run with JIT off: short queries never pay for compiling', async () => {
    const rows = await app.app.get(DatabaseService).prisma.$queryRaw<{ jit: string }[]>`SHOW jit`;
    expect(rows).toEqual([{ jit: 'off' }]);
  });

  it('let an options parameter in DATABASE_URL replace that', async () => {
    expect(await jitThrough(database.url!)).toBe('off');
    const url = new URL(database.url!);
    url.searchParams.set('options', '-c jit=on');
    expect(await jitThrough(url.toString())).toBe('on');
  });
});
