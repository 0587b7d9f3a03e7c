import type { Unsubscribe } from './bus.types.js';

/** A set of handlers called in subscription order; a throwing handler does not stop the others. */
export class Subscribers<T> {
  private readonly handlers = new Set<(value: T) => void>();

  add(handler: (value: T) => void): Unsubscribe {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  emit(value: T, onError: (error: unknown) => void = () => undefined): void {
    for (const handler of this.handlers) {
      try {
        handler(value);
      } catch (error) {
        onError(error);
      }
    }
  }
}
