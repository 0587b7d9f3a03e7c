/**
 * Every close code the server uses. `reconnect` says whether a client should reconnect (with
 * backoff, resuming by seq) or fix something first. The README's table is written from this one.
 */
export const WS_CLOSE = {
  GOING_AWAY: { code: 1001, reason: 'server going away', reconnect: true },
  MESSAGE_TOO_BIG: { code: 1009, reason: 'message too big', reconnect: false },
  INTERNAL_ERROR: { code: 1011, reason: 'internal error', reconnect: true },
  UNAUTHORIZED: { code: 4401, reason: 'unauthorized', reconnect: false },
  TOO_MANY_CONNECTIONS: { code: 4429, reason: 'too many connections for this user', reconnect: false },
} as const;

export type WsCloseName = keyof typeof WS_CLOSE;
