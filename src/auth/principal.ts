import type { Role } from '../generated/prisma/enums.js';

/** Who is calling, after authentication. The tier is deliberately absent: it is looked up (cached). */
export interface Principal {
  userId: string;
  role: Role;
  /** Present for JWT callers: when the token expires (epoch seconds). */
  tokenExpiresAt?: number;
}
