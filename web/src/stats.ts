/** What the dashboard reads from `GET /ws/stats` (docs/operations.md, "Metrics and health"). */

export const TIERS = ['free', 'basic', 'pro', 'elite'] as const;

export interface Instance {
  instance_id: string;
  total_connections: number;
  delivered_seq: number;
  write_conflicts: number;
  gaps_refilled: number;
  messages_delivered: number;
}

/** One tier's delivery latency over the window, from client receipts; p50/p99 null without receipts. */
export interface TierLatency {
  p50: number | null;
  p99: number | null;
  count: number;
}

/** The share of receipts delivered within `target_ms` over the window; `within` null without receipts. */
export interface Slo {
  target_ms: number;
  within: number | null;
  count: number;
  window_seconds: number;
}

export interface Stats {
  total_connections: number;
  active_users: number;
  users_by_tier: Record<string, number>;
  signals_broadcast: number;
  messages_delivered: number;
  slow_consumers_disconnected: number;
  bus: string;
  uptime_seconds: number;
  instances: Instance[];
  /** Absent from a server older than delivery receipts. */
  delivery_latency_ms?: Partial<Record<string, TierLatency>>;
  slo?: Slo;
}

/**
 * The share of receipts that must arrive within the target for the objective to be met. The
 * server reports the share; the objective is the page's, since it is a business promise
 * ("99 % of signals within 500 ms"), not a setting of the service.
 */
export const SLO_OBJECTIVE = 0.99;

const NO_RECEIPTS: TierLatency = { p50: null, p99: null, count: 0 };

/** A tier's latency; a tier the server left out reads as one without receipts. */
export const tierLatency = (stats: Stats, tier: string): TierLatency => stats.delivery_latency_ms?.[tier] ?? NO_RECEIPTS;

/** Milliseconds for a person: one decimal under 10 ms, whole above; a dash when there is nothing to show. */
export function formatMs(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '—';
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

/**
 * A share as a percentage with one decimal, rounded down, so that a share below the objective
 * never reads as meeting it (0.98996 shows "98.9 %", not "99.0 %").
 */
export function formatShare(share: number): string {
  return `${(Math.floor(share * 1000 + 1e-9) / 10).toFixed(1)} %`;
}

export type SloVerdict = 'met' | 'missed' | 'no-receipts';

export function sloVerdict(slo: Slo): SloVerdict {
  if (slo.count === 0 || slo.within === null) return 'no-receipts';
  return slo.within >= SLO_OBJECTIVE ? 'met' : 'missed';
}

/** "last 5 min" for a 300 s window. */
export function windowLabel(seconds: number): string {
  return seconds % 60 === 0 ? `last ${seconds / 60} min` : `last ${seconds} s`;
}
