import { Prisma, type Signal } from '../generated/prisma/client.js';

/** A stored signal row for unit tests; override any column. */
export function signalRow(seq: number, overrides: Partial<Signal> = {}): Signal {
  return {
    id: `s${seq}`,
    seq: BigInt(seq),
    providerId: 'p',
    externalId: `e${seq}`,
    symbol: 'BTCUSDT',
    market: 'crypto',
    side: 'long',
    entry: new Prisma.Decimal('100'),
    stopLoss: null,
    takeProfits: [],
    confidence: 50,
    timeframe: '1h',
    note: null,
    minTier: 'free',
    status: 'active',
    version: 1,
    issuedAt: new Date('2026-11-21T10:00:00Z'),
    receivedAt: new Date(0),
    expiresAt: null,
    updatedAt: new Date(0),
    ...overrides,
  };
}
