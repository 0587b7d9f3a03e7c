import { Global, Inject, Injectable, Module, Optional, type OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { ClusterState, MessageBus } from './bus.types.js';
import { InProcessClusterState } from './in-process-cluster.js';
import { InProcessBus } from './in-process.bus.js';
import { RedisClients } from './redis-clients.js';
import { RedisClusterState } from './redis-cluster.js';
import { RedisBus } from './redis.bus.js';

/** Closes the Redis connections last, after everything that publishes has stopped. */
@Injectable()
class RedisLifecycle implements OnApplicationShutdown {
  constructor(@Optional() @Inject(RedisClients) private readonly redis?: RedisClients | null) {}

  async onApplicationShutdown(): Promise<void> {
    await this.redis?.close();
  }
}

/** In-process by default; Redis when `REDIS_URL` is set (then `RedisClients`, else `null`). */
@Global()
@Module({
  providers: [
    {
      provide: RedisClients,
      inject: [AppConfig],
      useFactory: (config: AppConfig) => {
        const url = config.get('REDIS_URL');
        return url ? new RedisClients(url, config.get('INSTANCE_ID')) : null;
      },
    },
    {
      provide: MessageBus,
      inject: [AppConfig, RedisClients],
      useFactory: (config: AppConfig, redis: RedisClients | null) => {
        if (!redis) return new InProcessBus();
        const bus = new RedisBus(redis, config.get('REDIS_KEY_PREFIX'), config.get('INSTANCE_ID'));
        // Not awaited: an instance starts and serves its own sockets even while Redis is down.
        void bus.connect().catch(() => undefined);
        return bus;
      },
    },
    {
      provide: ClusterState,
      inject: [AppConfig, RedisClients],
      useFactory: (config: AppConfig, redis: RedisClients | null) =>
        redis
          ? new RedisClusterState(redis, config.get('REDIS_KEY_PREFIX'), config.get('INSTANCE_ID'), config.get('CLUSTER_INSTANCE_TTL_MS'))
          : new InProcessClusterState(config.get('INSTANCE_ID')),
    },
    RedisLifecycle,
  ],
  // RedisClients too, so that everything else that uses Redis shares these two connections.
  exports: [MessageBus, ClusterState, RedisClients],
})
export class BusModule {}
