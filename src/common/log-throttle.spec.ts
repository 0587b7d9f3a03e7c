import { describe, expect, it } from 'vitest';
import { throttled } from './log-throttle.js';

describe('throttled', () => {
  it('logs the first call at once, then at most once per interval', () => {
    let now = 1_000;
    const lines: string[] = [];
    const log = throttled(
      10_000,
      (line: string) => lines.push(line),
      () => now,
    );
    log('a');
    log('b');
    now += 9_999;
    log('c');
    now += 1;
    log('d');
    log('e');
    now += 25_000;
    log('f');
    expect(lines).toEqual(['a', 'd', 'f']);
  });
});
