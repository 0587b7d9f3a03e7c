import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// SWC compiles the tests so Nest's decorators get their design-time metadata, as tsc does.
const e2e = (database: 'pglite' | 'postgres') => ({
  extends: true as const,
  test: {
    name: `e2e-${database}`,
    include: ['test/**/*.e2e.spec.ts'],
    env: { TEST_DATABASE: database },
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});

export default defineConfig({
  plugins: [swc.vite({ module: { type: 'es6' } })],
  test: {
    projects: [
      { extends: true, test: { name: 'unit', include: ['src/**/*.spec.ts'] } },
      e2e('pglite'),
      e2e('postgres'),
    ],
  },
});
