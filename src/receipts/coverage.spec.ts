import { describe, expect, it } from 'vitest';
import { extendCoverage, type Coverage } from './coverage.js';

const range = (from: number, seq: number, joins = false, at = seq): Coverage => ({ from, seq, at, joins });

describe('extendCoverage', () => {
  it('joins a range that starts within the known one, keeping the earlier start', () => {
    expect(extendCoverage(range(10, 20), range(15, 30))).toEqual(range(10, 30));
    expect(extendCoverage(range(10, 20), range(20, 25))).toEqual(range(10, 25));
  });

  it('replaces the known range after a gap: a client that started afresh was not sent what lies between', () => {
    expect(extendCoverage(range(10, 20), range(21, 30))).toEqual(range(21, 30));
  });

  it('joins the claim of an owed receipt past the known range: the client says it processed everything up to it', () => {
    expect(extendCoverage(range(10, 20), range(25, 25, true))).toEqual(range(10, 25));
    expect(extendCoverage(range(10, 25), range(25, 40))).toEqual(range(10, 40));
  });

  it('keeps what it knows for a receipt at or below it', () => {
    expect(extendCoverage(range(10, 20), range(0, 15))).toEqual(range(10, 20));
    expect(extendCoverage(undefined, range(5, 9))).toEqual(range(5, 9));
  });
});
