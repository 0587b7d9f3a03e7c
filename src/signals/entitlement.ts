import type { Tier } from '../generated/prisma/enums.js';

/** Tiers from lowest to highest; a user sees every signal whose `minTier` is at or below theirs. */
export const TIERS = ['free', 'basic', 'pro', 'elite'] as const satisfies readonly Tier[];

const RANK: Record<Tier, number> = { free: 0, basic: 1, pro: 2, elite: 3 };

/** The tier a premium signal requires. */
export const PREMIUM_MIN_TIER: Tier = 'pro';

export function canSee(userTier: Tier, signalMinTier: Tier): boolean {
  return RANK[userTier] >= RANK[signalMinTier];
}

/** The signal tiers a user may see, for database filters. */
export function visibleMinTiers(userTier: Tier): Tier[] {
  return TIERS.filter((tier) => RANK[tier] <= RANK[userTier]);
}
