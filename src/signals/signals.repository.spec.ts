import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DatabaseService } from '../database/database.service.js';
import { Prisma } from '../generated/prisma/client.js';
import { PINNED_SYNC_BODY, PINNED_WIRE_FORM, pinnedRow } from '../testing/pinned-signal.js';
import { recordOf, viewOf } from './signal-fields.js';
import { syncSignalSchema } from './signal.dto.js';
import { SignalsRepository } from './signals.repository.js';

/**
 * The writer's two statements against a double: the read answers that `pin-1` is stored at version 2
 * and the counter at 6; the write claims the counter. `statements` keeps what was sent.
 */
function setup(stored: { min_tier: string; payload: unknown } = { min_tier: 'free', payload: {} }) {
  const statements: Prisma.Sql[] = [];
  const $queryRaw = vi.fn(async (strings: TemplateStringsArray, ...values: unknown[]) => {
    const statement = Prisma.sql(strings, ...values);
    statements.push(statement);
    if (statements.length === 1) {
      return [{ last_seq: 6n, id: 'id-7', provider_id: 'prov', external_id: 'pin-1', version: 2, hashes: [], ...stored }];
    }
    return [{ claimed: 1 }];
  });
  const repository = new SignalsRepository({ prisma: { $queryRaw } } as unknown as DatabaseService);
  return { repository, statements };
}

const amended = syncSignalSchema.parse(PINNED_SYNC_BODY);

describe('SignalsRepository writer', () => {
  beforeEach(() => vi.useFakeTimers({ now: new Date('2026-11-21T09:00:01Z'), toFake: ['Date'] }));
  afterEach(() => vi.useRealTimers());

  it('answers, broadcasts and stores a version as the row it stores reads back', async () => {
    const { repository, statements } = setup();
    const [outcome] = await repository.writeGroup([{ kind: 'sync', providerId: 'prov', input: amended }]);
    expect(outcome).toMatchObject({ result: 'updated', minTier: 'pro' });
    expect(JSON.stringify(outcome!.signal)).toBe(PINNED_WIRE_FORM);
    const [signals, revisions] = statements[1]!.values
      .filter((value): value is string => typeof value === 'string')
      .map((json) => JSON.parse(json));
    expect(signals).toEqual([recordOf(pinnedRow())]);
    expect(revisions).toEqual([
      {
        signal_id: 'id-7',
        version: 3,
        seq: 7,
        content_hash: 'e10aa89a1303659c6ca76435eb16a01c0233ff9470dd19571228a80799a9ef90',
        min_tier: 'pro',
        payload: outcome!.signal,
        received_at: '2026-11-21T09:00:01.000Z',
      },
    ]);
  });

  it('writes an expiry as the stored version again with status expired, its tier as stored', async () => {
    // Version 2 as stored: the pinned signal, active, for elite only (the wire shows only `premium`).
    const current = { ...viewOf(recordOf(pinnedRow())), status: 'active', version: 2, seq: 6 };
    const { repository, statements } = setup({ min_tier: 'elite', payload: current });
    const [outcome] = await repository.writeGroup([{ kind: 'expire', providerId: 'prov', externalId: 'pin-1', version: 2 }]);
    const expected = { ...current, status: 'expired', version: 3, seq: 7, received_at: '2026-11-21T09:00:01.000Z' };
    expect(outcome).toEqual({ result: 'updated', minTier: 'elite', signal: expected });
    const [signals, revisions] = statements[1]!.values
      .filter((value): value is string => typeof value === 'string')
      .map((json) => JSON.parse(json));
    expect(signals).toEqual([{ ...recordOf(pinnedRow()), status: 'expired', min_tier: 'elite' }]);
    expect(revisions).toMatchObject([{ signal_id: 'id-7', version: 3, seq: 7, min_tier: 'elite', payload: expected }]);
  });

  it('writes nothing for an expiry of a version that is no longer current', async () => {
    const current = { ...viewOf(recordOf(pinnedRow())), status: 'active', version: 2, seq: 6 };
    const { repository, statements } = setup({ min_tier: 'pro', payload: current });
    const [outcome] = await repository.writeGroup([{ kind: 'expire', providerId: 'prov', externalId: 'pin-1', version: 1 }]);
    expect(outcome).toEqual({ result: 'unchanged', minTier: 'pro', signal: current });
    expect(statements).toHaveLength(1);
  });

  it('declares every column to the write, and updates all but the identity', async () => {
    const { repository, statements } = setup();
    await repository.writeGroup([{ kind: 'sync', providerId: 'prov', input: amended }]);
    const sql = statements[1]!.sql.replace(/\s+/g, ' ');
    const columns =
      'id, seq, provider_id, external_id, symbol, market, side, entry, stop_loss, take_profits, confidence, timeframe, note, ' +
      'min_tier, status, version, issued_at, received_at, expires_at';
    expect(sql).toContain(`INSERT INTO signals (${columns}, updated_at) SELECT ${columns}, received_at`);
    expect(sql).toContain(
      'AS s(id uuid, seq bigint, provider_id uuid, external_id text, symbol text, market text, side "SignalSide", ' +
        'entry numeric, stop_loss numeric, take_profits numeric[], confidence int, timeframe text, note text, ' +
        'min_tier "Tier", status "SignalStatus", version int, issued_at timestamptz, received_at timestamptz, expires_at timestamptz)',
    );
    expect(sql).toContain(
      'ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, symbol = excluded.symbol, market = excluded.market, ' +
        'side = excluded.side, entry = excluded.entry, stop_loss = excluded.stop_loss, take_profits = excluded.take_profits, ' +
        'confidence = excluded.confidence, timeframe = excluded.timeframe, note = excluded.note, min_tier = excluded.min_tier, ' +
        'status = excluded.status, version = excluded.version, issued_at = excluded.issued_at, received_at = excluded.received_at, ' +
        'expires_at = excluded.expires_at, updated_at = excluded.updated_at',
    );
  });
});
