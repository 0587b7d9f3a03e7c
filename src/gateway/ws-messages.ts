import { z } from 'zod';
import type { Tier } from '../generated/prisma/enums.js';
import { signalFilterSchema } from '../signals/signal-filter.js';
import type { SignalView } from '../signals/signal.types.js';

export type RequestId = string | number;

/** Error codes carried by `{"type":"error"}` messages. */
export type WsErrorCode =
  | 'malformed_message'
  | 'unknown_type'
  | 'binary_not_supported'
  | 'invalid_request'
  | 'rate_limited'
  | 'invalid_token'
  | 'token_user_mismatch'
  | 'replay_in_progress'
  | 'internal_error';

/** Every message the server sends, by type. `encode` accepts only these. */
export interface ServerMessageMap {
  welcome: { user_id: string; tier: Tier; server_time: string; latest_seq: number; token_expires_at: string | null };
  signal: SignalView;
  signal_update: SignalView;
  pong: { id?: RequestId };
  ack: { id?: RequestId; filters?: Record<string, unknown>; subscribed?: boolean; token_expires_at?: string };
  replay_complete: { id?: RequestId; last_seq: number; count: number };
  resync_required: { id?: RequestId; since: number; latest_seq: number; max_replay: number };
  token_expiring: { expires_at: string };
  reconnect: { reason: 'shutdown' | 'max_lifetime' };
  error: { code: WsErrorCode; message: string; field?: string; id?: RequestId };
}

export function encode<K extends keyof ServerMessageMap>(type: K, body: ServerMessageMap[K]): string {
  return JSON.stringify({ type, ...body });
}

const id = z.union([z.string().max(128), z.number()]).optional();

/** Every request a client may send, validated by its `type`. */
export const clientRequestSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ping'), id }),
  z.strictObject({ type: z.literal('subscribe'), id, filters: signalFilterSchema.optional() }),
  z.strictObject({ type: z.literal('unsubscribe'), id }),
  z.strictObject({ type: z.literal('resume'), id, since: z.number().int().min(0) }),
  z.strictObject({ type: z.literal('auth'), id, token: z.string().min(1).max(8192) }),
  /** A delivery receipt: every signal sent up to `seq` was processed. Cumulative; never answered. */
  z.strictObject({
    type: z.literal('received'),
    id,
    seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    /** How long the client held this receipt after processing `seq` (the SDK batches receipts in a burst). */
    held_ms: z.number().int().min(0).max(60_000).optional(),
  }),
]);

export type ClientRequest = z.output<typeof clientRequestSchema>;
export const CLIENT_REQUEST_TYPES = new Set(['ping', 'subscribe', 'unsubscribe', 'resume', 'auth', 'received']);

export type ParsedFrame =
  { ok: true; request: ClientRequest } | { ok: false; code: WsErrorCode; message: string; field?: string; id?: RequestId };

/** Parses and validates one client frame. */
export function parseClientFrame(data: Buffer, isBinary: boolean): ParsedFrame {
  if (isBinary) return { ok: false, code: 'binary_not_supported', message: 'Send JSON text frames' };
  let value: unknown;
  try {
    value = JSON.parse(data.toString('utf8'));
  } catch {
    return { ok: false, code: 'malformed_message', message: 'Frame is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, code: 'malformed_message', message: 'Expected a JSON object with a "type" field' };
  }
  const raw = value as { type?: unknown; id?: unknown };
  const requestId = typeof raw.id === 'string' || typeof raw.id === 'number' ? raw.id : undefined;
  if (typeof raw.type !== 'string') {
    return { ok: false, code: 'malformed_message', message: 'Missing string field "type"', id: requestId };
  }
  if (!CLIENT_REQUEST_TYPES.has(raw.type)) {
    return { ok: false, code: 'unknown_type', message: `Unknown message type "${raw.type}"`, id: requestId };
  }
  const parsed = clientRequestSchema.safeParse(value);
  if (parsed.success) return { ok: true, request: parsed.data };
  const issue = parsed.error.issues[0]!;
  const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
  const field = path.map(String).join('.') || 'type';
  return {
    ok: false,
    code: 'invalid_request',
    message: `${field}: ${issue.code === 'unrecognized_keys' ? 'unknown field' : issue.message}`,
    field,
    id: requestId,
  };
}

const RECEIPT_PREFIX = Buffer.from('{"type":"received","seq":');
const HELD_KEY = Buffer.from(',"held_ms":');
const ZERO = 0x30;
const NINE = 0x39;
const CLOSE_BRACE = 0x7d;

/** Reads the digits at `at` as a non-negative integer of at most 15 digits (no leading zero); the index after them. */
function digitsAt(data: Buffer, at: number): { value: number; end: number } | undefined {
  let end = at;
  let value = 0;
  while (end < data.length && data[end]! >= ZERO && data[end]! <= NINE && end - at < 15) value = value * 10 + data[end++]! - ZERO;
  if (end === at || (data[at] === ZERO && end - at > 1)) return undefined;
  return { value, end };
}

/**
 * A delivery receipt exactly as the SDK writes it, `{"type":"received","seq":N}` or with
 * `,"held_ms":M` after the seq, read from the bytes without JSON.parse or the schema: clients send
 * one per signal, as many as the server sends. Anything else (another order, spaces, an `id`)
 * returns undefined and goes through `parseClientFrame`, which gives the same answer slower.
 */
export function parseReceiptFrame(data: Buffer): { seq: number; heldMs: number } | undefined {
  if (
    data.length > 64 ||
    data.length < RECEIPT_PREFIX.length + 2 ||
    data.compare(RECEIPT_PREFIX, 0, RECEIPT_PREFIX.length, 0, RECEIPT_PREFIX.length) !== 0
  ) {
    return undefined;
  }
  const seq = digitsAt(data, RECEIPT_PREFIX.length);
  if (!seq) return undefined;
  if (seq.end === data.length - 1 && data[seq.end] === CLOSE_BRACE) return { seq: seq.value, heldMs: 0 };
  if (seq.end + HELD_KEY.length > data.length || data.compare(HELD_KEY, 0, HELD_KEY.length, seq.end, seq.end + HELD_KEY.length) !== 0) {
    return undefined;
  }
  const held = digitsAt(data, seq.end + HELD_KEY.length);
  if (!held || held.value > 60_000 || held.end !== data.length - 1 || data[held.end] !== CLOSE_BRACE) return undefined;
  return { seq: seq.value, heldMs: held.value };
}
