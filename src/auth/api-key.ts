import { createHash, randomBytes } from 'node:crypto';

const PREFIX = 'sc_live_';

/** A new random key (shown once), its SHA-256 (stored) and a short prefix (for humans). */
export function generateApiKey(): { key: string; hash: string; prefix: string } {
  const key = PREFIX + randomBytes(32).toString('base64url');
  return { key, hash: hashApiKey(key), prefix: key.slice(0, PREFIX.length + 6) };
}

/** Keys are 256 random bits, so a fast hash is enough; argon2 would only slow every sync call. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}
