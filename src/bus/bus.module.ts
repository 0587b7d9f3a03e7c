import { Global, Module } from '@nestjs/common';
import { MessageBus } from './bus.types.js';
import { InProcessBus } from './in-process.bus.js';

@Global()
@Module({
  providers: [{ provide: MessageBus, useClass: InProcessBus }],
  exports: [MessageBus],
})
export class BusModule {}
