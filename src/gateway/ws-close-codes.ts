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
