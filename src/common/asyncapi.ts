import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';

/** The AsyncAPI document of the WebSocket protocol (docs/asyncapi.yaml), from src/common or dist/common alike. */
export const ASYNCAPI_FILE = fileURLToPath(new URL('../../docs/asyncapi.yaml', import.meta.url));

/** Where it is served: next to the OpenAPI document at /docs. */
export const ASYNCAPI_ROUTE = '/docs/asyncapi.yaml';

/**
 * Serves the AsyncAPI document as YAML, revalidated on every load (it changes with the service, and
 * carries an ETag). Registered before Swagger's /docs routes so that they cannot shadow it.
 */
export function serveAsyncApi(app: NestExpressApplication, file = ASYNCAPI_FILE): void {
  app.use((request: Request, response: Response, next: NextFunction) => {
    if ((request.method !== 'GET' && request.method !== 'HEAD') || request.path !== ASYNCAPI_ROUTE) return next();
    if (!existsSync(file)) {
      response
        .status(404)
        .json({ code: 'not_found', message: 'The AsyncAPI document (docs/asyncapi.yaml) is not deployed with this build' });
      return;
    }
    response.setHeader('Content-Type', 'application/yaml; charset=utf-8');
    response.setHeader('Cache-Control', 'no-cache');
    response.sendFile(file, { cacheControl: false }, (error) => {
      if (error && !response.headersSent) next(error);
    });
  });
}
