import type { Api, WsClient } from './clients.js';
import { signToken } from './test-app.js';

/**
 * The test's own record of what the service stored (from the sync answers), and the oracle that
 * says what each subscriber was entitled to. Independent of the service's code on purpose: tier
 * and filter rules are restated here from docs/protocol.md.
 */

export type Tier = 'free' | 'basic' | 'pro' | 'elite';

export interface Filter {
  symbols?: string[];
  markets?: string[];
  sides?: string[];
  minConfidence?: number;
}

/** A provider user (created through the admin API) and a fresh API key for it. */
export async function createProvider(api: Api): Promise<{ id: string; apiKey: string }> {
  const user = await createUser(api, 'free', 'provider');
  const key = await api.request('POST', `/api/v1/admin/users/${user.id}/api-keys`, { token: await api.admin() });
  if (key.status !== 201) throw new Error(`create key failed: ${key.status} ${JSON.stringify(key.body)}`);
  return { id: user.id, apiKey: key.body.key };
}

/** A filter as `?symbols=…&min_confidence=…` for the socket URL. */
export function filterQuery(filter: Filter | undefined): string {
  if (!filter) return '';
  const params = new URLSearchParams();
  if (filter.symbols) params.set('symbols', filter.symbols.join(','));
  if (filter.markets) params.set('markets', filter.markets.join(','));
  if (filter.sides) params.set('sides', filter.sides.join(','));
  if (filter.minConfidence !== undefined) params.set('min_confidence', String(filter.minConfidence));
  const text = params.toString();
  return text ? `?${text}` : '';
}

export interface StoredVersion {
  seq: number;
  externalId: string;
  version: number;
  signal: Record<string, any>;
}

export function mayReceive(tier: Tier, filter: Filter | undefined, signal: Record<string, any>): boolean {
  if (signal.premium && tier !== 'pro' && tier !== 'elite') return false;
  if (!filter) return true;
  return (
    (!filter.symbols || filter.symbols.includes(signal.symbol)) &&
    (!filter.markets || filter.markets.includes(signal.market)) &&
    (!filter.sides || filter.sides.includes(signal.side)) &&
    (filter.minConfidence === undefined || signal.confidence >= filter.minConfidence)
  );
}

let users = 0;
/**
 * A user created through the admin API, with an access token signed as the service signs them
 * (same secret): one password hash instead of two, which matters on a shared 2-core machine.
 */
export async function createUser(api: Api, tier: Tier, role = 'subscriber'): Promise<{ id: string; email: string; token: string }> {
  const email = `fault-${role}-${tier}-${process.pid}-${++users}-${Date.now()}@test.signalcast`;
  const created = await api.request('POST', '/api/v1/admin/users', {
    token: await api.admin(),
    body: { email, password: 'user-password-123', role, tier },
  });
  if (created.status !== 201) throw new Error(`create user failed: ${created.status} ${JSON.stringify(created.body)}`);
  return { id: created.body.id, email, token: signToken(created.body.id, role, 3600) };
}

const isMarker = (signal: Record<string, any>) => signal.note === 'flush';

/** Every stored version, by seq, as the sync answers reported them. */
export class Ledger {
  readonly bySeq = new Map<number, StoredVersion>();

  /**
   * Records a sync answer (201 created / 200 updated; an `unchanged` answer stores nothing new,
   * unless `stored`: the retry of a sync that was answered 503 but committed reports the version
   * that the first attempt stored).
   */
  record(body: { result: string; seq: number; signal: Record<string, any> }, stored = false): void {
    if (body.result === 'unchanged' && !stored) return;
    const existing = this.bySeq.get(body.seq);
    if (existing) {
      throw new Error(
        `two sync answers with seq ${body.seq}: ${existing.externalId} v${existing.version} and ${body.signal.external_id} v${body.signal.version}`,
      );
    }
    this.bySeq.set(body.seq, { seq: body.seq, externalId: body.signal.external_id, version: body.signal.version, signal: body.signal });
  }

  /** Stored versions (markers excluded) after `afterSeq` that this tier and filter may receive, in seq order. */
  entitled(tier: Tier, filter: Filter | undefined, afterSeq: number): StoredVersion[] {
    return [...this.bySeq.values()]
      .filter((v) => v.seq > afterSeq && !isMarker(v.signal) && mayReceive(tier, filter, v.signal))
      .sort((a, b) => a.seq - b.seq);
  }

  /** The seqs recorded, sorted. */
  seqs(): number[] {
    return [...this.bySeq.keys()].sort((a, b) => a - b);
  }
}

/** One socket of a logical subscriber, and where it started. */
export interface SocketLeg {
  client: WsClient;
  /** `?since=` it was opened with (a resume), or undefined for a fresh socket. */
  since?: number;
  instance: string;
}

interface Received {
  leg: number;
  index: number;
  message: Record<string, any>;
}

/**
 * One subscriber as a client application sees it: a user, a filter, and the sockets it had one
 * after the other (a fresh one, then a resume after each loss).
 */
