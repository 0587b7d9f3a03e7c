import { randomInt } from 'node:crypto';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Api, markerBody, WsClient } from './clients.js';
import { signToken, type TestApp } from './test-app.js';

/*
 * A randomized, seeded property test of tier gating, for the real service over real HTTP and
 * WebSocket clients. Four parts, usable on their own:
 *
 * - the seeded PRNG (`mulberry32`, `Rng`): every actor draws from its own stream, derived from the
 *   seed and the actor's name, so each actor makes the same choices for a seed whatever the timing
 *   (its interleaving with the others and the service, and so the exact seqs, still vary);
 * - the generator (`PropertyRun`): providers syncing (new signals, amendments that flip `premium` or
 *   move the symbol, identical re-sends, late retries of earlier versions, batches), an admin
 *   changing tiers, and subscribers whose sockets close, drop, resume with `?since=`, stop reading
 *   (paused TCP) and replay large backlogs, all at the same time;
 * - the model: what each sync answered (one record per stored version, with the time the request
 *   was sent and answered), each user's tier timeline (each change with the time it was sent and
 *   answered), and for each socket what it received and when;
 * - the checker (`checkRun`): no leak, no duplicate, seq order, no gap, judged soundly from that
 *   model (see `checkRun`).
 *
 * Times are `performance.now()` of this process, which runs the clients and the server alike.
 */

export type Tier = 'free' | 'basic' | 'pro' | 'elite';
export const TIERS: readonly Tier[] = ['free', 'basic', 'pro', 'elite'];
const seesPremium = (tier: Tier) => tier === 'pro' || tier === 'elite';
const now = () => performance.now();

// ---------------------------------------------------------------------------------------------
// Seeded randomness

/** mulberry32: a tiny 32-bit PRNG, good enough for test scenarios and identical on every platform. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/** One actor's random stream: the same seed and stream name give the same draws. */
export class Rng {
  private readonly draw: () => number;

  constructor(seed: number, stream: string) {
    this.draw = mulberry32((seed ^ fnv1a(stream)) >>> 0);
  }

  float(): number {
    return this.draw();
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.draw() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.draw() < probability;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.draw() * items.length)]!;
  }

  /** Between min and max distinct items, in their original order. */
  subset<T>(items: readonly T[], min: number, max: number): T[] {
    const count = this.int(min, Math.min(max, items.length));
    const chosen = new Set<number>();
    while (chosen.size < count) chosen.add(Math.floor(this.draw() * items.length));
    return items.filter((_, i) => chosen.has(i));
  }
}

/** `PROPERTY_SEED` (decimal, or 0x hex) if set, else a random one: print it, it replays the run. */
export function propertySeed(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.PROPERTY_SEED?.trim();
  if (!raw) return randomInt(1, 2 ** 32 - 1);
  const seed = Number(raw);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new Error(`PROPERTY_SEED must be an integer in [0, 2^32): ${raw}`);
  }
  return seed;
}

// ---------------------------------------------------------------------------------------------
// Size

export interface PropertyConfig {
  mode: 'quick' | 'soak';
  /** Multiplies the event counts (syncs, tier changes, subscriber actions). */
  scale: number;
  /** Subscriber users (on all four tiers), besides the stress users. */
  users: number;
  /** Logical subscribers (socket chains) per user: 1..this. Kept under WS_MAX_SOCKETS_PER_USER (5). */
  maxSubscribersPerUser: number;
  providers: number;
  /** Concurrent sync streams per provider; each owns its signal keys. */
  workersPerProvider: number;
  /** Sync items (a batch counts each of its items). */
  syncs: number;
  tierChanges: number;
  /** Concurrent admin loops changing tiers (never two changes in flight for one user). */
  tierChangers: number;
  /** Random actions (reconnect, drop, pause, slow replay) per logical subscriber. */
  actionsPerSubscriber: [number, number];
  /** Large signals stored before any socket opens, replayed by the stress subscribers. */
  backlog: number;
  /** Users whose subscriber replays from seq 0 with a paused reader and is downgraded mid-replay. */
  stressUsers: number;
  /** Share of synced signals with a ~2000-character note (large replays, slow consumers). */
  bigNoteShare: number;
  /** Upper bound of each sync stream's random pause between requests, in ms. */
  paceMs: number;
  /** vitest timeout for the whole run. */
  timeoutMs: number;
}

/** Quick by default (`npm test`); `PROPERTY_SOAK=1` for the long variant; `PROPERTY_SCALE` to pick a multiplier. */
export function propertyConfig(env: NodeJS.ProcessEnv = process.env): PropertyConfig {
  const soak = env.PROPERTY_SOAK === '1' || env.PROPERTY_SOAK === 'true';
  const scale = env.PROPERTY_SCALE ? Number(env.PROPERTY_SCALE) : soak ? 10 : 1;
  if (!(scale > 0) || scale > 1000) throw new Error(`PROPERTY_SCALE must be a positive number: ${env.PROPERTY_SCALE}`);
  return {
    mode: soak ? 'soak' : 'quick',
    scale,
    users: scale > 1 ? 40 : 24,
    maxSubscribersPerUser: 3,
    providers: 3,
    workersPerProvider: 3,
    syncs: Math.round(2000 * scale),
    tierChanges: Math.round(200 * scale),
    tierChangers: 4,
    actionsPerSubscriber: [Math.max(1, Math.round(2 * scale)), Math.max(2, Math.round(4 * scale))],
    backlog: 3000,
    stressUsers: scale > 1 ? 2 + Math.min(6, Math.round(scale / 2)) : 2,
    bigNoteShare: 0.12,
    paceMs: 4,
    timeoutMs: Math.round(Math.max(240_000, 240_000 * scale)),
  };
}

/**
 * The service settings of the run, and why:
 * - WS_REPLAY_PAGE_SIZE=100 (default 500): more replay pages, so more points where a replay reads
 *   the tier, and tier changes land between pages;
 * - WS_MAX_BUFFERED_BYTES=256 KiB (default 1 MiB): a replay waits for the socket to drain below
 *   128 KiB before each page, so a paused reader holds a replay mid-way within a few pages, and
 *   paused live sockets are cut as slow consumers (4008) and resume by seq;
 * - WS_REPLAY_MAX=50000 (default 10000): the stress subscribers replay everything from seq 0,
 *   which in the soak variant exceeds 10000 signals; `resync_required` is not what this tests.
 */
export function propertyAppOverrides(): Record<string, string> {
  return {
    WS_REPLAY_PAGE_SIZE: '100',
    WS_MAX_BUFFERED_BYTES: String(256 * 1024),
    WS_REPLAY_MAX: '50000',
  };
}

// ---------------------------------------------------------------------------------------------
// The model

/** One stored version, as its sync answered it. */
export interface VersionRec {
  seq: number;
  key: string;
  id: string;
  provider: string;
  externalId: string;
  version: number;
  premium: boolean;
  symbol: string;
  market: string;
  side: string;
  confidence: number;
  status: string;
  noteSig: string | null;
  /** When the sync request was sent (a lower bound of its commit). */
  sendT: number;
  answerT: number;
  /** The next version of the same signal, once known. */
  next?: VersionRec;
}

export interface TierChangeRec {
  userId: string;
  from: Tier;
  tier: Tier;
  sendT: number;
  /** Infinity when never answered. */
  answerT: number;
  ok: boolean;
}

/**
 * Each user's tier over time. A change may apply at any moment between its request being sent and
 * its answer; once answered it holds (the service's promise: "a tier change applies to the user's
 * open sockets at once"). Changes of one user are never in flight together.
 */
export class TierTimeline {
  private readonly initial = new Map<string, Tier>();
  private readonly changes = new Map<string, TierChangeRec[]>();

  addUser(userId: string, tier: Tier): void {
    this.initial.set(userId, tier);
    this.changes.set(userId, []);
  }

  add(change: TierChangeRec): void {
    this.changes.get(change.userId)!.push(change);
  }

  /** The tier the last change asked for (the generator's view). */
  latest(userId: string): Tier {
    return this.changes.get(userId)!.at(-1)?.tier ?? this.initial.get(userId)!;
  }

  count(): number {
    let total = 0;
    for (const list of this.changes.values()) total += list.length;
    return total;
  }

