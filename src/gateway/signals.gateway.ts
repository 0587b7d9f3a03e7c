import type { IncomingMessage } from 'node:http';
import { Logger } from '@nestjs/common';
import {
  WebSocketGateway,
  type OnGatewayConnection,
  type OnGatewayDisconnect,
} from '@nestjs/websockets';
import type { WebSocket } from 'ws';
import { TierCache } from '../auth/tier-cache.service.js';
import { AppConfig } from '../config/app-config.js';
import { SignalsService } from '../signals/signals.service.js';
import { ConnectionRegistry, type Connection } from './connection-registry.js';
import { principalOf } from './upgrade-authenticator.js';
import { WS_CLOSE, type WsCloseName } from './ws-close-codes.js';
import { encode, parseClientRequest, type ClientRequest } from './ws-messages.js';

/** `/ws/signals`: connection lifecycle and the client protocol. Delivery is FanoutService's job. */
@WebSocketGateway({ path: '/ws/signals' })
export class SignalsGateway implements OnGatewayConnection, OnGatewayDisconnect {
  private readonly logger = new Logger(SignalsGateway.name);
  private readonly maxSocketsPerUser: number;

  constructor(
    private readonly registry: ConnectionRegistry,
    private readonly tiers: TierCache,
    private readonly signals: SignalsService,
    config: AppConfig,
  ) {
    this.maxSocketsPerUser = config.get('WS_MAX_SOCKETS_PER_USER');
  }

  async handleConnection(socket: WebSocket, request: IncomingMessage): Promise<void> {
    const principal = principalOf(request);
    if (!principal) return close(socket, 'UNAUTHORIZED');
    socket.on('error', (error) => this.logger.debug(`Socket error: ${error.message}`));
    const connection: Connection = { socket, principal, connectedAt: Date.now() };
    // Requests are answered from the first frame on, even while the tier is being looked up.
    socket.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(connection, data, isBinary));
    let tier;
    try {
      tier = await this.tiers.get(principal.userId);
    } catch (error) {
      this.logger.warn(`Tier lookup at connect failed: ${(error as Error).message}`);
      return close(socket, 'INTERNAL_ERROR');
    }
    if (!tier) return close(socket, 'UNAUTHORIZED');
    if (socket.readyState !== socket.OPEN) return;
    if (this.registry.countForUser(principal.userId) >= this.maxSocketsPerUser) {
      return close(socket, 'TOO_MANY_CONNECTIONS');
    }
    // Registration and welcome happen together: every signal with a seq above `latest_seq`
    // reaches this socket, and nothing reaches it before the welcome.
    this.registry.add(connection);
    socket.send(
      encode('welcome', {
        user_id: principal.userId,
        tier,
        server_time: new Date().toISOString(),
        latest_seq: this.signals.latestSeq,
      }),
    );
  }

  handleDisconnect(socket: WebSocket): void {
    this.registry.remove(socket);
  }

  private onMessage(connection: Connection, data: Buffer, isBinary: boolean): void {
    const request = parseClientRequest(data, isBinary);
    if ('error' in request) {
      connection.socket.send(encode('error', { code: request.error, message: request.message }));
      return;
    }
    this.handleRequest(connection, request);
  }

  private handleRequest(connection: Connection, request: ClientRequest): void {
    const withId = request.id === undefined ? {} : { id: request.id };
    switch (request.type) {
      case 'ping':
        connection.socket.send(encode('pong', withId));
        return;
      default:
        connection.socket.send(
          encode('error', { code: 'unknown_type', message: `Unknown message type "${request.type}"`, ...withId }),
        );
    }
  }
}

function close(socket: WebSocket, name: WsCloseName): void {
  const { code, reason } = WS_CLOSE[name];
  socket.close(code, reason);
}
