import type { Writable } from 'node:stream';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module.js';
import { HttpExceptionFilter } from './common/http-exception.filter.js';
import type { AppEnv } from './config/app-config.js';
import { SignalsWsAdapter } from './gateway/signals-ws.adapter.js';

/** Builds the application exactly as production runs it; `main.ts` and the e2e tests both use it. */
export async function createApp(env: AppEnv, options: { logDestination?: Writable } = {}): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(env, options.logDestination), {
    bufferLogs: true,
    bodyParser: false,
  });
  app.useLogger(app.get(Logger));
  app.useBodyParser('json', { limit: env.HTTP_BODY_LIMIT_BYTES });
  app.set('trust proxy', env.TRUST_PROXY);
  if (env.CORS_ORIGINS.length > 0) app.enableCors({ origin: env.CORS_ORIGINS });
  app.useGlobalFilters(new HttpExceptionFilter());
  app.useWebSocketAdapter(new SignalsWsAdapter(app));
  app.enableShutdownHooks();

  const openapi = new DocumentBuilder()
    .setTitle('signalcast')
    .setDescription('Tier-gated trading-signal streaming. WebSocket protocol: see README.')
    .addBearerAuth()
    .addApiKey({ type: 'apiKey', in: 'header', name: 'X-Api-Key' }, 'api-key')
    .build();
  SwaggerModule.setup('docs', app, () => SwaggerModule.createDocument(app, openapi));
  return app;
}
