import { defineConfig } from 'vitest/config';

const e2e = (database: 'pglite' | 'postgres') => ({
  extends: true as const,
  test: {
    name: `e2e-${database}`,
    // *.pg.e2e.spec.ts need a server they can stop and start (PostgreSQL only); *.pglite.e2e.spec.ts
    // are about the embedded database itself.
    include: ['test/**/*.e2e.spec.ts'],
    exclude: [database === 'postgres' ? 'test/**/*.pglite.e2e.spec.ts' : 'test/**/*.pg.e2e.spec.ts'],
    env: { TEST_DATABASE: database },
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});

export default defineConfig({
  // Nest's dependency injection reads design-time metadata: have Oxc emit it, as tsc does.
  oxc: { decorator: { legacy: true, emitDecoratorMetadata: true } },
  test: {
    projects: [
      { extends: true, test: { name: 'unit', include: ['src/**/*.spec.ts'] } },
      { extends: true, test: { name: 'client-unit', include: ['packages/client/test/**/*.spec.{ts,tsx}'] } },
      e2e('pglite'),
      e2e('postgres'),
      {
        extends: true,
        // The web page in Chromium (playwright-core), against the app on PostgreSQL; one file at a time
        // is plenty for two cores.
        test: {
          name: 'browser',
          include: ['test/**/*.browser.spec.ts'],
          env: { TEST_DATABASE: 'postgres' },
          testTimeout: 60_000,
          hookTimeout: 90_000,
        },
      },
      {
        extends: true,
        // The React entry in happy-dom, against the service started as a child process on PostgreSQL.
        // Node, not 'happy-dom': the spec installs happy-dom itself (its header says why).
        test: {
          name: 'client-dom',
          include: ['test/**/*.dom.spec.tsx'],
          env: { TEST_DATABASE: 'postgres' },
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
