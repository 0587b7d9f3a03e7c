export { SignalcastClient, filterParams } from './client.js';
export { ProviderClient } from './provider.js';
export type { BatchItemResult, ProviderOptions, SignalInput, SyncResponse } from './provider.js';
export { SignalcastError, UnauthorizedError } from './errors.js';
export { backoffDelay } from './backoff.js';
export type * from './types.js';
