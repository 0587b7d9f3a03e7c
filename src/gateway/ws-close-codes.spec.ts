import { describe, expect, it } from 'vitest';
import { closeCodeLabel, WS_CLOSE, type WsCloseName } from './ws-close-codes.js';

/**
 * What each close tells the client to do (docs/protocol.md, "Close codes"). Every name must be
 * here: a new close code does not compile until someone says whether the client should reconnect.
 */
const CLIENT_SHOULD: Record<WsCloseName, 'reconnect' | 'not reconnect'> = {
  GOING_AWAY: 'reconnect',
  MESSAGE_TOO_BIG: 'not reconnect',
  INTERNAL_ERROR: 'reconnect',
  TRY_AGAIN_LATER: 'reconnect',
  RECONNECT: 'reconnect',
  SLOW_CONSUMER: 'reconnect',
  RATE_LIMITED: 'reconnect',
  TOO_MANY_CONNECTIONS_IN_CLUSTER: 'reconnect',
  UNAUTHORIZED: 'not reconnect',
  TOKEN_EXPIRED: 'not reconnect',
  TOO_MANY_CONNECTIONS: 'not reconnect',
};

/** The rule a client applies to a code of ours it has never seen. */
const byRange = (code: number) => (code >= 4000 && code < 4500 ? 'reconnect' : 'not reconnect');

describe('close codes', () => {
  it.each(Object.entries(WS_CLOSE).filter(([, close]) => close.code >= 4000))(
    '%s follows the range rule: 4000-4499 reconnect, 4500-4999 do not',
    (name, { code }) => {
      expect(code).toBeLessThan(5000);
      expect(byRange(code)).toBe(CLIENT_SHOULD[name as WsCloseName]);
    },
  );

  it('labels metrics with the codes the server sends and the standard ones, any other client code as other', () => {
    for (const { code } of Object.values(WS_CLOSE)) expect(closeCodeLabel(code)).toBe(String(code));
    expect(closeCodeLabel(1000)).toBe('1000');
    expect(closeCodeLabel(1006)).toBe('1006');
    expect(new Set([3000, 3999, 4001, 4998].map(closeCodeLabel))).toEqual(new Set(['other']));
  });
});