  /** Every tier the service may have applied to this user at some moment of [from, to]. */
  possible(userId: string, from: number, to: number): Set<Tier> {
    let base = this.initial.get(userId)!;
    const list = this.changes.get(userId)!;
    for (const change of list) if (change.ok && change.answerT <= from) base = change.tier;
    const tiers = new Set<Tier>([base]);
    for (const change of list) {
      if (change.sendT <= to && (change.answerT > from || !change.ok)) tiers.add(change.tier);
    }
    return tiers;
  }

  premiumSurely(userId: string, from: number, to: number): boolean {
    return [...this.possible(userId, from, to)].every(seesPremium);
  }

  premiumSurelyNot(userId: string, from: number, to: number): boolean {
    return ![...this.possible(userId, from, to)].some(seesPremium);
  }

  describe(userId: string): string {
    const parts = [`${this.initial.get(userId)}@start`];
    for (const c of this.changes.get(userId)!) parts.push(`${c.tier}[sent ${ms(c.sendT)}, answered ${ms(c.answerT)}]`);
    return parts.join(' -> ');
  }
}

const ms = (t: number) => (Number.isFinite(t) ? `${t.toFixed(1)}ms` : 'never');

export interface WireFilter {
  symbols?: string[];
  markets?: string[];
  providers?: string[];
  sides?: string[];
  min_confidence?: number;
}

export function matchesFilter(
  filter: WireFilter | undefined,
  v: Pick<VersionRec, 'symbol' | 'market' | 'provider' | 'side' | 'confidence'>,
): boolean {
  if (!filter) return true;
  return (
    (!filter.symbols || filter.symbols.includes(v.symbol)) &&
    (!filter.markets || filter.markets.includes(v.market)) &&
    (!filter.providers || filter.providers.includes(v.provider)) &&
    (!filter.sides || filter.sides.includes(v.side)) &&
    (filter.min_confidence === undefined || v.confidence >= filter.min_confidence)
  );
}

export interface ControlMessage {
  type: string;
  t: number;
  [field: string]: unknown;
}

/**
 * One physical socket, or the part of one after a `resume` message (sent after `unsubscribe`, so
 * nothing arrived between the two): each part is one link of its subscriber's chain.
 */
export interface SocketRec {
  /** Its place in the subscriber's chain, from 1 (refused attempts included). */
  n: number;
  subscriber: number;
  userId: string;
  /** `?since=` (or `resume.since`) it resumed from; undefined for the chain's first (fresh) socket. */
  since?: number;
  /** The part of a socket after a `resume` message: no welcome; `openT` is when `resume` was sent. */
  viaResume?: boolean;
  openT: number;
  welcomeT?: number;
  /**
   * welcome.latest_seq: for a fresh socket its start, for a resumed one the end of its replay pages.
   * Infinity after a `resume` message, whose page end is not observable: every version is then
   * judged by the (weaker) replay rule.
   */
  latestSeq?: number;
  welcomeTier?: string;
  /** When the `subscribe` ack arrived (a subscribe-filtered chain's first socket). */
  ackT?: number;
  /** Signal seqs received, in arrival order, and when each arrived. */
  seqs: number[];
  times: number[];
  control: ControlMessage[];
  closeT?: number;
  closeCode?: number;
  closedByUs: boolean;
  /** Why it never became a subscriber socket (refused upgrade, closed before welcome). */
  failure?: string;
  pausedAtOpen: boolean;
}

/** One logical subscriber: a chain of sockets, each resuming from the last seq the previous received. */
export interface SubscriberRec {
  n: number;
  userId: string;
  filterMode: 'none' | 'url' | 'subscribe';
  filter?: WireFilter;
  stress: boolean;
  sockets: SocketRec[];
}

export interface RunModel {
  seed: number;
  /** Indexed by seq. */
  versions: (VersionRec | undefined)[];
  maxSeq: number;
  finalSeq: number;
  timeline: TierTimeline;
  subscribers: SubscriberRec[];
}

export interface CheckResult {
  violations: string[];
  violationCount: number;
  /** Violations by kind: LEAK, GAP, DUPLICATE, ORDER, FILTER, SERVICE (sync answers, content, tier changes), OTHER. */
  kinds: Record<string, number>;
  deliveriesChecked: number;
  /** Versions the checker required (entitled throughout) and found delivered. */
  entitledVerified: number;
  premiumDeliveries: number;
}

// ---------------------------------------------------------------------------------------------
// The checker

/**
 * Judges every socket of every logical subscriber. Sound by construction: a violation is reported
 * only when the model proves it, whatever the timing inside the service.
 *
 * 1. Leak: a premium version received while the user surely could not see premium signals during
 *    the whole window from the moment its sync request was sent (before its commit) to the moment
 *    the client received it: a free/basic tier answered before the send, and no change to pro/elite
 *    sent before the receipt.
 * 2. Duplicates and order: seqs strictly increase along the whole chain (a resumed socket starts
 *    after the last seq the previous one received), and never at or below the socket's start.
 * 3. Gap: the seqs (start, end] of each socket, where start is welcome.latest_seq for a fresh socket
 *    or the `since` it resumed from, and end is the last seq it received (the final marker for the
 *    last socket of a chain), partition the chain's life. A stored version V in that range that
 *    the socket did not receive is a gap when, with x the first seq it received after V:
 *    - V matches the subscriber's filter;
 *    - V is regular, or the user surely saw premium from max(socket opened, V's send) until x
 *      arrived (every decision about V was taken in that window: after the commit and the
 *      registration, before x was written);
 *    - V is live for this socket (a fresh socket, or a resumed one with V.seq above
 *      welcome.latest_seq, where the replay pages end: the fan-out delivers every version), or V
 *      was still the signal's current state when its replay page was read: the replay sends each
 *      signal's current state only, so V is required only if its next version was sent after x
 *      arrived (the page holding V was read before x was written) or there is none.
 * Also: content of each delivery equals what the sync answered, filters hold (URL filters always;
 * a `subscribe` filter for versions sent after its ack), no `error`/`resync_required`, a resumed
 * socket's replay completes, the welcome tier is one the user may have had, the seqs the syncs
 * answered are gapless.
 */
