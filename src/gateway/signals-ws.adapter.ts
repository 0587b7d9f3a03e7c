import type { IncomingMessage } from 'node:http';
import type { INestApplication } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { MessageMappingProperties } from '@nestjs/websockets';
import type { Observable } from 'rxjs';
import { AppConfig } from '../config/app-config.js';
import { UpgradeAuthenticator } from './upgrade-authenticator.js';

type VerifyCallback = (result: boolean, code?: number, message?: string, headers?: Record<string, string>) => void;

/**
 * The `ws` adapter with what the decorator cannot express statically: `verifyClient` backed by
 * DI (authentication before the handshake), the frame size limit, and no compression. Messages are
 * handled by the gateway's own protocol, not routed through `@SubscribeMessage`.
 */
export class SignalsWsAdapter extends WsAdapter {
  constructor(private readonly app: INestApplication) {
    super(app);
  }

  override create(port: number, options: Record<string, unknown> & { path?: string } = {}): unknown {
    const authenticator = this.app.get(UpgradeAuthenticator);
    const config = this.app.get(AppConfig);
    return super.create(port, {
      ...options,
      maxPayload: config.get('WS_MAX_PAYLOAD_BYTES'),
      perMessageDeflate: false,
      verifyClient: (info: { req: IncomingMessage }, done: VerifyCallback) => {
        const decision = authenticator.authenticate(info.req);
        if (decision.ok) done(true);
        else done(false, decision.status, decision.message, { 'Content-Type': 'text/plain' });
      },
    });
  }

  override bindMessageHandlers(
    _client: unknown,
    _handlers: MessageMappingProperties[],
    _transform: (data: unknown) => Observable<unknown>,
  ): void {
    // The gateway reads frames itself (see SignalsGateway.handleConnection).
  }
}
