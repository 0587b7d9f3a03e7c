import { z } from 'zod';
import type { Tier } from '../generated/prisma/enums.js';
import { TIERS } from '../signals/entitlement.js';

/**
 * Upper edges (ms) of the buckets delivery latencies are counted in, for `/ws/stats`; one more
 * bucket holds everything above the last. Percentiles are read off these edges (an upper bound).
 */
export const LATENCY_EDGES_MS = [
  1, 2, 5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 10_000, 30_000, 60_000,
];

/** The window `/ws/stats` reports latencies over. */
export const LATENCY_WINDOW_MS = 5 * 60_000;

const count = z.int().min(0);

/** One tier's latencies over a window: bucket counts (LATENCY_EDGES_MS, then the overflow), how many within the SLO, the largest. */
export const latencyCountsSchema = z.object({
  buckets: z.array(count),
  count,
  within_slo: count,
  max_ms: z.number().min(0),
});
export type LatencyCounts = z.infer<typeof latencyCountsSchema>;

/** Every tier's counts: what an instance reports to the cluster, and what instances' reports add up to. */
export const latencyWindowSchema = z.record(z.enum(TIERS), latencyCountsSchema);
export type LatencyWindowCounts = z.infer<typeof latencyWindowSchema>;

const emptyCounts = (): LatencyCounts => ({
  buckets: new Array<number>(LATENCY_EDGES_MS.length + 1).fill(0),
  count: 0,
  within_slo: 0,
  max_ms: 0,
});
const emptyWindow = (): LatencyWindowCounts => Object.fromEntries(TIERS.map((tier) => [tier, emptyCounts()])) as LatencyWindowCounts;

function bucketOf(ms: number): number {
  let low = 0;
  let high = LATENCY_EDGES_MS.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (ms <= LATENCY_EDGES_MS[mid]!) high = mid;
    else low = mid + 1;
  }
  return low;
}

/**
 * Delivery latencies of the last `windowMs`, per tier, in fixed buckets: a ring of slots, each
 * covering `windowMs / slots`; a slot older than the window is emptied before it is reused. Adding
 * windows (`merge`) is exact, so instances' reports combine into the cluster's numbers.
 */
export class LatencyWindow {
  private readonly slotMs: number;
  private readonly slots: { epoch: number; counts: LatencyWindowCounts }[];

  constructor(
    private readonly sloMs: number,
    windowMs = LATENCY_WINDOW_MS,
    slots = 10,
    private readonly now: () => number = Date.now,
  ) {
    this.slotMs = windowMs / slots;
    this.slots = Array.from({ length: slots }, () => ({ epoch: -1, counts: emptyWindow() }));
  }

  record(tier: Tier, ms: number): void {
    const epoch = Math.floor(this.now() / this.slotMs);
    const slot = this.slots[epoch % this.slots.length]!;
    if (slot.epoch !== epoch) {
      slot.epoch = epoch;
      slot.counts = emptyWindow();
    }
    const counts = slot.counts[tier];
    counts.buckets[bucketOf(ms)]!++;
    counts.count++;
    if (ms <= this.sloMs) counts.within_slo++;
    counts.max_ms = Math.max(counts.max_ms, ms);
  }

  /** The counts of the slots still inside the window. */
  counts(): LatencyWindowCounts {
    const current = Math.floor(this.now() / this.slotMs);
    return mergeWindows(this.slots.filter((slot) => slot.epoch > current - this.slots.length).map((slot) => slot.counts));
  }
}

export function mergeWindows(windows: LatencyWindowCounts[]): LatencyWindowCounts {
  const total = emptyWindow();
  for (const window of windows) {
    for (const tier of TIERS) {
      const from = window[tier];
      const into = total[tier];
      if (!from) continue;
      from.buckets.forEach((n, i) => (into.buckets[i] = (into.buckets[i] ?? 0) + n));
      into.count += from.count;
      into.within_slo += from.within_slo;
      into.max_ms = Math.max(into.max_ms, from.max_ms);
    }
  }
  return total;
}

/** The q-quantile (0..1) as the upper edge of the bucket it falls in, never above the largest seen; null without samples. */
export function quantile(counts: LatencyCounts, q: number): number | null {
  if (counts.count === 0) return null;
  const rank = Math.max(1, Math.ceil(q * counts.count));
  let seen = 0;
  for (const [i, n] of counts.buckets.entries()) {
    seen += n;
    if (seen >= rank) return Math.min(LATENCY_EDGES_MS[i] ?? counts.max_ms, counts.max_ms);
  }
  return counts.max_ms;
}
