import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';

const CLOSE_TIMEOUT_MS = 1_000;

/**
 * The two Redis connections an instance holds, whatever uses Redis: `command` for PUBLISH, the
 * cluster state and the rate limiter's buckets, and `subscriber` (a connection in subscribe mode
 * can do nothing else). Both reconnect forever with capped backoff; commands fail fast while Redis
 * is down instead of queueing without bound. `BusModule` provides them (`null` without
 * `REDIS_URL`) and closes them last at shutdown.
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
    this.command = new Redis(url, {
      ...options,
      // A command cut off by a dropped connection fails instead of going out again after the
      // reconnect: a publish stays at most once, and a rate-limit take is not counted late for a
      // request already answered (from memory) in the meantime.
      autoResendUnfulfilledCommands: false,
      connectionName: `signalcast-cmd-${instanceId}`,
    });
    // The subscriber queues its SUBSCRIBE until connected; ioredis re-subscribes after reconnects.
    this.subscriber = new Redis(url, {
      ...options,
      commandTimeout: undefined,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      connectionName: `signalcast-sub-${instanceId}`,
    });
    for (const [name, client] of [
      ['command', this.command],
      ['subscriber', this.subscriber],
    ] as const) {
      // Without a listener, an 'error' event would crash the process; reconnects are automatic.
      client.on('error', (error: Error) => this.logger.warn(`${name} connection: ${error.message}`));
    }
  }

  get up(): boolean {
    return this.command.status === 'ready' && this.subscriber.status === 'ready';
  }

  /**
   * QUIT lets Redis answer what was sent; a Redis that cannot be reached or does not answer gets
   * `CLOSE_TIMEOUT_MS` (a QUIT waiting in the subscriber's offline queue would wait forever), then
   * the sockets are dropped.
   */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([this.command.quit(), this.subscriber.quit()]),
      new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    this.command.disconnect();
    this.subscriber.disconnect();
  }
}
