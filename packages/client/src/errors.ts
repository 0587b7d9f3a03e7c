/** Every error the SDK reports: `code` is the service's error code (or the SDK's own), `status` the HTTP status if any. */
export class SignalcastError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'SignalcastError';
  }
}

/**
 * Thrown by the app's `getToken` when the user must sign in again: the client stops in `failed`.
 * Recognised by its `name`, so that the ESM and the CommonJS copy of the SDK agree.
 */
export class UnauthorizedError extends SignalcastError {
  constructor(message = 'Sign in again') {
    super('unauthorized', message, 401);
    this.name = 'UnauthorizedError';
  }
}

export const isUnauthorized = (error: unknown): boolean => (error as Error | undefined)?.name === 'UnauthorizedError';
