/**
 * Every close code the server uses. Our own codes follow one rule, so that a client can act on a
 * code it has never seen: 4000–4499 reconnect (with backoff, resuming with `?since=<last seq>`),
 * 4500–4999 do not until something changes. The close-code table in docs/protocol.md says what each means
 * to a client.
 */
export const WS_CLOSE = {
  GOING_AWAY: { code: 1001, reason: 'server going away' },
  MESSAGE_TOO_BIG: { code: 1009, reason: 'message too big' },
  INTERNAL_ERROR: { code: 1011, reason: 'internal error' },
  TRY_AGAIN_LATER: { code: 1013, reason: 'server at its connection limit' },
  RECONNECT: { code: 4000, reason: 'connection lifetime reached' },
  SLOW_CONSUMER: { code: 4008, reason: 'slow consumer: resume by seq' },
  RATE_LIMITED: { code: 4029, reason: 'request rate limit exceeded' },
  TOO_MANY_CONNECTIONS_IN_CLUSTER: { code: 4429, reason: 'too many connections for this user across the cluster: retry later' },
  UNAUTHORIZED: { code: 4501, reason: 'unauthorized' },
  TOKEN_EXPIRED: { code: 4501, reason: 'token expired' },
  TOO_MANY_CONNECTIONS: { code: 4529, reason: 'too many connections for this user' },
} as const;

export type WsCloseName = keyof typeof WS_CLOSE;

/** Codes a socket commonly closes with: the server's own and the standard ones a client sends. */
const REPORTED_CODES = new Set<number>([1000, 1005, 1006, ...Object.values(WS_CLOSE).map(({ code }) => code)]);

/**
 * A close code as a metric label: a client may close with any code from 3000 to 4999, so those we
 * neither send nor expect read `other` (each label value is a series the scraper keeps).
 */
export const closeCodeLabel = (code: number): string => (REPORTED_CODES.has(code) ? String(code) : 'other');
