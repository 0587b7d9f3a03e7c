import { Injectable, Logger } from '@nestjs/common';
import { TierCache } from '../auth/tier-cache.service.js';
import { AppConfig } from '../config/app-config.js';
import { toSignalView } from '../signals/signals.repository.js';
import { SignalsService } from '../signals/signals.service.js';
import type { Connection } from './connection.js';
import { FanoutService } from './fanout.service.js';
import { encode, type RequestId } from './ws-messages.js';

/**
 * Serves a resume: every signal after `since` that the user's current tier and the socket's
 * filter allow, from the database, in seq order, then the live signals that arrived meanwhile,
 * without a gap or a duplicate at the seam.
 *
 * While replaying, the fan-out parks live signals in the connection's backlog. Pages are read
 * until they reach the last seq the fan-out had delivered when the replay began (anything newer is
 * delivered later, so it lands in the backlog); the backlog is then sent, skipping what the pages already
 * covered, and the connection goes live, all in one synchronous step.
 */
@Injectable()
export class ReplayService {
  private readonly logger = new Logger(ReplayService.name);
  private readonly maxReplay: number;
  private readonly pageSize: number;

  constructor(
    private readonly signals: SignalsService,
    private readonly tiers: TierCache,
    private readonly fanout: FanoutService,
    config: AppConfig,
  ) {
    this.maxReplay = config.get('WS_REPLAY_MAX');
    this.pageSize = config.get('WS_REPLAY_PAGE_SIZE');
  }

  async resume(connection: Connection, since: number, id?: RequestId): Promise<void> {
    const withId = id === undefined ? {} : { id };
    connection.phase = 'replaying';
    connection.backlog = [];
    const target = this.fanout.deliveredSeq;
    const open = () => connection.socket.readyState === connection.socket.OPEN;
    let cursor = since;
    let count = 0;
    try {
      const tier = await this.tiers.get(connection.userId);
      if (!tier) return connection.close('UNAUTHORIZED');
      const query = { afterSeq: since, filter: connection.filter };
      if ((await this.signals.count(tier, query, this.maxReplay + 1)) > this.maxReplay) {
        connection.phase = 'idle';
        connection.backlog = [];
        connection.socket.send(
          encode('resync_required', { ...withId, since, latest_seq: target, max_replay: this.maxReplay }),
        );
        return;
      }
      while (cursor < target && open()) {
        const page = await this.signals.list(tier, { afterSeq: cursor, limit: this.pageSize, filter: connection.filter });
        for (const row of page) {
          const view = toSignalView(row);
          this.fanout.send(connection, Buffer.from(encode(row.version > 1 ? 'signal_update' : 'signal', view)));
          cursor = view.seq;
          count++;
        }
        if (page.length < this.pageSize) break;
      }
    } catch (error) {
      this.logger.warn(`Replay failed: ${(error as Error).message}`);
      return connection.close('INTERNAL_ERROR');
    }
    if (!open() || connection.phase !== 'replaying') return;
    for (const event of connection.backlog) {
      if (event.seq <= cursor) continue;
      if (this.fanout.sendIfMatching(connection, event)) count++;
      cursor = event.seq;
    }
    connection.backlog = [];
    connection.phase = 'live';
    connection.socket.send(encode('replay_complete', { ...withId, last_seq: Math.max(cursor, since), count }));
  }
}
