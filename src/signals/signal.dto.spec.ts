import { describe, expect, it } from 'vitest';
import { zodIssues } from '../common/zod-validation.pipe.js';
import { listSignalsQuerySchema, syncSignalSchema } from './signal.dto.js';

const valid = {
  external_id: 'x-1',
  symbol: 'eth-usd',
  market: 'crypto',
  side: 'short',
  entry: '3000.10',
  confidence: 0,
  timeframe: '15m',
  issued_at: '2026-11-21T10:00:00+01:00',
};

const fieldsOf = (body: unknown) => {
  const result = syncSignalSchema.safeParse(body);
  return result.success ? [] : zodIssues(result.error).map((issue) => issue.field);
};

describe('sync body validation', () => {
  it('normalizes a valid body and fills defaults', () => {
    expect(syncSignalSchema.parse(valid)).toEqual({
      ...valid,
      symbol: 'ETH-USD',
      entry: '3000.1',
      stop_loss: null,
      take_profits: [],
      note: null,
      premium: false,
      status: 'active',
      issued_at: new Date('2026-11-21T09:00:00Z'),
      expires_at: null,
    });
  });

  it.each([
    [{ entry: 3000.1 }, 'entry'],
    [{ entry: '0' }, 'entry'],
    [{ entry: '1e5' }, 'entry'],
    [{ stop_loss: '' }, 'stop_loss'],
    [{ take_profits: Array(11).fill('1') }, 'take_profits'],
    [{ take_profits: ['1', 'x'] }, 'take_profits[1]'],
    [{ confidence: -1 }, 'confidence'],
    [{ confidence: '50' }, 'confidence'],
    [{ side: 'BUY' }, 'side'],
    [{ market: 'Crypto!' }, 'market'],
    [{ timeframe: '0m' }, 'timeframe'],
    [{ external_id: 'has space' }, 'external_id'],
    [{ issued_at: '2026-11-21' }, 'issued_at'],
    [{ expires_at: '2026-11-21T08:00:00Z' }, 'expires_at'],
    [{ extra: 1 }, 'extra'],
    [{ status: 'open' }, 'status'],
    // Only the service writes `expired`, when expires_at passes.
    [{ status: 'expired' }, 'status'],
  ])('rejects %j naming %s', (change, field) => {
    expect(fieldsOf({ ...valid, ...change })).toContain(field);
  });

  it('names every missing required field', () => {
    expect(fieldsOf({}).sort()).toEqual(
      ['confidence', 'entry', 'external_id', 'issued_at', 'market', 'side', 'symbol', 'timeframe'].sort(),
    );
  });

  it('bounds the listing page size', () => {
    const schema = listSignalsQuerySchema(50);
    expect(schema.parse({})).toEqual({ after_seq: 0, limit: 50 });
    expect(schema.safeParse({ limit: '51' }).success).toBe(false);
    expect(schema.safeParse({ after_seq: '-1' }).success).toBe(false);
  });
});
