import { Injectable, Logger } from '@nestjs/common';
import type { SignalEvent } from '../signals/signal.types.js';
import { MessageBus, type BusStatus, type UserChange, type Unsubscribe } from './bus.types.js';
import { Subscribers } from './subscribers.js';

/** The single-process bus: delivery is synchronous, so it is ordered and cannot be lost. */
@Injectable()
export class InProcessBus extends MessageBus {
  private readonly signals = new Subscribers<SignalEvent>();
  private readonly users = new Subscribers<UserChange>();
  private readonly logger = new Logger(InProcessBus.name);
  private readonly logHandlerError = (error: unknown) => this.logger.error(`Bus handler failed: ${String(error)}`);

  async publishSignal(event: SignalEvent): Promise<void> {
    this.signals.emit(event, this.logHandlerError);
  }

  onSignal(handler: (event: SignalEvent) => void): Unsubscribe {
    return this.signals.add(handler);
  }

  async publishUserChange(change: UserChange): Promise<void> {
    this.users.emit(change, this.logHandlerError);
  }

  onUserChange(handler: (change: UserChange) => void): Unsubscribe {
    return this.users.add(handler);
  }

  /** Handlers run inside `publish*`: everything published is already handed over. */
  async fence(): Promise<void> {}

  /** Never called: there is no shared transport to lose. */
  onRecover(_handler: () => void): Unsubscribe {
    return () => undefined;
  }

  status(): BusStatus {
    return 'in-process';
  }
}
