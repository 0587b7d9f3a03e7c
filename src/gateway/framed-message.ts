import * as ws from 'ws';
import type { WebSocket } from 'ws';

/** `ws` exports its frame builder at runtime; its type definitions do not declare it. */
const { Sender } = ws as unknown as {
  Sender: { frame(data: Buffer, options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }): Buffer[] };
};

/** A message serialized and framed once, written as the same bytes to every socket. */
export interface FramedMessage {
  /** The JSON text, for the fallback path. */
  payload: Buffer;
  /** A complete unmasked text frame: header and payload in one buffer, one write per socket. */
  frame: Buffer;
}

export function frameText(json: string): FramedMessage {
  const payload = Buffer.from(json);
  const [header, data] = Sender.frame(payload, { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false });
  return { payload, frame: data ? Buffer.concat([header!, data]) : header! };
}

interface NetSocket {
  write(chunk: Buffer): boolean;
  cork(): void;
  uncork(): void;
  writable: boolean;
}

/** The parts of `ws` internals the fast path relies on (ws 8: Sender state 0 means idle). */
interface WsInternals {
  _socket?: NetSocket;
  _sender?: { _state?: number };
}

/**
 * Write coalescing: the first write to a socket in a turn of the event loop corks it, and all
 * corked sockets are uncorked together right after. A burst of signals delivered in one turn then
 * leaves each socket as one `writev` instead of one syscall per frame; each frame is still its
 * own WebSocket message, in order.
 */
/** Sockets corked in this turn, with the bytes written to them since. */
const corked = new Map<NetSocket, number>();
let uncorkScheduled = false;

function uncorkAll(): void {
  uncorkScheduled = false;
  for (const socket of corked.keys()) socket.uncork();
  corked.clear();
}

function writeCorked(socket: NetSocket, frame: Buffer): void {
  const written = corked.get(socket);
  if (written === undefined) {
    socket.cork();
    if (!uncorkScheduled) {
      uncorkScheduled = true;
      setImmediate(uncorkAll);
    }
  }
  corked.set(socket, (written ?? 0) + frame.length);
  socket.write(frame);
}

/**
 * Bytes a socket has not managed to send, not counting what this turn just queued behind its cork:
 * the measure of a slow consumer.
 */
export function unsentBytes(socket: WebSocket): number {
  const net = (socket as unknown as WsInternals)._socket;
  return socket.bufferedAmount - (net ? (corked.get(net) ?? 0) : 0);
}

/**
 * Writes the pre-framed bytes straight to the socket when the `ws` sender is idle (nothing queued
 * before it, no compression), which is what `ws.send` would do after framing the payload again.
 * Otherwise, or if the internals are not what we expect, falls back to `ws.send`.
 */
export function writeFramed(socket: WebSocket, message: FramedMessage): void {
  const internals = socket as unknown as WsInternals;
  if (internals._sender?._state === 0 && internals._socket?.writable) {
    writeCorked(internals._socket, message.frame);
    return;
  }
  socket.send(message.payload, { binary: false });
}
