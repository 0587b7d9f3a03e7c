import { z } from 'zod';
import { decimalInteger, storableText } from '../common/wire-schemas.js';
import { Role, Tier } from '../generated/prisma/enums.js';

export const tokenRequestSchema = z.strictObject({
  email: storableText(z.string().trim().min(1).max(254)),
  password: z.string().min(1).max(1024),
});

export const createUserSchema = z.strictObject({
  email: z
    .email()
    .max(254)
    .transform((email) => email.toLowerCase()),
  password: z.string().min(12, 'must be at least 12 characters').max(1024),
  role: z.enum(Role).default('subscriber'),
  tier: z.enum(Tier).default('free'),
});

export const updateUserSchema = z
  .strictObject({ tier: z.enum(Tier).optional(), role: z.enum(Role).optional() })
  .refine((body) => body.tier !== undefined || body.role !== undefined, {
    message: 'give at least one of tier, role',
  });

export const uuidSchema = z.uuid({ message: 'must be a UUID' });

/** A place in the user listing's order (email, then id): the listing resumes after it. */
export interface UserPosition {
  email: string;
  id: string;
}

const positionSchema = z.tuple([storableText(z.string().max(254)), z.uuid()]);

/** The listing's `next_cursor`: opaque to clients, base64url of `[email, id]`. */
export function encodeUserCursor(position: UserPosition): string {
  return Buffer.from(JSON.stringify([position.email, position.id])).toString('base64url');
}

function decodeUserCursor(cursor: string): UserPosition | null {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return null;
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  const parsed = positionSchema.safeParse(decoded);
  return parsed.success ? { email: parsed.data[0], id: parsed.data[1] } : null;
}

export const USERS_PAGE_DEFAULT = 20;
export const USERS_PAGE_MAX = 100;

export const listUsersQuerySchema = z.strictObject({
  /** A case-insensitive substring of the email, matched literally (`%` and `_` are not wildcards). */
  email: storableText(z.string().max(254)).optional(),
  cursor: z
    .string()
    .max(1024)
    .transform((cursor, ctx) => {
      const position = decodeUserCursor(cursor);
      if (position) return position;
      ctx.issues.push({ code: 'custom', input: cursor, message: 'must be the next_cursor of a previous page' });
      return z.NEVER;
    })
    .optional(),
  limit: decimalInteger(USERS_PAGE_MAX)
    .refine((limit) => limit >= 1, 'must be at least 1')
    .default(USERS_PAGE_DEFAULT),
});

export type CreateUserInput = z.output<typeof createUserSchema>;
export type UpdateUserInput = z.output<typeof updateUserSchema>;
export type ListUsersQuery = z.output<typeof listUsersQuerySchema>;
