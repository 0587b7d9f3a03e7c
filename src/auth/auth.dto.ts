import { z } from 'zod';
import { apiComponent } from '../common/openapi.js';
import { decimalInteger, storableText, utcTimestamp } from '../common/wire-schemas.js';
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
  email: storableText(z.string().max(254))
    .optional()
    .describe('case-insensitive substring of the email, matched literally (% and _ are not wildcards)'),
  cursor: z
    .string()
    .max(1024)
    .transform((cursor, ctx) => {
      const position = decodeUserCursor(cursor);
      if (position) return position;
      ctx.issues.push({ code: 'custom', input: cursor, message: 'must be the next_cursor of a previous page' });
      return z.NEVER;
    })
    .optional()
    .describe('the next_cursor of the previous page (opaque)'),
  limit: decimalInteger(USERS_PAGE_MAX)
    .refine((limit) => limit >= 1, 'must be at least 1')
    .default(USERS_PAGE_DEFAULT)
    .describe(`page size, 1 to ${USERS_PAGE_MAX} (decimal digits); default ${USERS_PAGE_DEFAULT}`),
});

export type CreateUserInput = z.output<typeof createUserSchema>;
export type UpdateUserInput = z.output<typeof updateUserSchema>;
export type ListUsersQuery = z.output<typeof listUsersQuerySchema>;

// Answers.

export const accessTokenSchema = apiComponent(
  'AccessToken',
  z.object({
    access_token: z.string(),
    token_type: z.literal('Bearer'),
    /** Seconds until the token expires. */
    expires_in: z.int().positive(),
  }),
);

export const userViewSchema = apiComponent(
  'User',
  z.object({
    id: z.uuid(),
    email: z.string(),
    role: z.enum(Role),
    tier: z.enum(Tier),
    created_at: utcTimestamp,
    updated_at: utcTimestamp,
  }),
);

export const usersPageSchema = apiComponent(
  'UsersPage',
  z.object({
    data: z.array(userViewSchema),
    /** Where the next page starts; null on the last page. */
    next_cursor: z.string().nullable(),
  }),
);

/** An API key as the admin API lists it: never the key or its hash. */
export const apiKeyViewSchema = apiComponent(
  'ApiKey',
  z.object({
    id: z.uuid(),
    prefix: z.string(),
    created_at: utcTimestamp,
    revoked_at: utcTimestamp.nullable(),
  }),
);

export const apiKeysSchema = apiComponent('ApiKeys', z.object({ data: z.array(apiKeyViewSchema) }));

/** A new API key: the only answer that ever holds the key itself. */
export const createdApiKeySchema = apiComponent(
  'CreatedApiKey',
  z.object({
    id: z.uuid(),
    key: z.string(),
    prefix: z.string(),
    created_at: utcTimestamp,
  }),
);

export type AccessToken = z.infer<typeof accessTokenSchema>;
export type UserView = z.infer<typeof userViewSchema>;
export type UsersPage = z.infer<typeof usersPageSchema>;
export type ApiKeyView = z.infer<typeof apiKeyViewSchema>;
export type CreatedApiKey = z.infer<typeof createdApiKeySchema>;
