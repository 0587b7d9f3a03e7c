import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';

/**
 * The two Redis connections an instance holds: `command` for PUBLISH and cluster state, and
 * `subscriber` (a connection in subscribe mode can do nothing else). Both reconnect forever with
 * capped backoff; commands fail fast while Redis is down instead of queueing without bound.
 */
export class RedisClients {
  private readonly logger = new Logger('Redis');
  readonly command: Redis;
  readonly subscriber: Redis;

  constructor(url: string, instanceId: string) {
    const options = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      // A Redis that hangs (no reset, no answer) must not hang syncs, connects or stats.
      commandTimeout: 1_000,
      retryStrategy: (attempt: number) => Math.min(50 * 2 ** attempt, 2_000),
    };
    this.command = new Redis(url, { ...options, connectionName: `signalcast-cmd-${instanceId}` });
    // The subscriber queues its SUBSCRIBE until connected; ioredis re-subscribes after reconnects.
    this.subscriber = new Redis(url, {
      ...options,
      commandTimeout: undefined,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      connectionName: `signalcast-sub-${instanceId}`,
    });
    for (const [name, client] of [['command', this.command], ['subscriber', this.subscriber]] as const) {
      // Without a listener, an 'error' event would crash the process; reconnects are automatic.
      client.on('error', (error: Error) => this.logger.warn(`${name} connection: ${error.message}`));
    }
  }

  get up(): boolean {
    return this.command.status === 'ready' && this.subscriber.status === 'ready';
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.command.quit(), this.subscriber.quit()]);
    this.command.disconnect();
    this.subscriber.disconnect();
  }
}
