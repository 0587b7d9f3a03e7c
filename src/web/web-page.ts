import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';

/** Where `npm run build` puts the page (web/dist), from src/web or dist/web alike. */
export const WEB_DIST = fileURLToPath(new URL('../../web/dist/', import.meta.url));

/** The page's routes: the feed and the dashboard are one application, routed in the browser. */
const PAGE_ROUTES = new Set(['/', '/admin', '/admin/']);

/**
 * Serves the web page (Vite's build of web/): hashed files under /assets for a year (their names
 * change with their content), the HTML at / and /admin revalidated every time, so a new build
 * reaches every browser at its next load. The API and WebSocket routes are untouched. Without a
 * build, the page's routes say how to make one.
 */
export function serveWebPage(app: NestExpressApplication, dir = WEB_DIST): void {
  const index = path.join(dir, 'index.html');
  app.useStaticAssets(path.join(dir, 'assets'), { prefix: '/assets/', immutable: true, maxAge: '365d', index: false, redirect: false });
  app.use((request: Request, response: Response, next: NextFunction) => {
    if ((request.method !== 'GET' && request.method !== 'HEAD') || !PAGE_ROUTES.has(request.path)) return next();
    if (!existsSync(index)) {
      response
        .status(404)
        .json({ code: 'not_found', message: 'The web page is not built: run `npm run build` (or `npm start`, which builds it)' });
      return;
    }
    response.setHeader('Cache-Control', 'no-cache');
    response.sendFile(index);
  });
}