export function checkRun(model: RunModel, extra: string[] = []): CheckResult {
  const { versions, timeline, seed } = model;
  const violations: string[] = [];
  let violationCount = 0;
  const kinds: Record<string, number> = {};
  const violate = (message: string, kind = 'OTHER') => {
    violationCount++;
    kinds[kind] = (kinds[kind] ?? 0) + 1;
    // Leaks first: they are what this test is for.
    if (kind === 'LEAK' && violations.length >= 60) {
      const other = violations.findIndex((v) => !v.includes('] LEAK '));
      if (other >= 0) violations.splice(other, 1);
    }
    if (violations.length < 60) violations.push(`[PROPERTY_SEED=${seed}] ${kind} ${message}`);
  };
  for (const message of extra) violate(message, 'SERVICE');
  let deliveriesChecked = 0;
  let entitledVerified = 0;
  let premiumDeliveries = 0;

  for (let seq = 1; seq <= model.maxSeq; seq++) {
    if (!versions[seq]) violate(`seq ${seq} was stored (seqs go up to ${model.maxSeq}) but no sync answered it`);
  }

  const describeVersion = (v: VersionRec) =>
    `seq ${v.seq} (${v.externalId} v${v.version}, ${v.premium ? 'premium' : 'regular'} ${v.symbol}, sync sent ${ms(v.sendT)}, answered ${ms(v.answerT)})`;

  for (const sub of model.subscribers) {
    const who = `subscriber #${sub.n} (user ${sub.userId}, filter ${sub.filterMode}${sub.filter ? ' ' + JSON.stringify(sub.filter) : ''})`;
    const chain = sub.sockets.filter((s) => s.latestSeq !== undefined);
    for (const s of sub.sockets) {
      if (s.latestSeq === undefined && s.seqs.length > 0) violate(`${who} socket #${sub.n}.${s.n}: signals without a welcome`);
    }
    if (chain.length === 0) {
      violate(`${who}: no socket was ever welcomed`);
      continue;
    }
    let previous = -1;
    let previousEnd: number | undefined;
    const seenOnChain = new Set<number>();
    chain.forEach((s, index) => {
      const how = s.since === undefined ? 'fresh' : s.viaResume ? `resume message since=${s.since}` : `since=${s.since}`;
      const where = `${who} socket #${sub.n}.${s.n} (${how}, latest_seq ${s.latestSeq}, opened ${ms(s.openT)})`;
      const start = s.since ?? s.latestSeq!;
      if (index > 0 && s.since !== previousEnd) {
        violate(`${where}: harness error, resumed from ${s.since} but the previous socket ended at ${previousEnd}`);
      }
      if (s.since !== undefined && s.latestSeq! < s.since) violate(`${where}: welcome.latest_seq below the since it resumed from`);
      const welcomeTiers = s.viaResume ? undefined : timeline.possible(sub.userId, s.openT, s.welcomeT!);
      if (welcomeTiers && !welcomeTiers.has(s.welcomeTier as Tier)) {
        violate(`${where}: welcome tier ${s.welcomeTier}, but the user's tier was one of ${[...welcomeTiers].join('/')}`);
      }
      for (const c of s.control) {
        if (c.type === 'error' || c.type === 'resync_required') violate(`${where}: unexpected ${JSON.stringify(c)}`);
      }
      if (s.closeCode !== undefined && !s.closedByUs && s.closeCode !== 4008) {
        violate(`${where}: closed by the server with ${s.closeCode} at ${ms(s.closeT!)}`);
      }

      // Leaks, duplicates, order, filters.
      s.seqs.forEach((seq, k) => {
        const t = s.times[k]!;
        deliveriesChecked++;
        if (seenOnChain.has(seq)) violate(`${where}: seq ${seq} received twice`, 'DUPLICATE');
        else if (seq <= previous) violate(`${where}: seq ${seq} received after seq ${previous}`, 'ORDER');
        if (seq <= start) violate(`${where}: seq ${seq} is at or below the socket's start ${start}`, 'ORDER');
        seenOnChain.add(seq);
        previous = Math.max(previous, seq);
        const v = versions[seq];
        if (!v) return violate(`${where}: received seq ${seq}, which no sync answered`);
        if (v.premium) {
          premiumDeliveries++;
          if (timeline.premiumSurelyNot(sub.userId, v.sendT, t)) {
            violate(
              `${where}: received premium ${describeVersion(v)} at ${ms(t)}, while the user could not see premium ` +
                `signals from the sync's send to the receipt; tiers: ${timeline.describe(sub.userId)}`,
              'LEAK',
            );
          }
        }
        const filterInForce =
          sub.filterMode === 'url' ||
          (sub.filterMode === 'subscribe' && (s.since !== undefined || (s.ackT !== undefined && v.sendT >= s.ackT)));
        if (filterInForce && !matchesFilter(sub.filter, v)) {
          violate(
            `${where}: received ${describeVersion(v)} (${v.market} ${v.side} conf ${v.confidence} provider ${v.provider}), outside its filter`,
            'FILTER',
          );
        }
      });

      // Gaps.
      const end = s.seqs.reduce((a, b) => Math.max(a, b), start);
      const order = s.seqs.map((seq, k) => [seq, s.times[k]!] as const).sort((a, b) => a[0] - b[0]);
      let xi = 0;
      for (let seq = start + 1; seq <= end; seq++) {
        const v = versions[seq];
        if (!v) continue;
        while (xi < order.length && order[xi]![0] < seq) xi++;
        const received = order[xi]?.[0] === seq;
        const x = received ? order[xi]! : order[xi];
        if (!x) break;
        if (!matchesFilter(sub.filter, v)) continue;
        if (v.premium && !timeline.premiumSurely(sub.userId, Math.max(s.openT, v.sendT), x[1])) continue;
        const fromPage = s.since !== undefined && seq <= s.latestSeq!;
        if (fromPage && v.next && v.next.sendT < x[1]) continue;
        if (received) {
          entitledVerified++;
          continue;
        }
        violate(
          `${where}: did not receive ${describeVersion(v)}${fromPage ? ' (replay range)' : ''}, though entitled throughout; ` +
            `next received: seq ${x[0]} at ${ms(x[1])}${v.premium ? `; tiers: ${timeline.describe(sub.userId)}` : ''}`,
          'GAP',
        );
      }
      if (s.since !== undefined && s.seqs.includes(model.finalSeq) && !s.control.some((c) => c.type === 'replay_complete')) {
        violate(`${where}: received the final marker without a replay_complete`);
      }
      previousEnd = end;
    });
    if (previousEnd !== model.finalSeq) violate(`${who}: the chain ends at seq ${previousEnd}, not at the final marker ${model.finalSeq}`);
  }
  return { violations, violationCount, kinds, deliveriesChecked, entitledVerified, premiumDeliveries };
}

// ---------------------------------------------------------------------------------------------
// The generator

const SYMBOLS: readonly (readonly [string, string])[] = [
  ['BTCUSDT', 'crypto'],
  ['ETHUSDT', 'crypto'],
  ['SOLUSDT', 'crypto'],
  ['XRPUSDT', 'crypto'],
  ['EURUSD', 'forex'],
  ['GBPUSD', 'forex'],
  ['AAPL', 'stocks'],
  ['MSFT', 'stocks'],
];
const MARKETS = ['crypto', 'forex', 'stocks'];
const SIDES = ['buy', 'sell', 'long', 'short', 'close'];
const TIMEFRAMES = ['1m', '15m', '1h', '4h', '1d'];
/** The final marker: regular, and inside every filter the generator makes. */
const MARKER = { symbol: 'MARKER', market: 'crypto', side: 'long', confidence: 100 };
const CLOSED = Symbol('closed');
type Closed = typeof CLOSED;

type Body = Record<string, unknown> & { external_id: string };

interface KeyState {
  externalId: string;
  /** Bodies of the stored versions, oldest first. */
  bodies: Body[];
  version: number;
  seq: number;
}

type SyncKind = 'new' | 'amend' | 'resend' | 'retry';
interface SyncOp {
  kind: SyncKind;
  key?: KeyState;
  body: Body;
}

interface ProviderRec {
  id: string;
  apiKey: string;
}

interface UserRec {
  id: string;
  token: string;
  tier: Tier;
  stress: boolean;
}

export interface PropertyStats {
  users: number;
  usersByTier: Record<Tier, number>;
  subscribers: number;
  socketsWelcomed: number;
  socketAttemptsRefused: number;
  resumes: number;
  resumeMessages: number;
  serverCuts: number;
  pauses: number;
  syncItems: number;
  syncRequests: number;
  batches: number;
  versionsStored: number;
  unchangedAnswers: number;
  tierChanges: number;
  stressReplayed: number[];
  /** Stress replays whose downgrade landed mid-replay (premium backlog rows delivered, then none). */
  stressCutMidReplay: number;
  deliveriesChecked: number;
  premiumDeliveries: number;
  entitledVerified: number;
  seconds: number;
}

export interface PropertyResult {
  seed: number;
  config: PropertyConfig;
  stats: PropertyStats;
  summary: string;
  violations: string[];
  violationCount: number;
  /** e.g. "3 LEAK, 2 GAP" */
  violationKinds: string;
  /** Everything recorded, for `checkRun` again or for a closer look at a failure. */
  model: RunModel;
}

const noteSig = (note: unknown) => (typeof note === 'string' ? `${note.length}:${note.slice(-24)}` : null);

/** Runs the scenario against a started app and checks it. Throws only on harness failures. */
export async function runTierProperty(
  t: { app: TestApp; api: Api },
  config: PropertyConfig,
  seed: number,
  label = process.env.TEST_DATABASE ?? 'pglite',
): Promise<PropertyResult> {
  const run = new PropertyRun(t.app, t.api, config, seed, label);
  try {
    return await run.execute();
  } catch (error) {
    run.stop();
    const e = error as Error;
    e.message = `[PROPERTY_SEED=${seed}] ${e.message}`;
    throw e;
  }
}

