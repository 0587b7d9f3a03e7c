import { Prisma } from '../generated/prisma/client.js';
import { signalRow } from './signal-row.js';

/** A sync body with every field set, prices written loosely (see the pinned content hash). */
export const PINNED_SYNC_BODY = {
  external_id: 'pin-1',
  symbol: 'eth-usd',
  market: 'crypto',
  side: 'short',
  entry: '3000.10',
  stop_loss: '3100',
  take_profits: ['2900.0', '2800.5'],
  confidence: 85,
  timeframe: '4h',
  note: 'Grüße "quoted" ✓',
  premium: true,
  status: 'closed',
  issued_at: '2026-11-21T10:00:00.123+01:00',
  expires_at: '2026-11-22T00:00:00Z',
} as const;

/** The row that body stores as version 3 at seq 7 of signal `id-7`, as Prisma reads it back. */
export const pinnedRow = () =>
  signalRow(7, {
    id: 'id-7',
    providerId: 'prov',
    externalId: 'pin-1',
    symbol: 'ETH-USD',
    side: 'short',
    entry: new Prisma.Decimal('3000.100000000000000000'),
    stopLoss: new Prisma.Decimal('3100.000000000000000000'),
    takeProfits: [new Prisma.Decimal('2900'), new Prisma.Decimal('2800.5')],
    confidence: 85,
    timeframe: '4h',
    note: 'Grüße "quoted" ✓',
    minTier: 'pro',
    status: 'closed',
    version: 3,
    issuedAt: new Date('2026-11-21T09:00:00.123Z'),
    receivedAt: new Date('2026-11-21T09:00:01Z'),
    expiresAt: new Date('2026-11-22T00:00:00Z'),
  });

/** That version on the wire, byte for byte (key order included): HTTP, WebSocket and stored payloads. */
export const PINNED_WIRE_FORM =
  '{"id":"id-7","seq":7,"provider":"prov","external_id":"pin-1","symbol":"ETH-USD","market":"crypto","side":"short",' +
  '"entry":"3000.1","stop_loss":"3100","take_profits":["2900","2800.5"],"confidence":85,"timeframe":"4h",' +
  '"note":"Grüße \\"quoted\\" ✓","premium":true,"status":"closed","version":3,"issued_at":"2026-11-21T09:00:00.123Z",' +
  '"received_at":"2026-11-21T09:00:01.000Z","expires_at":"2026-11-22T00:00:00.000Z"}';
