import { describe, expect, it } from 'vitest';
import { WS_CLOSE } from './ws-close-codes.js';

describe('close codes', () => {
  it.each(Object.entries(WS_CLOSE).filter(([, close]) => close.code >= 4000))(
    '%s follows the range rule: 4000-4499 reconnect, 4500-4999 do not',
    (_name, { code, reconnect }) => {
      expect(code).toBeLessThan(5000);
      expect(reconnect).toBe(code < 4500);
    },
  );
});
