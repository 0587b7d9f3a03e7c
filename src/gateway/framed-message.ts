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
 * Write coalescing. A frame written to a socket goes straight out, as a plain broadcast would write
 * it, unless more frames are known to follow in this turn of the event loop (a burst) or the socket
 * was already written in this turn: then the socket is corked, and all corked sockets are uncorked
 * together right after the turn. A burst delivered in one turn leaves each socket as one write
 * instead of one syscall per frame, while a lone signal costs no more than a plain write; each
 * frame is still its own WebSocket message, in order.
 */
/** Sockets written in this turn, with the bytes held behind their cork (0: written once, not corked). */
const writtenThisTurn = new Map<NetSocket, number>();
let turnEndScheduled = false;

function endTurn(): void {
  turnEndScheduled = false;
  for (const [socket, held] of writtenThisTurn) if (held > 0) socket.uncork();
  writtenThisTurn.clear();
}

function writeCoalesced(socket: NetSocket, frame: Buffer, moreFollow: boolean): void {
  const held = writtenThisTurn.get(socket);
  if (held === undefined && !turnEndScheduled) {
    turnEndScheduled = true;
    setImmediate(endTurn);
  }
  if (held === undefined && !moreFollow) {
    writtenThisTurn.set(socket, 0);
  } else {
    if (!held) socket.cork();
    writtenThisTurn.set(socket, (held ?? 0) + frame.length);
  }
  socket.write(frame);
}

/**
 * Bytes a socket has not managed to send, not counting what this turn just queued behind its cork:
 * the measure of a slow consumer.
 */
export function unsentBytes(socket: WebSocket): number {
  const net = (socket as unknown as WsInternals)._socket;
  return socket.bufferedAmount - (net ? (writtenThisTurn.get(net) ?? 0) : 0);
}

/**
 * Writes the pre-framed bytes straight to the socket when the `ws` sender is idle (nothing queued
 * before it, no compression), which is what `ws.send` would do after framing the payload again.
 * Otherwise, or if the internals are not what we expect, falls back to `ws.send`. `moreFollow`
 * says that more frames for this socket may follow in this turn, so it is worth holding this one.
 */
export function writeFramed(socket: WebSocket, message: FramedMessage, moreFollow = false): void {
  const internals = socket as unknown as WsInternals;
  if (internals._sender?._state === 0 && internals._socket?.writable) {
    writeCoalesced(internals._socket, message.frame, moreFollow);
    return;
  }
  socket.send(message.payload, { binary: false });
}
