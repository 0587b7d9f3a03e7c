import { Injectable } from '@nestjs/common';
import type { SignalEvent } from '../signals/signal.types.js';
import { MessageBus, type UserChange, type Unsubscribe } from './bus.types.js';

function subscribe<T>(handlers: Set<(value: T) => void>, handler: (value: T) => void): Unsubscribe {
  handlers.add(handler);
  return () => handlers.delete(handler);
}

/** The single-process bus: delivery is synchronous, so it is ordered and cannot be lost. */
@Injectable()
export class InProcessBus extends MessageBus {
  private readonly signalHandlers = new Set<(event: SignalEvent) => void>();
  private readonly userHandlers = new Set<(change: UserChange) => void>();

  async publishSignal(event: SignalEvent): Promise<void> {
    for (const handler of this.signalHandlers) handler(event);
  }

  onSignal(handler: (event: SignalEvent) => void): Unsubscribe {
    return subscribe(this.signalHandlers, handler);
  }

  async publishUserChange(change: UserChange): Promise<void> {
    for (const handler of this.userHandlers) handler(change);
  }

  onUserChange(handler: (change: UserChange) => void): Unsubscribe {
    return subscribe(this.userHandlers, handler);
  }
}
