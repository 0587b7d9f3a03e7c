import { describe, expect, it } from 'vitest';
import { canSee, PREMIUM_MIN_TIER, TIERS, visibleMinTiers } from './entitlement.js';

describe('entitlement', () => {
  it('lets every tier see regular signals and only pro and elite see premium ones', () => {
    expect(TIERS.filter((tier) => canSee(tier, 'free'))).toEqual(['free', 'basic', 'pro', 'elite']);
    expect(TIERS.filter((tier) => canSee(tier, PREMIUM_MIN_TIER))).toEqual(['pro', 'elite']);
  });

  it('supports an elite-only signal', () => {
    expect(TIERS.filter((tier) => canSee(tier, 'elite'))).toEqual(['elite']);
  });

  it('lists the signal tiers a reader may query, consistent with canSee', () => {
    for (const tier of TIERS) {
      expect(visibleMinTiers(tier)).toEqual(TIERS.filter((minTier) => canSee(tier, minTier)));
    }
    expect(visibleMinTiers('basic')).toEqual(['free', 'basic']);
  });
});
