import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { ReceiptsModule } from '../receipts/receipts.module.js';
import { SignalsModule } from '../signals/signals.module.js';
import { ClusterReporter } from './cluster-reporter.service.js';
import { ConnectionRegistry } from './connection-registry.js';
import { FanoutService } from './fanout.service.js';
import { ReplayService } from './replay.service.js';
import { SignalsGateway } from './signals.gateway.js';
import { StatsController } from './stats.controller.js';
import { UpgradeAuthenticator } from './upgrade-authenticator.js';

@Module({
  imports: [AuthModule, ReceiptsModule, SignalsModule],
  controllers: [StatsController],
  providers: [ClusterReporter, ConnectionRegistry, FanoutService, ReplayService, SignalsGateway, UpgradeAuthenticator],
})
export class GatewayModule {}