class PropertyRun {
  readonly versions: (VersionRec | undefined)[] = [];
  private readonly lastOfKey = new Map<string, VersionRec>();
  maxSeq = 0;
  readonly timeline = new TierTimeline();
  /** What the service answered wrongly outside the sockets (sync answers, tier changes, content). */
  private readonly extra: string[] = [];
  private extraDropped = 0;
  private readonly users: UserRec[] = [];
  readonly providers: ProviderRec[] = [];
  private readonly drivers: SubscriberDriver[] = [];
  private readonly pendingContent: { where: string; message: any }[] = [];
  progress = 0;
  syncsFinished = false;
  finishing = false;
  private stopped = false;
  private progressWaiters: { at: number; resolve: () => void }[] = [];
  readonly stats = {
    pauses: 0,
    resumeMessages: 0,
    syncRequests: 0,
    batches: 0,
    unchanged: 0,
    stressReplayed: [] as number[],
  };
  private readonly startedAt = now();
  private readonly cpuAtStart = process.cpuUsage();

  constructor(
    readonly app: TestApp,
    readonly api: Api,
    readonly config: PropertyConfig,
    readonly seed: number,
    private readonly label: string,
  ) {}

  problem(message: string): void {
    if (this.extra.length < 200) this.extra.push(message);
    else this.extraDropped++;
  }

  rng(stream: string): Rng {
    return new Rng(this.seed, stream);
  }