export class LogicalSubscriber {
  readonly legs: SocketLeg[] = [];
  reconnectAttempts = 0;

  constructor(
    readonly name: string,
    readonly tier: Tier,
    readonly token: string,
    readonly filter?: Filter,
  ) {}

  get current(): SocketLeg {
    return this.legs.at(-1)!;
  }

  /** The seq the subscriber has processed up to: what a resume must start after. */
  processedSeq(): number {
    const leg = this.current;
    const welcome = leg.client.messages.find((m) => m.type === 'welcome');
    const baseline = leg.since ?? welcome?.latest_seq ?? 0;
    const last = leg.client.signals().at(-1)?.seq ?? 0;
    return Math.max(baseline, last);
  }

  /** The seq after which the subscriber was promised everything: its first welcome's `latest_seq`. */
  startSeq(): number {
    const first = this.legs[0]!.client.messages.find((m) => m.type === 'welcome');
    if (!first) throw new Error(`${this.name}: no welcome on the first socket`);
    return first.latest_seq;
  }

  private received(): Received[] {
    return this.legs.flatMap((leg, legIndex) =>
      leg.client.messages
        .map((message, index) => ({ leg: legIndex, index, message }))
        .filter(({ message }) => (message.type === 'signal' || message.type === 'signal_update') && !isMarker(message)),
    );
  }

  /** Signals received over all legs (markers excluded). */
  receivedCount(): number {
    return this.received().length;
  }

  /**
   * Problems (empty when correct) with what this subscriber received, against the ledger:
   * - every message is a stored version (same seq, external_id, version, content), of the right
   *   type (`signal` for version 1, `signal_update` after), that the tier and filter allow;
   * - seqs strictly increase over all legs (so nothing is received twice, and the order holds);
   * - every entitled version was received, except one that a resume may collapse: a version
   *   after that resume's `since` and at or below the resumed socket's welcome `latest_seq` (the
   *   replay's reach), of a signal of which a later version reached that same resumed socket
   *   (the replay sends current state), whose replay completed.
   *   With no resume, nothing may be missing. The latest version of every signal is never
   *   collapsed, so it must always have arrived.
   */
  problems(ledger: Ledger): string[] {
    const problems: string[] = [];
    const received = this.received();
    let previous = -1;
    for (const { leg, message } of received) {
      const where = `${this.name} leg ${leg} seq ${message.seq}`;
      if (!(message.seq > previous)) problems.push(`${where}: out of order or duplicate (after ${previous})`);
      previous = Math.max(previous, message.seq);
      const stored = ledger.bySeq.get(message.seq);
      if (!stored) {
        problems.push(`${where}: not a stored version (${message.external_id} v${message.version})`);
        continue;
      }
      if (stored.externalId !== message.external_id || stored.version !== message.version) {
        problems.push(`${where}: is ${message.external_id} v${message.version}, stored as ${stored.externalId} v${stored.version}`);
      }
      for (const field of ['symbol', 'side', 'confidence', 'premium', 'stop_loss', 'note', 'entry', 'provider'] as const) {
        if (JSON.stringify(stored.signal[field]) !== JSON.stringify(message[field])) {
          problems.push(`${where}: ${field} ${JSON.stringify(message[field])}, stored ${JSON.stringify(stored.signal[field])}`);
        }
      }
      const expectedType = stored.version > 1 ? 'signal_update' : 'signal';
      if (message.type !== expectedType) problems.push(`${where}: type ${message.type} for version ${stored.version}`);
      if (!mayReceive(this.tier, this.filter, stored.signal))
        problems.push(`${where}: not entitled (${this.tier}, filter ${filterQuery(this.filter)})`);
    }

    const got = new Set(received.map((r) => r.message.seq));
    for (const missing of ledger.entitled(this.tier, this.filter, this.startSeq())) {
      if (got.has(missing.seq)) continue;
      const collapsedBy = this.legs.some((leg, legIndex) => {
        if (leg.since === undefined || missing.seq <= leg.since) return false;
        // The replay reads stored state up to what the instance had delivered when it began,
        // which is the resumed socket's welcome `latest_seq`; anything newer reaches the socket
        // as it is delivered, version by version, so only up to there can be collapsed.
        const welcome = leg.client.messages.find((m) => m.type === 'welcome');
        const complete = leg.client.messages.find((m) => m.type === 'replay_complete');
        if (!welcome || !complete || missing.seq > welcome.latest_seq) return false;
        return received.some(
          (r) => r.leg === legIndex && r.message.external_id === missing.externalId && r.message.version > missing.version,
        );
      });
      if (!collapsedBy) problems.push(`${this.name}: missing seq ${missing.seq} (${missing.externalId} v${missing.version})`);
    }
    return problems;
  }

  /** How many entitled versions were legitimately collapsed by a replay (for the report). */
  collapsedCount(ledger: Ledger): number {
    const got = new Set(this.received().map((r) => r.message.seq));
    return ledger.entitled(this.tier, this.filter, this.startSeq()).filter((v) => !got.has(v.seq)).length;
  }
}
