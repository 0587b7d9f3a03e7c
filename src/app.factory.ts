import type { Writable } from 'node:stream';
import { Logger as NestLogger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { openApiComponentSchemas } from './common/openapi.js';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module.js';
import { HttpExceptionFilter } from './common/http-exception.filter.js';
import { throttled } from './common/log-throttle.js';
import { noStoreByDefault, securityHeaders } from './common/security-headers.js';
import { serveWebPage } from './web/web-page.js';
import { serveAsyncApi } from './common/asyncapi.js';
import type { AppEnv } from './config/app-config.js';
import { SignalsWsAdapter } from './gateway/signals-ws.adapter.js';
import { serveMetrics } from './metrics/metrics-endpoint.js';

/**
 * Running out of file descriptors makes the HTTP server emit `EMFILE`/`ENFILE` on accept; without
 * a listener that would crash the process. Say it clearly (at most every 10 s) and keep serving
 * the connections already open; any other server error still crashes, as it should.
 */
function watchDescriptorExhaustion(app: NestExpressApplication): void {
  const logger = new NestLogger('Connections');
  const report = throttled(10_000, (code: string) =>
    logger.error(
      `Out of file descriptors (${code}): new connections are being refused. ` +
        'Raise the open-files limit (ulimit -n) or lower WS_MAX_CONNECTIONS below it.',
    ),
  );
  app.getHttpServer().on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EMFILE' && error.code !== 'ENFILE') throw error;
    report(error.code);
  });
}

/** Builds the application exactly as production runs it; `main.ts` and the e2e tests both use it. */
export async function createApp(env: AppEnv, options: { logDestination?: Writable } = {}): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(env, options.logDestination), {
    bufferLogs: true,
    bodyParser: false,
    // A start-up failure (a locked data directory, an unreachable database) is thrown to the caller,
    // which says what went wrong, instead of aborting the process with a core dump.
    abortOnError: false,
  });
  app.useLogger(app.get(Logger));
  // First, so that every response carries the headers, body-parser errors (413) included.
  app.use(securityHeaders());
  app.use(noStoreByDefault);
  app.useBodyParser('json', { limit: env.HTTP_BODY_LIMIT_BYTES });
  app.set('trust proxy', env.TRUST_PROXY);
  if (env.CORS_ORIGINS.length > 0) app.enableCors({ origin: env.CORS_ORIGINS });
  app.useGlobalFilters(new HttpExceptionFilter());
  serveWebPage(app);
  serveAsyncApi(app);
  serveMetrics(app);
  app.useWebSocketAdapter(new SignalsWsAdapter(app));
  app.enableShutdownHooks();
  watchDescriptorExhaustion(app);

  SwaggerModule.setup('docs', app, () => openApiDocument(app));
  return app;
}

/**
 * The OpenAPI 3.1 document (served at /docs-json, with a viewer at /docs): every operation's
 * request, answers and errors, derived from the zod schemas the code validates and answers with.
 */
export function openApiDocument(app: NestExpressApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setOpenAPIVersion('3.1.0')
    .setTitle('signalcast')
    .setDescription(
      'Tier-gated trading-signal streaming. WebSocket protocol (/ws/signals): AsyncAPI 3 document at /docs/asyncapi.yaml; docs/protocol.md in the repository. Every error answers `{ code, message, details? }`; each operation lists the codes it can return.',
    )
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An access token from POST /api/auth/token' })
    .addApiKey({ type: 'apiKey', in: 'header', name: 'X-Api-Key', description: "A provider's API key" }, 'api-key')
    .build();
  const document = SwaggerModule.createDocument(app, config);
  document.components = { ...document.components, schemas: { ...document.components?.schemas, ...openApiComponentSchemas() } };
  return document;
}
