import { Global, Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { DatabaseService } from './database.service.js';

@Global()
@Module({
  providers: [
    {
      provide: DatabaseService,
      inject: [AppConfig],
      useFactory: async (config: AppConfig) => {
        const database = new DatabaseService(config);
        await database.connect();
        return database;
      },
    },
  ],
  exports: [DatabaseService],
})
export class DatabaseModule {}
