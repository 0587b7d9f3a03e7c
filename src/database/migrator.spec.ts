import { describe, expect, it } from 'vitest';
import { openAdapter } from './adapter.factory.js';
import { applyMigrations, pendingSchemaChange } from './migrator.js';

describe('migrations', () => {
  it('match schema.prisma exactly (run `npm run db:migration -- <name>` after a schema change)', async () => {
    const opened = await openAdapter({ dataDir: 'memory://', poolSize: 1 });
    try {
      expect(await pendingSchemaChange(opened.adapter)).toBeNull();
    } finally {
      await opened.close();
    }
  }, 60_000);

  it('apply once and record themselves, so a second run applies nothing', async () => {
    const opened = await openAdapter({ dataDir: 'memory://', poolSize: 1 });
    try {
      expect((await applyMigrations(opened.adapter)).length).toBeGreaterThan(0);
      expect(await applyMigrations(opened.adapter)).toEqual([]);
    } finally {
      await opened.close();
    }
  }, 60_000);
});