  stop(): void {
    this.stopped = true;
    this.finishing = true;
    this.syncsFinished = true;
    for (const waiter of this.progressWaiters) waiter.resolve();
    for (const driver of this.drivers) driver.abandon();
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  // -- progress clock: actors act at points of the sync stream, so a seed means the same scenario

  advance(items: number): void {
    this.progress += items;
    this.progressWaiters = this.progressWaiters.filter((waiter) => {
      if (this.progress < waiter.at) return true;
      waiter.resolve();
      return false;
    });
  }

  untilProgress(at: number, maxMs = Infinity): Promise<void> {
    if (this.progress >= at || this.syncsFinished) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = { at, resolve: () => resolve() };
      this.progressWaiters.push(waiter);
      if (Number.isFinite(maxMs)) {
        setTimeout(() => {
          this.progressWaiters = this.progressWaiters.filter((w) => w !== waiter);
          resolve();
        }, maxMs).unref();
      }
    });
  }

  private finishSyncs(): void {
    this.syncsFinished = true;
    for (const waiter of this.progressWaiters) waiter.resolve();
    this.progressWaiters = [];
  }

  // -- the model

  record(signal: any, sendT: number, answerT: number): VersionRec {
    const v: VersionRec = {
      seq: signal.seq,
      key: `${signal.provider}|${signal.external_id}`,
      id: signal.id,
      provider: signal.provider,
      externalId: signal.external_id,
      version: signal.version,
      premium: signal.premium,
      symbol: signal.symbol,
      market: signal.market,
      side: signal.side,
      confidence: signal.confidence,
      status: signal.status,
      noteSig: noteSig(signal.note),
      sendT,
      answerT,
    };
    if (this.versions[v.seq]) this.problem(`two syncs answered seq ${v.seq}`);
    this.versions[v.seq] = v;
    this.maxSeq = Math.max(this.maxSeq, v.seq);
    const previous = this.lastOfKey.get(v.key);
    if (previous && previous.version + 1 !== v.version) {
      this.problem(`${v.externalId}: version ${v.version} stored after version ${previous.version}`);
    }
    if (previous && previous.seq > v.seq)
      this.problem(`${v.externalId}: v${v.version} has seq ${v.seq} below v${previous.version}'s ${previous.seq}`);
    if (previous) previous.next = v;
    this.lastOfKey.set(v.key, v);
    return v;
  }

  /** Compares a delivery with what the sync answered (later, if the answer is not in yet). */
  verifyContent(where: string, message: any): void {
    const v = this.versions[message.seq];
    if (!v) {
      this.pendingContent.push({ where, message: { ...message, note: noteSig(message.note) } });
      return;
    }
    this.compare(where, v, message, noteSig(message.note));
  }

  private compare(where: string, v: VersionRec, m: any, note: string | null): void {
    const expectedType = v.version > 1 ? 'signal_update' : 'signal';
    const same =
      m.type === expectedType &&
      m.id === v.id &&
      m.provider === v.provider &&
      m.external_id === v.externalId &&
      m.version === v.version &&
      m.premium === v.premium &&
      m.symbol === v.symbol &&
      m.market === v.market &&
      m.side === v.side &&
      m.confidence === v.confidence &&
      m.status === v.status &&
      note === v.noteSig;
    if (!same) {
      this.problem(
        `${where}: seq ${v.seq} delivered as ${JSON.stringify({ ...m, note })}, but its sync answered ` +
          JSON.stringify({ type: expectedType, ...v, next: undefined }),
      );
    }
  }

  // -- setup

  private async setup(): Promise<void> {
    const { config } = this;
    this.providers.push(...(await mapLimit(Array.from({ length: config.providers }), 4, () => this.createProvider())));
    const rng = this.rng('users');
    const tiers: Tier[] = [];
    for (let i = 0; i < config.users; i++) tiers.push(TIERS[i % 4]!);
    for (let i = 0; i < config.stressUsers; i++) tiers.push(i % 2 === 0 ? 'pro' : 'elite');
    // Users cost an argon2 hash each (CPU, in libuv's pool), the backlog costs the database: together.
    const [created] = await Promise.all([
      mapLimit(tiers, 4, async (tier, i) => this.createUser(tier, i >= config.users)),
      this.storeBacklog(),
    ]);
    this.users.push(...created);
    for (const user of this.users) this.timeline.addUser(user.id, user.tier);
    this.phases.push(`users and backlog ${this.lap()}`);

    let n = 0;
    for (const user of this.users) {
      const count = user.stress ? 1 : rng.int(1, config.maxSubscribersPerUser);
      for (let i = 0; i < count; i++) {
        const mode: SubscriberRec['filterMode'] = user.stress
          ? 'none'
          : rng.pick(['none', 'none', 'none', 'none', 'none', 'url', 'url', 'url', 'subscribe', 'subscribe']);
        const rec: SubscriberRec = { n: n++, userId: user.id, filterMode: mode, stress: user.stress, sockets: [] };
        if (mode !== 'none') rec.filter = this.randomFilter(rng);
        this.drivers.push(new SubscriberDriver(this, rec, user));
      }
    }
    // Regular subscribers start live now; stress subscribers start with their replay.
    await mapLimit(
      this.drivers.filter((d) => !d.rec.stress),
      8,
      (driver) => driver.enqueue(() => driver.start()),
    );
    this.phases.push(`sockets ${this.lap()}`);
  }

  private readonly phases: string[] = [];
  private lapStart = now();
  private lap(): string {
    const seconds = (now() - this.lapStart) / 1000;
    this.lapStart = now();
    return `${seconds.toFixed(1)} s`;
  }

  private async createAccount(role: 'subscriber' | 'provider', tier: Tier): Promise<string> {
    const email = `prop-${this.seed}-${role}-${tier}-${randomInt(1e9)}@test.signalcast`;
    const created = await this.api.request('POST', '/api/v1/admin/users', {
      token: await this.api.admin(),
      body: { email, password: 'user-password-123', role, tier },
    });
    if (created.status !== 201) throw new Error(`create ${role} failed: ${created.status} ${JSON.stringify(created.body)}`);
    return created.body.id;
  }

  private async createUser(tier: Tier, stress: boolean): Promise<UserRec> {
    const id = await this.createAccount('subscriber', tier);
    // A token as the service issues it, without paying for a login (argon2) per user.
    return { id, token: signToken(id, 'subscriber', 6 * 3600), tier, stress };
  }

  private async createProvider(): Promise<ProviderRec> {
    const id = await this.createAccount('provider', 'free');
    const key = await this.api.request('POST', `/api/v1/admin/users/${id}/api-keys`, { token: await this.api.admin() });
    if (key.status !== 201) throw new Error(`create API key failed: ${key.status} ${JSON.stringify(key.body)}`);
    return { id, apiKey: key.body.key };
  }

  private randomFilter(rng: Rng): WireFilter {
    const filter: WireFilter = {};
    while (Object.keys(filter).length === 0) {
      if (rng.chance(0.6))
        filter.symbols = [
          ...rng.subset(
            SYMBOLS.map(([s]) => s),
            1,
            3,
          ),
          MARKER.symbol,
        ];
      if (rng.chance(0.3)) filter.markets = [...new Set(['crypto', ...rng.subset(MARKETS, 0, 1)])];
      if (rng.chance(0.3)) filter.sides = [...new Set([MARKER.side, ...rng.subset(SIDES, 1, 2)])];
      if (rng.chance(0.4)) filter.min_confidence = rng.int(0, 80);
      if (rng.chance(0.15))
        filter.providers = [
          this.providers[0]!.id,
          ...rng.subset(
            this.providers.slice(1).map((p) => p.id),
            0,
            1,
          ),
        ];
    }
    return filter;
  }

  /** Large signals stored before any socket opens: what the stress subscribers replay. */
  private async storeBacklog(): Promise<void> {
    const rng = this.rng('backlog');
    const provider = this.providers[0]!;
    for (let start = 0; start < this.config.backlog; start += 100) {
      const signals = Array.from({ length: Math.min(100, this.config.backlog - start) }, (_, i) => {
        const [symbol, market] = rng.pick(SYMBOLS);
        const tag = `backlog-${this.seed}-${start + i}`;
        return {
          ...baseBody(rng, `${tag}`, symbol, market),
          note: bigNote(tag),
          premium: rng.chance(0.3),
        };
      });
      const sendT = now();
      const response = await this.api.request('POST', '/api/v1/external-signals/sync/signals', {
        apiKey: provider.apiKey,
        body: { signals },
      });
      const answerT = now();
      if (response.status !== 200) throw new Error(`backlog sync failed: ${response.status} ${JSON.stringify(response.body)}`);
      for (const result of response.body.results) {
        if (result.status !== 201) throw new Error(`backlog item failed: ${JSON.stringify(result)}`);
        this.record(result.signal, sendT, answerT);
      }
    }
  }

  // -- the run

  async execute(): Promise<PropertyResult> {
    const { config } = this;
    await this.setup();
    console.log(
      `tier-gating property [${this.label}, ${config.mode}] PROPERTY_SEED=${this.seed}: ${this.users.length} users, ` +
        `${this.drivers.length} subscribers, ${config.syncs} syncs, ${config.tierChanges} tier changes (setup: ${this.phases.join(', ')})`,
    );
    const workers: Promise<void>[] = [];
    const perWorker = splitEvenly(config.syncs, config.providers * config.workersPerProvider);
    this.providers.forEach((provider, p) => {
      for (let w = 0; w < config.workersPerProvider; w++) {
        workers.push(new SyncWorker(this, provider, `p${p}w${w}`, perWorker[p * config.workersPerProvider + w]!).work());
      }
    });
    const syncing = Promise.allSettled(workers).then((results) => {
      this.finishSyncs();
      for (const result of results) if (result.status === 'rejected') throw result.reason;
    });
    const changers = splitEvenly(config.tierChanges, config.tierChangers).map((count, i) => this.changeTiers(i, count));
    const stress = this.drivers.filter((d) => d.rec.stress).map((driver, j, all) => driver.stressSlice(j, all.length));
    const driving = this.drivers.filter((d) => !d.rec.stress).map((driver) => driver.drive());
    const actors = await Promise.allSettled([syncing, ...changers, ...stress, ...driving]);
    const failed = actors.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) throw failed.reason;

    this.phases.push(`load ${this.lap()}`);
    const finalSeq = await this.finish();
    this.phases.push(`final marker ${this.lap()}`);
    for (const { where, message } of this.pendingContent) {
      const v = this.versions[message.seq];
      if (v) this.compare(where, v, message, message.note);
    }
    const model: RunModel = {
      seed: this.seed,
      versions: this.versions,
      maxSeq: this.maxSeq,
      finalSeq,
      timeline: this.timeline,
      subscribers: this.drivers.map((d) => d.rec),
    };
    const check = checkRun(model, this.extraDropped > 0 ? [...this.extra, `... and ${this.extraDropped} more`] : this.extra);
    const sockets = this.drivers.flatMap((d) => d.rec.sockets);
    const usersByTier = { free: 0, basic: 0, pro: 0, elite: 0 };
    for (const user of this.users) usersByTier[user.tier]++;
    const stats: PropertyStats = {
      users: this.users.length,
      usersByTier,
      subscribers: this.drivers.length,
      socketsWelcomed: sockets.filter((s) => s.welcomeT !== undefined).length,
      socketAttemptsRefused: sockets.filter((s) => s.latestSeq === undefined).length,
      resumes: sockets.filter((s) => s.since !== undefined && s.latestSeq !== undefined && !s.viaResume).length,
      resumeMessages: this.stats.resumeMessages,
      serverCuts: sockets.filter((s) => s.closeCode === 4008).length,
      pauses: this.stats.pauses,
      syncItems: this.progress,
      syncRequests: this.stats.syncRequests,
      batches: this.stats.batches,
      versionsStored: this.versions.filter(Boolean).length,
      unchangedAnswers: this.stats.unchanged,
      tierChanges: this.timeline.count(),
      stressReplayed: this.stats.stressReplayed,
      stressCutMidReplay: this.stressCutMidReplay(),
      deliveriesChecked: check.deliveriesChecked,
      premiumDeliveries: check.premiumDeliveries,
      entitledVerified: check.entitledVerified,
      seconds: (now() - this.startedAt) / 1000,
    };
    const violationKinds = Object.entries(check.kinds)
      .map(([kind, count]) => `${count} ${kind}`)
      .join(', ');
    const summary =
      `tier-gating property [${this.label}, ${config.mode}] PROPERTY_SEED=${this.seed}: ` +
      `${stats.users} users (free ${usersByTier.free}, basic ${usersByTier.basic}, pro ${usersByTier.pro}, elite ${usersByTier.elite}), ` +
      `${stats.subscribers} subscribers, ${stats.socketsWelcomed} sockets (${stats.resumes} resumed with since, ${stats.resumeMessages} ` +
      `unsubscribe/resume messages, ${stats.serverCuts} cut as slow consumers, ` +
      `${stats.socketAttemptsRefused} attempts refused), ${stats.pauses} paused readers, ` +
      `${stats.syncItems} syncs in ${stats.syncRequests} requests (${stats.batches} batches; ${stats.versionsStored} versions stored incl. ` +
      `${config.backlog} backlog, ${stats.unchangedAnswers} unchanged), ${stats.tierChanges} tier changes, stress replays of ` +
      `${stats.stressReplayed.join('/')} signals (${stats.stressCutMidReplay} downgraded mid-replay), ${stats.deliveriesChecked} signals delivered checked (${stats.premiumDeliveries} premium), ` +
      `${stats.entitledVerified} entitled versions verified, ${check.violationCount} violations${check.violationCount ? ` (${violationKinds})` : ''}, ${stats.seconds.toFixed(1)} s ` +
      `(${this.phases.join(', ')}, check ${this.lap()}; ${cpuSeconds(process.cpuUsage(this.cpuAtStart))} s CPU in this process)`;
    return {
      seed: this.seed,
      config,
      stats,
      summary,
      violations: check.violations,
      violationCount: check.violationCount,
      violationKinds,
      model,
    };
  }

  /**
   * How many stress replays the downgrade cut mid-way: the socket received premium backlog rows,
   * then none of the later ones its replay covered. When the whole replay fits in the socket
   * buffers (kernel and `ws`) it is over before the downgrade, and the slice proves less.
   */
  private stressCutMidReplay(): number {
    let cut = 0;
    for (const driver of this.drivers.filter((d) => d.rec.stress)) {
      const first = driver.rec.sockets.find((s) => s.since === 0 && s.latestSeq !== undefined);
      if (!first) continue;
      const received = new Set(first.seqs);
      const premium = this.versions.filter(
        (v): v is VersionRec => !!v && v.premium && v.externalId.startsWith('backlog-') && v.seq <= first.latestSeq!,
      );
      const last = premium.reduce((max, v) => (received.has(v.seq) ? Math.max(max, v.seq) : max), 0);
      if (last > 0 && premium.some((v) => v.seq > last && !received.has(v.seq))) cut++;
    }
    return cut;
  }

  /**
   * One admin loop: tier changes at random points of the sync stream. Each loop owns its users, so
   * a user's changes are never in flight together.
   */
  private async changeTiers(index: number, count: number): Promise<void> {
    const rng = this.rng(`tiers-${index}`);
    const mine = this.users.filter((user, i) => !user.stress && i % this.config.tierChangers === index);
    if (mine.length === 0) return;
    const total = this.config.syncs;
    const points = Array.from({ length: count }, () => Math.floor(total * (0.02 + 0.95 * rng.float()))).sort((a, b) => a - b);
    for (const point of points) {
      await this.untilProgress(point);
      if (this.stopped) return;
      await sleep(rng.int(0, 15));
      const user = rng.pick(mine);
      const from = this.timeline.latest(user.id);
      await this.changeTier(user, rng.pick(TIERS.filter((tier) => tier !== from)));
    }
  }

  async changeTier(user: UserRec, tier: Tier): Promise<void> {
    const from = this.timeline.latest(user.id);
    const change: TierChangeRec = { userId: user.id, from, tier, sendT: now(), answerT: Infinity, ok: false };
    this.timeline.add(change);
    const response = await this.api.setTier(user.id, tier);
    change.answerT = now();
    change.ok = response.status === 200 && response.body?.tier === tier;
    if (!change.ok) this.problem(`tier change of ${user.id} to ${tier}: ${response.status} ${JSON.stringify(response.body)}`);
  }

  /** The final marker, then every chain's last socket must receive it. Returns its seq. */
  private async finish(): Promise<number> {
    this.finishing = true;
    const provider = this.providers[0]!;
    const body = markerBody({ external_id: `marker-${this.seed}-final`, ...MARKER, premium: false });
    const sendT = now();
    const response = await this.api.sync(provider.apiKey, body);
    const answerT = now();
    if (response.status !== 201) throw new Error(`final marker sync failed: ${response.status} ${JSON.stringify(response.body)}`);
    const marker = this.record(response.body.signal, sendT, answerT);
    await Promise.all(this.drivers.map((driver) => driver.enqueue(() => driver.awaitSeq(marker.seq))));
    await Promise.all(this.drivers.map((driver) => driver.enqueue(() => driver.closeAll())));
    return marker.seq;
  }
}

