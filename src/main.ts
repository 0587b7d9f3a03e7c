import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createApp } from './app.factory.js';
import { ConfigError, loadEnv } from './config/app-config.js';
import { DataDirInUseError } from './database/data-dir-lock.js';

async function main(): Promise<void> {
  let env;
  try {
    env = loadEnv();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    process.exit(1);
  }
  let app;
  try {
    app = await createApp(env);
  } catch (error) {
    if (!(error instanceof DataDirInUseError)) throw error;
    console.error(error.message);
    process.exit(1);
  }
  const logger = new Logger('Main');
  if (env.JWT_SECRET_GENERATED) {
    logger.warn(
      '!!! JWT_SECRET is not set: using a random development secret. Tokens die with this process. ' +
        'Set JWT_SECRET (32+ characters) for anything real; NODE_ENV=production refuses to start without it.',
    );
  }
  if (env.JWT_SECRET_PREVIOUS) {
    logger.log(
      'JWT_SECRET_PREVIOUS is set: tokens signed with it are still accepted. ' +
        `Remove it once the last of them has expired (JWT_TTL_SECONDS=${env.JWT_TTL_SECONDS} after the rotation).`,
    );
  }
  await app.listen(env.PORT, env.HOST);
  logger.log(`signalcast listening on http://localhost:${env.PORT} (API docs at /docs, WebSocket at /ws/signals)`);
}

await main();
