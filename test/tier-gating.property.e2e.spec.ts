import { describe, expect, it } from 'vitest';
import { useTestApp } from './support/test-app.js';
import { propertyAppOverrides, propertyConfig, propertySeed, runTierProperty } from './support/tier-property.js';

/**
 * Tier gating as a property, under random concurrent load: providers syncing (new signals,
 * amendments flipping `premium` or moving the symbol, re-sends, late retries, batches), tiers
 * changing at random moments, subscribers on every tier with filters, closing, dropping, resuming
 * with `?since=`, and reading slowly through large replays. Every socket is then checked for leaks
 * (a premium signal the user's tier forbade throughout), duplicates, seq order and gaps; see
 * `checkRun` in support/tier-property.ts for the exact, conservative rules.
 *
 * Reproduce a failure with the seed it prints: `PROPERTY_SEED=<seed> npx vitest run
 * test/tier-gating.property.e2e.spec.ts`. `PROPERTY_SOAK=1` runs the long variant (10x the
 * events); `PROPERTY_SCALE=<n>` picks another multiplier.
 */
const seed = propertySeed();
const config = propertyConfig();
console.log(`tier-gating property: PROPERTY_SEED=${seed} (${config.mode}, scale ${config.scale})`);

describe(`tier gating under random load (PROPERTY_SEED=${seed})`, () => {
  const t = useTestApp(propertyAppOverrides());

  it(
    'delivers to every socket exactly what its tier and filter allow: no leak, no duplicate, no gap',
    async () => {
      const result = await runTierProperty(t, config, seed);
      console.log(result.summary);
      expect(
        result.violations,
        `PROPERTY_SEED=${seed}: ${result.violationCount} violations: ${result.violationKinds} (rerun with PROPERTY_SEED=${seed}${config.mode === 'soak' ? ' PROPERTY_SOAK=1' : ''})`,
      ).toEqual([]);
      expect(result.stats.deliveriesChecked, `PROPERTY_SEED=${seed}: nothing was delivered`).toBeGreaterThan(0);
      expect(result.stats.stressReplayed.length, `PROPERTY_SEED=${seed}: a stress replay did not complete`).toBe(config.stressUsers);
    },
    config.timeoutMs,
  );
});