function baseBody(rng: Rng, externalId: string, symbol: string, market: string): Body {
  return {
    external_id: externalId,
    symbol,
    market,
    side: rng.pick(SIDES),
    entry: price(rng),
    stop_loss: rng.chance(0.8) ? price(rng) : null,
    take_profits: Array.from({ length: rng.int(0, 3) }, () => price(rng)),
    confidence: rng.int(0, 100),
    timeframe: rng.pick(TIMEFRAMES),
    status: 'active',
    issued_at: '2026-11-21T10:00:00.000Z',
  };
}

const price = (rng: Rng) => `${rng.int(1, 99999)}.${rng.int(1, 9)}`;
/** A note of exactly 2000 characters (the most the service takes), unique by its tag. */
const bigNote = (tag: string) => `${'x'.repeat(2000 - tag.length - 1)}|${tag}`;

/** One stream of syncs for one provider; it owns its signal keys, so each key's syncs are sequential. */
class SyncWorker {
  private readonly rng: Rng;
  private readonly keys: KeyState[] = [];
  private counter = 0;
  private sent = 0;

  constructor(
    private readonly run: PropertyRun,
    private readonly provider: ProviderRec,
    private readonly name: string,
    private readonly quota: number,
  ) {
    this.rng = run.rng(`sync-${name}`);
  }

  async work(): Promise<void> {
    while (this.sent < this.quota && !this.run.isStopped) {
      if (this.run.config.paceMs > 0) await sleep(this.rng.int(0, this.run.config.paceMs));
      const remaining = this.quota - this.sent;
      if (remaining >= 2 && this.rng.chance(0.12)) await this.batch(Math.min(remaining, this.rng.int(2, 12)));
      else await this.single();
    }
  }

  private tag(): string {
    return `${this.run.seed}-${this.name}-${++this.counter}`;
  }

  private note(tag: string): string {
    return this.rng.chance(this.run.config.bigNoteShare) ? bigNote(tag) : `note ${tag}`;
  }

  private choose(exclude: Set<KeyState>): SyncOp {
    const free = this.keys.filter((k) => !exclude.has(k));
    const roll = this.rng.float();
    if (free.length > 0 && roll < 0.3) {
      const key = this.rng.pick(free);
      return { kind: 'amend', key, body: this.amend(key.bodies.at(-1)!) };
    }
    if (free.length > 0 && roll < 0.4) {
      const key = this.rng.pick(free);
      return { kind: 'resend', key, body: key.bodies.at(-1)! };
    }
    const older = free.filter((k) => k.bodies.length >= 2);
    if (older.length > 0 && roll < 0.5) {
      const key = this.rng.pick(older);
      return { kind: 'retry', key, body: this.rng.pick(key.bodies.slice(0, -1)) };
    }
    const tag = this.tag();
    const [symbol, market] = this.rng.pick(SYMBOLS);
    return {
      kind: 'new',
      body: { ...baseBody(this.rng, `sig-${tag}`, symbol, market), note: this.note(tag), premium: this.rng.chance(0.35) },
    };
  }

  private amend(current: Body): Body {
    const next: Body = { ...current, note: this.note(this.tag()) };
    if (this.rng.chance(0.45)) next.premium = !current.premium;
    if (this.rng.chance(0.25)) {
      const [symbol, market] = this.rng.pick(SYMBOLS.filter(([s]) => s !== current.symbol));
      next.symbol = symbol;
      next.market = market;
    }
    if (this.rng.chance(0.4)) next.confidence = this.rng.int(0, 100);
    if (this.rng.chance(0.2)) next.side = this.rng.pick(SIDES);
    if (this.rng.chance(0.1)) next.status = this.rng.pick(['active', 'closed', 'cancelled']);
    return next;
  }

  private async single(): Promise<void> {
    const op = this.choose(new Set());
    const sendT = now();
    const response = await this.run.api.sync(this.provider.apiKey, op.body);
    const answerT = now();
    this.run.stats.syncRequests++;
    this.sent++;
    this.apply(op, response.status, response.body, sendT, answerT);
    this.run.advance(1);
  }

  private async batch(size: number): Promise<void> {
    const used = new Set<KeyState>();
    const ops: SyncOp[] = [];
    for (let i = 0; i < size; i++) {
      const op = this.choose(used);
      if (op.key) used.add(op.key);
      ops.push(op);
    }
    const sendT = now();
    const response = await this.run.api.request('POST', '/api/v1/external-signals/sync/signals', {
      apiKey: this.provider.apiKey,
      body: { signals: ops.map((op) => op.body) },
    });
    const answerT = now();
    this.run.stats.syncRequests++;
    this.run.stats.batches++;
    this.sent += size;
    if (response.status !== 200) {
      this.run.problem(`batch sync answered ${response.status} ${JSON.stringify(response.body)}`);
    } else {
      ops.forEach((op, i) => this.apply(op, response.body.results[i]?.status, response.body.results[i], sendT, answerT));
    }
    this.run.advance(size);
  }

  /** Records what the sync stored and compares the answer with the sync semantics. */
  private apply(op: SyncOp, status: number, body: any, sendT: number, answerT: number): void {
    const what = `${op.kind} of ${op.body.external_id}`;
    const before = op.key ? { version: op.key.version, seq: op.key.seq } : { version: 0, seq: 0 };
    if (!body?.signal || (status !== 200 && status !== 201)) {
      this.run.problem(`sync ${what} answered ${status} ${JSON.stringify(body)}`);
      return;
    }
    const { result, signal } = body;
    if (result === 'unchanged') this.run.stats.unchanged++;
    else {
      this.run.record(signal, sendT, answerT);
      if (signal.seq !== body.seq) this.run.problem(`sync ${what}: answer seq ${body.seq} but signal.seq ${signal.seq}`);
      let key = op.key;
      if (!key) {
        key = { externalId: op.body.external_id, bodies: [], version: 0, seq: 0 };
        this.keys.push(key);
      }
      key.bodies.push(op.body);
      key.version = signal.version;
      key.seq = signal.seq;
      const sent = op.body;
      if (
        signal.symbol !== String(sent.symbol).toUpperCase() ||
        signal.premium !== sent.premium ||
        signal.external_id !== sent.external_id ||
        signal.provider !== this.provider.id ||
        noteSig(signal.note) !== noteSig(sent.note)
      ) {
        this.run.problem(`sync ${what}: answered ${JSON.stringify({ ...signal, note: noteSig(signal.note) })} for a different body`);
      }
    }
    const expected =
      op.kind === 'new'
        ? { status: 201, result: 'created', version: 1 }
        : op.kind === 'amend'
          ? { status: 200, result: 'updated', version: before.version + 1 }
          : { status: 200, result: 'unchanged', version: before.version, seq: before.seq };
    const actual = { status, result, version: signal.version, ...(op.kind === 'resend' || op.kind === 'retry' ? { seq: body.seq } : {}) };
    if (JSON.stringify(actual) !== JSON.stringify(expected)) {
      this.run.problem(`sync ${what}: expected ${JSON.stringify(expected)}, answered ${JSON.stringify(actual)}`);
    }
  }
}

