import type { BackoffOptions } from './types.js';

/**
 * Full jitter (centrifuge-js `backoff()`): a random wait in `[0, min(maxMs, minMs·2^attempt)]`.
 * Each client draws its own wait, so a thousand clients cut at once come back spread over the
 * whole window instead of together.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const minMs = options.minMs ?? 1_000;
  const maxMs = options.maxMs ?? 30_000;
  return Math.floor(random() * Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30)));
}

/** What the client does after a close: reconnect after a wait, reconnect with a fresh token, or stop. */
export type CloseAction =
  | { kind: 'retry'; floorMs: number; countsAttempt: boolean }
  | { kind: 'spread' }
  | { kind: 'refresh-token' }
  | { kind: 'fail'; code: string };

/**
 * The close-code table (docs/protocol.md, "Close codes"). signalcast's own codes follow one rule: 4000–4499
 * reconnect, 4500–4999 do not; so does the registered range (3000–3499 / 3500–3999), so that a
 * code this SDK has never seen still gets a sensible answer.
 */
export function closeAction(code: number, afterReconnectMessage: boolean): CloseAction {
  if (afterReconnectMessage || code === 1001 || code === 4000) return { kind: 'spread' };
  if (code === 4501) return { kind: 'refresh-token' };
  if (code === 4529) return { kind: 'fail', code: 'too_many_sockets' };
  if (code === 1011 || code === 1013 || code === 4029 || code === 4429) return { kind: 'retry', floorMs: 5_000, countsAttempt: true };
  if ([1002, 1003, 1007, 1008, 1009, 1010].includes(code) || (code >= 4500 && code <= 4999) || (code >= 3500 && code <= 3999)) {
    return { kind: 'fail', code: 'connection_rejected' };
  }
  return { kind: 'retry', floorMs: 0, countsAttempt: true };
}
