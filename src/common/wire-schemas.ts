import { z } from 'zod';

/**
 * Text that PostgreSQL stores and gives back unchanged: no NUL (PostgreSQL refuses 0x00 in text)
 * and no lone surrogate (it would come back as U+FFFD, so an identical re-send would differ).
 */
export const storableText = (schema: z.ZodString = z.string()) =>
  schema.refine((text) => !text.includes('\u0000') && text.isWellFormed(), 'must be well-formed text without NUL characters');

/**
 * A non-negative integer written as plain decimal digits, as query parameters carry it. An empty
 * or blank value, a sign, a fraction, an exponent (`1e3`) or a hex literal (`0x10`) is refused,
 * where `Number()` would quietly read `0`, `1000` or `16`.
 */
export const decimalInteger = (max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .regex(/^[0-9]{1,16}$/, 'must be a non-negative integer in decimal digits')
    .transform(Number)
    .refine((value) => Number.isSafeInteger(value) && value <= max, `must be at most ${max}`);

/** PostgreSQL's `timestamptz` goes further, but nothing a trading signal carries needs more. */
const EARLIEST = Date.UTC(1970, 0, 1);
const LATEST = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** An ISO 8601 date-time with an offset, between 1970-01-01 and 9999-12-31 (UTC). */
export const isoTimestamp = z.iso
  .datetime({ offset: true, message: 'must be an ISO 8601 date-time' })
  .transform((value) => new Date(value))
  .refine((date) => date.getTime() >= EARLIEST && date.getTime() <= LATEST, 'must be between 1970-01-01 and 9999-12-31 (UTC)');

/** A moment as the service writes it: ISO 8601 in UTC (`Date.prototype.toISOString`). */
export const utcTimestamp = z.iso.datetime();
