import { z } from 'zod';
import { SignalSide, SignalStatus } from '../generated/prisma/enums.js';
import { Prisma } from '../generated/prisma/client.js';
import { decimalInteger, isoTimestamp, storableText } from '../common/wire-schemas.js';

const { Decimal } = Prisma;

/** Prices travel as strings and are stored as NUMERIC: no float ever touches them. */
const price = z
  .string()
  .regex(/^\d{1,20}(\.\d{1,18})?$/, 'must be a positive decimal string such as "42150.5"')
  .refine((value) => /[1-9]/.test(value), 'must be greater than 0')
  .transform((value) => new Decimal(value).toFixed());

/** A symbol, upper-cased: `btcusdt` and `BTCUSDT` are one symbol (sync, listing and subscription filters). */
export const symbolSchema = z
  .string()
  .regex(/^[A-Za-z0-9._\-/:]{1,32}$/, 'must be 1-32 characters of A-Z a-z 0-9 . _ - / :')
  .transform((value) => value.toUpperCase());

export const marketSchema = z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, 'must be a lowercase word such as crypto, stocks, forex');

export const syncSignalSchema = z
  .strictObject({
    external_id: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 . _ : -'),
    symbol: symbolSchema,
    market: marketSchema,
    side: z.enum(SignalSide),
    entry: price,
    stop_loss: price.nullable().default(null),
    take_profits: z.array(price).max(10, 'at most 10 targets').default([]),
    confidence: z.number().int('must be an integer').min(0).max(100),
    timeframe: z.string().regex(/^[1-9]\d{0,3}(s|m|h|d|w|M)$/, 'must look like 1m, 15m, 4h, 1d, 1w'),
    note: storableText(z.string().max(2000)).nullable().default(null),
    premium: z.boolean().default(false),
    status: z.enum(SignalStatus).default('active'),
    issued_at: isoTimestamp,
    expires_at: isoTimestamp.nullable().default(null),
  })
  .refine((s) => s.expires_at === null || s.expires_at > s.issued_at, {
    message: 'must be later than issued_at',
    path: ['expires_at'],
  });

export type SyncSignalInput = z.output<typeof syncSignalSchema>;

/** The batch envelope; items are validated one by one so each gets its own answer. */
export const syncBatchSchema = (maxItems: number) =>
  z.strictObject({
    signals: z.array(z.unknown()).min(1, 'must hold at least one signal').max(maxItems, `at most ${maxItems} signals per request`),
  });

export const listSignalsQuerySchema = (maxLimit: number) =>
  z.strictObject({
    symbol: symbolSchema.optional(),
    after_seq: decimalInteger().default(0),
    // The subscription filter, as on the connection URL (parsed by `filterFromQuery`).
    symbols: z.string().optional(),
    markets: z.string().optional(),
    providers: z.string().optional(),
    sides: z.string().optional(),
    min_confidence: z.string().optional(),
    premium: z.string().optional(),
    limit: decimalInteger(maxLimit)
      .refine((limit) => limit >= 1, 'must be at least 1')
      .default(Math.min(100, maxLimit)),
  });

export type ListSignalsQuery = z.output<ReturnType<typeof listSignalsQuerySchema>>;