/** Runs `fn` over items with at most `limit` at a time. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i]!, i);
      }
    }),
  );
  return results;
}

const cpuSeconds = ({ user, system }: NodeJS.CpuUsage) => ((user + system) / 1e6).toFixed(1);

function splitEvenly(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)), timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// Sockets

interface Waiter {
  match: (event: ControlMessage | { type: 'signal'; seq: number }) => boolean;
  resolve: (value: any) => void;
}

/** A WsClient with its messages recorded compactly and timed, its TCP socket pausable. */
class LiveSocket {
  closed = false;
  paused = false;
  closingByUs = false;
  private waiters: Waiter[] = [];
  private readonly closedPromise: Promise<void>;
  private readonly tcp: Socket;

  constructor(
    readonly driver: SubscriberDriver,
    /** Replaced by `resumeInPlace`: messages after a `resume` belong to the next link of the chain. */
    public rec: SocketRec,
    readonly client: WsClient,
  ) {
    this.tcp = (client.socket as unknown as { _socket: Socket })._socket;
    client.socket.on('message', () => this.onMessages());
    if (client.messages.length > 0) this.onMessages();
    this.closedPromise = new Promise((resolve) =>
      client.socket.on('close', (code) => {
        this.rec.closeT = now();
        this.rec.closeCode = code;
        this.closed = true;
        for (const waiter of this.waiters) waiter.resolve(CLOSED);
        this.waiters = [];
        resolve();
        driver.onClose(this);
      }),
    );
  }

  private onMessages(): void {
    const t = now();
    // WsClient keeps every message, and this run's large notes would add up to hundreds of MB:
    // keep a compact, timed record instead (WsClient's own listener, registered first, has run).
    for (const message of this.client.messages.splice(0)) this.onMessage(message, t);
  }

  private onMessage(message: any, t: number): void {
    let event: ControlMessage | { type: 'signal'; seq: number };
    if (message.type === 'signal' || message.type === 'signal_update') {
      this.rec.seqs.push(message.seq);
      this.rec.times.push(t);
      this.driver.resumePoint = message.seq;
      this.driver.run.verifyContent(`socket #${this.rec.subscriber}.${this.rec.n}`, message);
      event = { type: 'signal', seq: message.seq };
    } else {
      const { type, id, code, latest_seq, tier, last_seq, count, since, subscribed } = message;
      event = { type, t, id, code, latest_seq, tier, last_seq, count, since, subscribed };
      for (const field of Object.keys(event)) if ((event as any)[field] === undefined) delete (event as any)[field];
      this.rec.control.push(event);
      if (type === 'welcome') {
        this.rec.welcomeT = t;
        this.rec.latestSeq = latest_seq;
        this.rec.welcomeTier = tier;
        if (this.rec.since === undefined) this.driver.resumePoint = latest_seq;
      }
    }
    this.waiters = this.waiters.filter((waiter) => {
      if (!waiter.match(event)) return true;
      waiter.resolve(event);
      return false;
    });
  }

  send(body: unknown): void {
    this.client.send(body);
  }

  /** Sends `resume` (the socket is idle after `unsubscribe`): what follows is a new link of the chain. */
  resumeInPlace(since: number, id: string): void {
    const next = this.driver.newSocketRec(since, false);
    next.viaResume = true;
    next.latestSeq = Number.POSITIVE_INFINITY;
    this.rec = next;
    this.send({ type: 'resume', id, since });
  }

  pause(): void {
    if (this.closed || this.paused) return;
    this.paused = true;
    this.tcp.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.tcp.resume();
  }

  /** The first control message matching, already received or future; CLOSED if the socket closes first. */
  waitControl(match: (m: ControlMessage) => boolean, timeoutMs: number, what: string): Promise<ControlMessage | Closed> {
    const found = this.rec.control.find(match);
    if (found) return Promise.resolve(found);
    return this.wait((event) => event.type !== 'signal' && match(event as ControlMessage), timeoutMs, what);
  }

  /** Resolves once a signal at or above `seq` arrived; CLOSED if the socket closes first. */
  waitSeq(seq: number, timeoutMs: number, what: string): Promise<unknown> {
    if ((this.rec.seqs.at(-1) ?? -1) >= seq) return Promise.resolve(true);
    return this.wait((event) => event.type === 'signal' && (event as { seq: number }).seq >= seq, timeoutMs, what);
  }

  private wait(match: Waiter['match'], timeoutMs: number, what: string): Promise<any> {
    if (this.closed) return Promise.resolve(CLOSED);
    return withTimeout(
      new Promise((resolve) => this.waiters.push({ match, resolve })),
      timeoutMs,
      `socket #${this.rec.subscriber}.${this.rec.n}: ${what}`,
    );
  }

  /** A normal close from the client; waits for it. */
  async close(): Promise<void> {
    this.closingByUs = true;
    this.rec.closedByUs = true;
    this.resume();
    if (this.closed) return;
    this.client.socket.close();
    await withTimeout(this.closedPromise, 10_000, `socket #${this.rec.subscriber}.${this.rec.n}: close`).catch(() => {
      this.client.socket.terminate();
      return this.closedPromise;
    });
  }

  /** An abrupt disconnect (no close handshake). */
  async drop(): Promise<void> {
    this.closingByUs = true;
    this.rec.closedByUs = true;
    this.paused = false;
    if (this.closed) return;
    this.client.socket.terminate();
    await this.closedPromise;
  }
}

type Action = {
  at: number;
  kind: 'reconnect' | 'drop' | 'pause' | 'slowReplay' | 'idleResume';
  away: number;
  holdMs: number;
  readAfterMs: number;
};

/** Drives one logical subscriber: its actions run one at a time, as does its recovery from closes. */
class SubscriberDriver {
  current?: LiveSocket;
  /** The last seq this chain received, or the first socket's welcome.latest_seq: the next `since`. */
  resumePoint?: number;
  private queue: Promise<void> = Promise.resolve();
  private readonly rng: Rng;
  /** Reconnect delays: drawn as often as the server closes sockets, so apart from the planned actions. */
  private readonly jitter: Rng;
  private socketCount = 0;

  constructor(
    readonly run: PropertyRun,
    readonly rec: SubscriberRec,
    private readonly user: UserRec,
  ) {
    this.rng = run.rng(`subscriber-${rec.n}`);
    this.jitter = run.rng(`subscriber-${rec.n}-jitter`);
  }

  /** Runs `op` after everything queued before; a failure fails the run. */
  enqueue(op: () => Promise<void>): Promise<void> {
    const result = this.queue.then(op);
    this.queue = result.catch(() => undefined);
    return result;
  }

  abandon(): void {
    this.current?.client.socket.terminate();
  }

  async start(): Promise<void> {
    await this.open(undefined);
  }

  private url(since: number | undefined): string {
    const url = new URL(this.run.app.wsUrl);
    const { filter } = this.rec;
    if (filter && (this.rec.filterMode === 'url' || since !== undefined)) {
      for (const name of ['symbols', 'markets', 'providers', 'sides'] as const) {
        if (filter[name]) url.searchParams.set(name, filter[name].join(','));
      }
      if (filter.min_confidence !== undefined) url.searchParams.set('min_confidence', String(filter.min_confidence));
    }
    return url.toString();
  }

