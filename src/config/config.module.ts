import { Global, Module, type DynamicModule } from '@nestjs/common';
import { AppConfig, type AppEnv } from './app-config.js';

@Global()
@Module({})
export class AppConfigModule {
  /** `env` is validated before the module is built (see `loadEnv`), so a bad value fails fast. */
  static forRoot(env: AppEnv): DynamicModule {
    return {
      module: AppConfigModule,
      providers: [{ provide: AppConfig, useValue: new AppConfig(env) }],
      exports: [AppConfig],
    };
  }
}
