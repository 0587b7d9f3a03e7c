import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The page the service serves at / and /admin (see src/web/web.module.ts). `npm run build` writes
// web/dist; hashed files land in web/dist/assets, which the service caches for a year.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  logLevel: 'warn',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // No inline script or style may need a CSP exception: modules and CSS files only.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: 'es2022',
  },
  oxc: { jsx: { runtime: 'automatic' } },
});