  /**
   * Opens the chain's next socket: fresh (the chain's first) or resuming with `?since=`. Retries
   * refused attempts (4529 while the server still counts a socket that just closed, ...).
   */
  private async open(since: number | undefined, pauseAtOpen = false): Promise<LiveSocket> {
    for (let attempt = 1; ; attempt++) {
      if (attempt > 40 || this.run.isStopped) throw new Error(`subscriber #${this.rec.n}: no socket after ${attempt - 1} attempts`);
      const rec = this.newSocketRec(since, pauseAtOpen);
      let client: WsClient;
      try {
        client = await withTimeout(WsClient.open(this.url(since), { token: this.user.token, since }), 15_000, 'upgrade');
      } catch (error) {
        rec.failure = (error as Error).message;
        await sleep(50 * attempt);
        continue;
      }
      const live = new LiveSocket(this, rec, client);
      this.current = live;
      if (pauseAtOpen) {
        this.run.stats.pauses++;
        live.pause();
        return live;
      }
      const welcome = await live.waitControl((m) => m.type === 'welcome', 20_000, 'welcome');
      if (welcome === CLOSED) {
        rec.failure = `closed with ${rec.closeCode} before the welcome`;
        await sleep(50 * attempt);
        continue;
      }
      if (this.rec.filterMode === 'subscribe' && since === undefined) {
        live.send({ type: 'subscribe', id: 'filter', filters: this.rec.filter });
        const ack = await live.waitControl((m) => m.id === 'filter', 20_000, 'subscribe ack');
        if (ack !== CLOSED) {
          if (ack.type !== 'ack' || ack.subscribed !== true)
            this.run.problem(`subscriber #${this.rec.n}: subscribe answered ${JSON.stringify(ack)}`);
          else rec.ackT = ack.t;
        }
      }
      return live;
    }
  }

  newSocketRec(since: number | undefined, pausedAtOpen: boolean): SocketRec {
    const rec: SocketRec = {
      n: ++this.socketCount,
      subscriber: this.rec.n,
      userId: this.rec.userId,
      since,
      openT: now(),
      seqs: [],
      times: [],
      control: [],
      closedByUs: false,
      pausedAtOpen,
    };
    this.rec.sockets.push(rec);
    return rec;
  }

  /** Resumes the chain from its last seq. */
  private reopen(pauseAtOpen = false): Promise<LiveSocket> {
    return this.open(this.resumePoint!, pauseAtOpen);
  }

  /** A socket closed: unless we closed it, the subscriber reconnects with `?since=`. */
  onClose(live: LiveSocket): void {
    if (live.closingByUs || this.run.isStopped) return;
    void this.enqueue(async () => {
      if (this.current !== live) return;
      await sleep(this.jitter.int(10, 150));
      if (this.current === live) await this.reopen();
    }).catch((error: Error) => this.run.problem(`subscriber #${this.rec.n}: reconnect failed: ${error.message}`));
  }

  private async ensureOpen(): Promise<LiveSocket> {
    while (!this.current || this.current.closed) await this.reopen();
    return this.current;
  }

  /** The random actions, at random points of the sync stream. */
  async drive(): Promise<void> {
    const { config } = this.run;
    const total = config.syncs;
    const count = this.rng.int(...config.actionsPerSubscriber);
    const actions: Action[] = Array.from({ length: count }, (): Action => ({
      at: Math.floor(total * (0.03 + 0.92 * this.rng.float())),
      kind: this.rng.pick(['reconnect', 'reconnect', 'drop', 'pause', 'pause', 'slowReplay', 'slowReplay', 'idleResume'] as const),
      away: Math.floor(total * 0.05 * this.rng.float()),
      holdMs: this.rng.int(100, 2500),
      readAfterMs: this.rng.int(100, 1500),
    })).sort((a, b) => a.at - b.at);
    for (const action of actions) {
      await this.run.untilProgress(action.at);
      if (this.run.finishing) return;
      await this.enqueue(() => this.perform(action));
    }
  }

  private async perform(action: Action): Promise<void> {
    const live = await this.ensureOpen();
    const away = () => this.run.untilProgress(this.run.progress + action.away, action.holdMs);
    switch (action.kind) {
      case 'reconnect':
        await live.close();
        await away();
        await this.reopen();
        return;
      case 'drop':
        await live.drop();
        await away();
        await this.reopen();
        return;
      case 'pause':
        this.run.stats.pauses++;
        live.pause();
        await away();
        live.resume();
        return;
      case 'slowReplay': {
        // Away for a while, then resume with a reader that does not read at first.
        await live.close();
        await this.run.untilProgress(this.run.progress + 2 * action.away, 2 * action.holdMs);
        const next = await this.reopen(true);
        await sleep(action.readAfterMs);
        next.resume();
        return;
      }
      case 'idleResume': {
        // `unsubscribe`, away for a while, then `resume` on the same socket (after its replay, if any).
        if (!(await this.replayDone(live))) return;
        const id = `a${action.at}`;
        live.send({ type: 'unsubscribe', id: `${id}-off` });
        const off = await live.waitControl((m) => m.id === `${id}-off`, 20_000, 'unsubscribe ack');
        if (off === CLOSED) return;
        if (off.type !== 'ack' || off.subscribed !== false)
          this.run.problem(`subscriber #${this.rec.n}: unsubscribe answered ${JSON.stringify(off)}`);
        await away();
        if (live.closed) return;
        this.run.stats.resumeMessages++;
        live.resumeInPlace(this.resumePoint!, `${id}-on`);
        await this.replayDone(live);
        return;
      }
    }
  }

  /** Waits until the socket's current link has finished its replay, if it has one; false if it closed. */
  private async replayDone(live: LiveSocket): Promise<boolean> {
    if (live.rec.since === undefined) return !live.closed;
    const done = await live.waitControl((m) => m.type === 'replay_complete' || m.type === 'resync_required', 60_000, 'replay');
    return done !== CLOSED;
  }

  /**
   * The deterministic slice, in every run: a pro (or elite) user resumes from seq 0 with a reader
   * that does not read, so the replay of the large backlog stalls mid-way; the user is downgraded
   * (answered), premium and regular signals are synced, then the reader reads. Nothing premium
   * synced after the downgrade may arrive, and every regular signal must.
   */
  async stressSlice(index: number, of: number): Promise<void> {
    const total = this.run.config.syncs;
    await this.run.untilProgress(Math.floor(total * (0.02 + (0.9 * index) / Math.max(1, of))));
    if (this.run.finishing) return;
    await this.enqueue(async () => {
      this.resumePoint = 0;
      const live = await this.open(0, true);
      await sleep(1_000);
      await this.run.changeTier(this.user, this.user.tier === 'elite' ? 'basic' : 'free');
      await this.syncSlice(index);
      await sleep(200);
      live.resume();
      const done = await live.waitControl((m) => m.type === 'replay_complete' || m.type === 'resync_required', 90_000, 'stress replay');
      if (done !== CLOSED && typeof done.count === 'number') this.run.stats.stressReplayed.push(done.count);
      await this.ensureOpen();
    });
  }

  private async syncSlice(index: number): Promise<void> {
    const rng = this.run.rng(`slice-${index}`);
    const provider = this.run.providers[0]!;
    for (let i = 0; i < 8; i++) {
      const [symbol, market] = rng.pick(SYMBOLS);
      const tag = `slice-${this.run.seed}-${index}-${i}`;
      const body = { ...baseBody(rng, tag, symbol, market), note: `note ${tag}`, premium: i < 6 };
      const sendT = now();
      const response = await this.run.api.sync(provider.apiKey, body);
      const answerT = now();
      if (response.status !== 201) throw new Error(`slice sync failed: ${response.status} ${JSON.stringify(response.body)}`);
      this.run.record(response.body.signal, sendT, answerT);
    }
  }

  /** The end: this chain receives the final marker, reconnecting if its socket closes. */
  async awaitSeq(seq: number): Promise<void> {
    for (let round = 0; round < 20; round++) {
      if ((this.resumePoint ?? -1) >= seq) return;
      const live = await this.ensureOpen();
      live.resume();
      await live.waitSeq(seq, 90_000, `final marker seq ${seq}`);
    }
    throw new Error(`subscriber #${this.rec.n}: never received the final marker ${seq}`);
  }

  async closeAll(): Promise<void> {
    await this.current?.close();
  }
}
