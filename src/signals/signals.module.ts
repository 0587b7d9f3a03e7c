import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { ExpiryService } from './expiry.service.js';
import { SignalsController } from './signals.controller.js';
import { SignalsRepository } from './signals.repository.js';
import { SignalsService } from './signals.service.js';

@Module({
  imports: [AuthModule],
  controllers: [SignalsController],
  providers: [SignalsRepository, SignalsService, ExpiryService],
  exports: [SignalsService],
})
export class SignalsModule {}
