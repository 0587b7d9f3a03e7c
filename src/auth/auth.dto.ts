import { z } from 'zod';
import { storableText } from '../common/wire-schemas.js';
import { Role, Tier } from '../generated/prisma/enums.js';

export const tokenRequestSchema = z.strictObject({
  email: storableText(z.string().trim().min(1).max(254)),
  password: z.string().min(1).max(1024),
});

export const createUserSchema = z.strictObject({
  email: z.email().max(254).transform((email) => email.toLowerCase()),
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

export type CreateUserInput = z.output<typeof createUserSchema>;
export type UpdateUserInput = z.output<typeof updateUserSchema>;
