import { expect } from 'vitest';
import WebSocket from 'ws';
import {
  ProviderClient,
  SignalcastClient,
  type ClientOptions,
  type ConnectionState,
  type Signal,
  type SignalInput,
  type StateChange,
} from '@signalcast/client';
import { signalBody } from './clients.js';
import { waitFor } from './processes.js';

/**
 * The client SDK as a user runs it (`@signalcast/client`, the built package), with `ws` as its
 * WebSocket (Node 20 has no global one), recording everything its handlers saw.
 */

/** `ws`, counting the sockets the SDK constructs. */
export function countingWebSocket(): { WebSocket: ClientOptions['WebSocket'] & object; constructed: () => number } {
  let constructed = 0;
  class Counting extends WebSocket {
    constructor(url: string) {
      super(url);
      constructed++;
    }
  }
  return { WebSocket: Counting as unknown as NonNullable<ClientOptions['WebSocket']>, constructed: () => constructed };
}

export class RecordingClient {
  readonly client: SignalcastClient;
  readonly seen: Signal[] = [];
  readonly states: StateChange[] = [];
  readonly errors: { code: string; message: string }[] = [];
  readonly sockets: ReturnType<typeof countingWebSocket>;

  constructor(options: Omit<ClientOptions, 'WebSocket'>) {
    this.sockets = countingWebSocket();
    this.client = new SignalcastClient({ backoff: { minMs: 50, maxMs: 400 }, ...options, WebSocket: this.sockets.WebSocket });
    this.client.on('signal', (signal) => this.seen.push(signal));
    this.client.on('state', (state) => this.states.push(state));
    this.client.on('error', (error) => this.errors.push({ code: error.code, message: error.message }));
  }

  /** Connects and waits for `live`; the position it starts from is the welcome's `latest_seq`. */
  async start(timeoutMs = 10_000): Promise<number> {
    this.client.connect();
    await this.reach('live', timeoutMs);
    return this.client.lastSeq!;
  }

  reach(state: ConnectionState, timeoutMs = 10_000): Promise<boolean> {
    return waitFor(
      () => this.client.state === state,
      timeoutMs,
      `client never reached ${state} (states: ${this.stateNames()}; errors: ${JSON.stringify(this.errors)})`,
    );
  }

  /** Waits until the handlers saw this (id, version). */
  waitForVersion(id: string, version: number, timeoutMs = 15_000): Promise<boolean> {
    return waitFor(
      () => this.seen.some((signal) => signal.id === id && signal.version === version),
      timeoutMs,
      `never saw ${id} v${version} (state ${this.client.state}; states: ${this.stateNames()}; errors: ${JSON.stringify(this.errors)})`,
    );
  }

  stateNames(): string {
    return this.states.map((change) => `${change.state}${change.code ? `(${change.code})` : ''}`).join(' > ');
  }
}

/** Syncs through the SDK's provider helper and keeps what the service answered. */
export class StoredSignals {
  readonly versions: { seq: number; id: string; version: number; premium: boolean }[] = [];
  readonly provider: ProviderClient;

  constructor(url: string, apiKey: string) {
    this.provider = new ProviderClient({ url, apiKey, retry: { minMs: 50, maxMs: 500, maxElapsedMs: 60_000 } });
  }

  async sync(overrides: Record<string, unknown> = {}): Promise<Signal> {
    const answer = await this.provider.sync(signalBody(overrides) as unknown as SignalInput);
    if (answer.result !== 'unchanged')
      this.versions.push({ seq: answer.seq, id: answer.signal.id, version: answer.signal.version, premium: answer.signal.premium });
    return answer.signal;
  }

  async syncMany(count: number, overrides: (index: number) => Record<string, unknown> = () => ({})): Promise<Signal[]> {
    const signals: Signal[] = [];
    for (let start = 0; start < count; start += 100) {
      const items = Array.from(
        { length: Math.min(100, count - start) },
        (_unused, offset) => signalBody(overrides(start + offset)) as unknown as SignalInput,
      );
      for (const result of await this.provider.syncMany(items)) {
        if (!('signal' in result)) throw new Error(`sync failed: ${JSON.stringify(result)}`);
        if (result.result !== 'unchanged')
          this.versions.push({ seq: result.seq, id: result.signal.id, version: result.signal.version, premium: result.signal.premium });
        signals.push(result.signal);
      }
    }
    return signals;
  }
}

/**
 * Exactly once, in order: seq strictly increasing; never the same (id, version) twice, never a
 * version below one delivered; and every signal stored after `fromSeq` that the user may see
 * arrived as its latest version (a replay sends current states, so intermediate versions may be
 * skipped, never the latest).
 */
export function expectExactlyOnce(
  recorder: RecordingClient,
  stored: StoredSignals,
  fromSeq: number,
  maySee: (version: { premium: boolean }) => boolean = () => true,
): void {
  const seqs = recorder.seen.map((signal) => signal.seq);
  expect(seqs, 'seq strictly increasing').toEqual([...new Set(seqs)].sort((a, b) => a - b));
  const held = new Map<string, number>();
  for (const signal of recorder.seen) {
    expect(signal.version, `${signal.id} went from v${held.get(signal.id)} to v${signal.version}`).toBeGreaterThan(
      held.get(signal.id) ?? 0,
    );
    held.set(signal.id, signal.version);
  }
  const latest = new Map<string, number>();
  for (const version of stored.versions) {
    if (version.seq > fromSeq && maySee(version)) latest.set(version.id, Math.max(latest.get(version.id) ?? 0, version.version));
  }
  expect(Object.fromEntries(held)).toEqual(Object.fromEntries(latest));
}
