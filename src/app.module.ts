import type { Writable } from 'node:stream';
import { Module, RequestMethod, type DynamicModule } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { AuthModule } from './auth/auth.module.js';
import { BusModule } from './bus/bus.module.js';
import type { AppEnv } from './config/app-config.js';
import { AppConfigModule } from './config/config.module.js';
import { DatabaseModule } from './database/database.module.js';
import { GatewayModule } from './gateway/gateway.module.js';
import { HealthController } from './health/health.controller.js';
import { loggerOptions } from './logging.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { SignalsModule } from './signals/signals.module.js';

@Module({})
export class AppModule {
  static forRoot(env: AppEnv, logDestination?: Writable): DynamicModule {
    return {
      module: AppModule,
      imports: [
        AppConfigModule.forRoot(env),
        LoggerModule.forRoot({ ...loggerOptions(env, logDestination), exclude: [{ method: RequestMethod.GET, path: 'health' }] }),
        MetricsModule,
        DatabaseModule,
        BusModule,
        AuthModule,
        SignalsModule,
        GatewayModule,
      ],
      controllers: [HealthController],
    };
  }
}
