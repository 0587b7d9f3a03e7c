import type { Tier } from '../generated/prisma/enums.js';
import type { SignalView } from '../signals/signal.types.js';

/** Error codes carried by `{"type":"error"}` messages. */
export type WsErrorCode = 'malformed_message' | 'unknown_type' | 'binary_not_supported';

/** Every message the server sends, by type. `send` accepts only these. */
export interface ServerMessageMap {
  welcome: { user_id: string; tier: Tier; server_time: string; latest_seq: number };
  signal: SignalView;
  signal_update: SignalView;
  pong: { id?: string | number };
  error: { code: WsErrorCode; message: string; id?: string | number };
}

export type ServerMessage = { [K in keyof ServerMessageMap]: { type: K } & ServerMessageMap[K] }[keyof ServerMessageMap];

export function encode<K extends keyof ServerMessageMap>(type: K, body: ServerMessageMap[K]): string {
  return JSON.stringify({ type, ...body });
}

export interface ClientRequest {
  type: string;
  id?: string | number;
}

/** Parses a client frame; a string result is an error message to send back. */
export function parseClientRequest(data: Buffer, isBinary: boolean): ClientRequest | { error: WsErrorCode; message: string } {
  if (isBinary) return { error: 'binary_not_supported', message: 'Send JSON text frames' };
  let value: unknown;
  try {
    value = JSON.parse(data.toString('utf8'));
  } catch {
    return { error: 'malformed_message', message: 'Frame is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { error: 'malformed_message', message: 'Expected a JSON object with a "type" field' };
  }
  const { type, id } = value as { type?: unknown; id?: unknown };
  const validId = typeof id === 'string' || typeof id === 'number' ? id : undefined;
  if (typeof type !== 'string') return { error: 'malformed_message', message: 'Missing string field "type"' };
  return { type, id: validId };
}
