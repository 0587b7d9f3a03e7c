import { Global, Module, type DynamicModule } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { AppConfig, type AppEnv } from './app-config.js';

@Global()
@Module({})
export class AppConfigModule {
  /** `env` is validated before the module is built (see `loadEnv`), so a bad value fails fast. */
  static forRoot(env: AppEnv): DynamicModule {
    return {
      module: AppConfigModule,
      imports: [
        ConfigModule.forRoot({ ignoreEnvFile: true, ignoreEnvVars: true, skipProcessEnv: true, load: [() => env] }),
      ],
      providers: [AppConfig],
      exports: [AppConfig],
    };
  }
}
