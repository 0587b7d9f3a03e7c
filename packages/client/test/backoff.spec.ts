import { describe, expect, it } from 'vitest';
import { backoffDelay, closeAction } from '../src/backoff.js';

describe('backoffDelay: full jitter', () => {
  it('draws in [0, min(max, min·2^attempt)]', () => {
    const options = { minMs: 100, maxMs: 1_000 };
    const ceilings = [100, 200, 400, 800, 1_000, 1_000];
    ceilings.forEach((ceiling, attempt) => {
      expect(backoffDelay(attempt, options, () => 0)).toBe(0);
      expect(backoffDelay(attempt, options, () => 0.999_999)).toBe(ceiling - 1);
      expect(backoffDelay(attempt, options, () => 0.5)).toBe(ceiling / 2);
    });
  });

  it('defaults to 1 s → 30 s and survives huge attempt counts', () => {
    expect(backoffDelay(0, undefined, () => 0.999_999)).toBe(999);
    expect(backoffDelay(5, undefined, () => 0.999_999)).toBe(29_999);
    expect(backoffDelay(10_000, undefined, () => 0.999_999)).toBe(29_999);
  });

  it('spreads clients: 1,000 draws at one attempt cover the window', () => {
    const draws = Array.from({ length: 1_000 }, () => backoffDelay(3, { minMs: 1_000, maxMs: 30_000 }));
    expect(Math.min(...draws)).toBeLessThan(800);
    expect(Math.max(...draws)).toBeGreaterThan(7_200);
    expect(draws.every((draw) => draw >= 0 && draw < 8_000)).toBe(true);
  });
});

describe('closeAction: every close code by the rule', () => {
  it.each([
    [1000, { kind: 'retry', floorMs: 0 }],
    [1005, { kind: 'retry', floorMs: 0 }],
    [1006, { kind: 'retry', floorMs: 0 }],
    [4008, { kind: 'retry', floorMs: 0 }],
    [4123, { kind: 'retry', floorMs: 0 }], // unknown, reconnect range
    [3100, { kind: 'retry', floorMs: 0 }],
    [1011, { kind: 'retry', floorMs: 5_000 }],
    [1013, { kind: 'retry', floorMs: 5_000 }],
    [4029, { kind: 'retry', floorMs: 5_000 }],
    [4429, { kind: 'retry', floorMs: 5_000 }],
    [1001, { kind: 'spread' }],
    [4000, { kind: 'spread' }],
    [4501, { kind: 'refresh-token' }],
    [4529, { kind: 'fail', code: 'too_many_sockets' }],
    [4777, { kind: 'fail', code: 'connection_rejected' }], // unknown, terminal range
    [3600, { kind: 'fail', code: 'connection_rejected' }],
    [1002, { kind: 'fail' }],
    [1003, { kind: 'fail' }],
    [1007, { kind: 'fail' }],
    [1008, { kind: 'fail' }],
    [1009, { kind: 'fail' }],
    [1010, { kind: 'fail' }],
  ])('%i → %o', (code, expected) => {
    expect(closeAction(code, false)).toMatchObject(expected);
  });

  it('after a `reconnect` message any close spreads the reconnect', () => {
    expect(closeAction(1006, true)).toEqual({ kind: 'spread' });
  });
});
