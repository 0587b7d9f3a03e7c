/**
 * Every close code the server uses. `reconnect` says whether a client should reconnect (with
 * backoff, resuming with `?since=<last seq>`) or fix something first. Our own codes follow one
 * rule, so that a client can act on a code it has never seen: 4000–4499 reconnect, 4500–4999 do
 * not. The README's table is written from this one.
 */
export const WS_CLOSE = {
  GOING_AWAY: { code: 1001, reason: 'server going away', reconnect: true },
  MESSAGE_TOO_BIG: { code: 1009, reason: 'message too big', reconnect: false },
  INTERNAL_ERROR: { code: 1011, reason: 'internal error', reconnect: true },
  TRY_AGAIN_LATER: { code: 1013, reason: 'server at its connection limit', reconnect: true },
  RECONNECT: { code: 4000, reason: 'connection lifetime reached', reconnect: true },
  SLOW_CONSUMER: { code: 4008, reason: 'slow consumer: resume by seq', reconnect: true },
  RATE_LIMITED: { code: 4029, reason: 'request rate limit exceeded', reconnect: true },
  UNAUTHORIZED: { code: 4501, reason: 'unauthorized', reconnect: false },
  TOKEN_EXPIRED: { code: 4501, reason: 'token expired', reconnect: false },
  TOO_MANY_CONNECTIONS: { code: 4529, reason: 'too many connections for this user', reconnect: false },
} as const;

export type WsCloseName = keyof typeof WS_CLOSE;
