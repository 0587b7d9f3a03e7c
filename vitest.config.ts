import { fileURLToPath } from 'node:url';
import { defineConfig, type ViteUserConfig } from 'vitest/config';
import { localExclusions } from './test/support/global-setup.js';

const ROOT = fileURLToPath(new URL('.', import.meta.url));

// Outside CI, the projects that use PostgreSQL get a throwaway one when none answers at
// TEST_POSTGRES_URL (test/support/global-setup.ts, which says which one in one line).
const POSTGRES_SETUP = ['test/support/global-setup.ts'];

export default defineConfig(async (): Promise<ViteUserConfig> => {
  // Outside CI, the files that need a Redis, `redis-server`, Chromium or PostgreSQL server binaries
  // this machine lacks are left out (one line per reason). In CI (`CI=true`) this is empty: all run.
  const { files: unavailable } = await localExclusions(ROOT);

  const e2e = (database: 'pglite' | 'postgres') => ({
    extends: true as const,
    test: {
      name: `e2e-${database}`,
      // *.pg.e2e.spec.ts need a server they can stop and start (PostgreSQL only); *.pglite.e2e.spec.ts
      // are about the embedded database itself.
      include: ['test/**/*.e2e.spec.ts'],
      exclude: [database === 'postgres' ? 'test/**/*.pglite.e2e.spec.ts' : 'test/**/*.pg.e2e.spec.ts', ...unavailable],
      env: { TEST_DATABASE: database },
      ...(database === 'postgres' && { globalSetup: POSTGRES_SETUP }),
      testTimeout: 30_000,
      hookTimeout: 60_000,
    },
  });

  return {
    // Nest's dependency injection reads design-time metadata: have Oxc emit it, as tsc does.
    oxc: { decorator: { legacy: true, emitDecoratorMetadata: true } },
    test: {
      projects: [
        { extends: true, test: { name: 'unit', include: ['src/**/*.spec.ts'], exclude: unavailable } },
        { extends: true, test: { name: 'client-unit', include: ['packages/client/test/**/*.spec.{ts,tsx}'], exclude: unavailable } },
        e2e('pglite'),
        e2e('postgres'),
        {
          extends: true,
          // The web page in Chromium (playwright-core), against the app on PostgreSQL; one file at a time
          // is plenty for two cores.
          test: {
            name: 'browser',
            include: ['test/**/*.browser.spec.ts'],
            exclude: unavailable,
            env: { TEST_DATABASE: 'postgres' },
            globalSetup: POSTGRES_SETUP,
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
            exclude: unavailable,
            env: { TEST_DATABASE: 'postgres' },
            globalSetup: POSTGRES_SETUP,
            testTimeout: 30_000,
            hookTimeout: 60_000,
          },
        },
      ],
    },
  };
});
