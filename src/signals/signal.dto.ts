import { z } from 'zod';
import { SignalSide, SignalStatus } from '../generated/prisma/enums.js';
import { Prisma } from '../generated/prisma/client.js';
import { errorBodySchema } from '../common/app-error.js';
import { apiComponent } from '../common/openapi.js';
import { decimalInteger, isoTimestamp, storableText } from '../common/wire-schemas.js';
import { signalViewSchema } from './signal-fields.js';

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

/** The statuses a provider may sync: `expired` is written only by the service, when `expires_at` passes. */
export const PROVIDER_STATUSES = ['active', 'closed', 'cancelled'] as const satisfies readonly SignalStatus[];

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
    status: z
      .enum(PROVIDER_STATUSES, { error: 'must be active, closed or cancelled (expired is set by the service when expires_at passes)' })
      .default('active'),
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
    after_seq: decimalInteger().default(0).describe('signals after this seq (decimal digits); default 0'),
    limit: decimalInteger(maxLimit)
      .refine((limit) => limit >= 1, 'must be at least 1')
      .default(Math.min(100, maxLimit))
      .describe(`page size, 1 to SIGNALS_PAGE_MAX (${maxLimit} here); default ${Math.min(100, maxLimit)}`),
    // The subscription filter, as on the connection URL (parsed by `filterFromQuery`).
    symbols: z.string().optional().describe('comma-separated symbols (the filter of the WebSocket URL)'),
    symbol: symbolSchema.optional().describe('one symbol (kept for older clients)'),
    markets: z.string().optional().describe('comma-separated lowercase markets'),
    providers: z.string().optional().describe('comma-separated provider ids (UUIDs)'),
    sides: z.string().optional().describe('comma-separated sides: buy, sell, long, short, close'),
    min_confidence: z.string().optional().describe('integer 0 to 100'),
    premium: z.string().optional().describe('true: premium signals only; false: regular signals only'),
    statuses: z
      .string()
      .optional()
      .describe('comma-separated statuses: active, closed, cancelled, expired (a version matches by its own status)'),
    status: z.string().optional().describe('the same as statuses (either name; both given: either matches)'),
  });

export type ListSignalsQuery = z.output<ReturnType<typeof listSignalsQuerySchema>>;

// Answers.

export const signalSchema = apiComponent(
  'Signal',
  signalViewSchema,
  'One version of a signal. Prices are decimal strings; `seq` orders every version the service stored.',
);

const syncResultShape = {
  result: z.enum(['created', 'updated', 'unchanged']),
  /** The seq of the version stored (for `unchanged`, the current one). */
  seq: z.int().min(1),
  signal: signalSchema,
};

export const syncResponseSchema = apiComponent('SyncResponse', z.object(syncResultShape));

/** The errors a batch item can carry; the batch itself is answered 200. */
const BATCH_ITEM_ERRORS = ['validation_failed', 'database_unavailable', 'internal_error'] as const;

export const syncBatchResponseSchema = apiComponent(
  'SyncBatchResponse',
  z.object({
    /** One per item, in the order of the request. */
    results: z.array(
      z.union([
        z.object({ index: z.int().min(0), status: z.literal([200, 201]), ...syncResultShape }),
        z.object({ index: z.int().min(0), status: z.literal([400, 500, 503]), error: errorBodySchema(BATCH_ITEM_ERRORS) }),
      ]),
    ),
  }),
);

export const signalsPageSchema = apiComponent(
  'SignalsPage',
  z.object({
    data: z.array(signalSchema),
    /** The `after_seq` of the next page. */
    next_after_seq: z.int().min(0),
    has_more: z.boolean(),
    /** The newest seq stored when the page was read: where a client with no position starts. */
    latest_seq: z.int().min(0),
  }),
);

export type SyncResponse = z.infer<typeof syncResponseSchema>;
export type SyncBatchResponse = z.infer<typeof syncBatchResponseSchema>;
export type SignalsPage = z.infer<typeof signalsPageSchema>;
