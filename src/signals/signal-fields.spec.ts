import { describe, expect, it } from 'vitest';
import { PINNED_SYNC_BODY, PINNED_WIRE_FORM, pinnedRow } from '../testing/pinned-signal.js';
import { signalRow } from '../testing/signal-row.js';
import { CONTENT_COLUMNS, contentOfView, eventOf, recordOf, SIGNAL_COLUMNS, viewOf } from './signal-fields.js';
import { syncSignalSchema } from './signal.dto.js';
import { contentOf } from './sync-plan.js';

describe('the description of a signal', () => {
  it('reads a stored row into its wire form', () => {
    const row = pinnedRow();
    expect(JSON.stringify(viewOf(recordOf(row)))).toBe(PINNED_WIRE_FORM);
  });

  it('shows nulls and empty lists as such', () => {
    expect(JSON.stringify(viewOf(recordOf(signalRow(1))))).toBe(
      '{"id":"s1","seq":1,"provider":"p","external_id":"e1","symbol":"BTCUSDT","market":"crypto","side":"long","entry":"100",' +
        '"stop_loss":null,"take_profits":[],"confidence":50,"timeframe":"1h","note":null,"premium":false,"status":"active",' +
        '"version":1,"issued_at":"2026-11-21T10:00:00.000Z","received_at":"1970-01-01T00:00:00.000Z","expires_at":null}',
    );
  });

  it('keeps the columns in the order of the writer and of the content hash', () => {
    expect(SIGNAL_COLUMNS.map(({ name }) => name)).toEqual([
      'id',
      'seq',
      'provider_id',
      'external_id',
      'symbol',
      'market',
      'side',
      'entry',
      'stop_loss',
      'take_profits',
      'confidence',
      'timeframe',
      'note',
      'min_tier',
      'status',
      'version',
      'issued_at',
      'received_at',
      'expires_at',
    ]);
    expect(CONTENT_COLUMNS).toEqual([
      'symbol',
      'market',
      'side',
      'entry',
      'stop_loss',
      'take_profits',
      'confidence',
      'timeframe',
      'note',
      'min_tier',
      'status',
      'issued_at',
      'expires_at',
    ]);
  });

  it('reads a stored version back into the content its sync wrote, its tier as stored', () => {
    const row = pinnedRow();
    expect(contentOfView(viewOf(recordOf(row)), 'pro')).toEqual(contentOf(syncSignalSchema.parse(PINNED_SYNC_BODY)));
    expect(contentOfView(viewOf(recordOf({ ...row, minTier: 'elite' })), 'elite').min_tier).toBe('elite');
  });

  it('types a version as new or amended by its number', () => {
    const first = viewOf(recordOf(signalRow(1)));
    expect(eventOf(first, 'free')).toEqual({ type: 'signal', seq: 1, minTier: 'free', signal: first });
    const third = viewOf(recordOf(signalRow(9, { version: 3, minTier: 'elite' })));
    expect(eventOf(third, 'elite')).toMatchObject({ type: 'signal_update', seq: 9, minTier: 'elite' });
    expect(third.premium).toBe(true);
  });
});
