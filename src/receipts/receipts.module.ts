import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { DeliveryReceipts } from './delivery-receipts.service.js';
import { ReceiptsController } from './receipts.controller.js';
import { ReceiptsRepository } from './receipts.repository.js';

/** Delivery receipts: latency per tier, each user's acknowledged position, and the dispute endpoint. */
@Module({
  imports: [AuthModule],
  controllers: [ReceiptsController],
  providers: [DeliveryReceipts, ReceiptsRepository],
  exports: [DeliveryReceipts],
})
export class ReceiptsModule {}
