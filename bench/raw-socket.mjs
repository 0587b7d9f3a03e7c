// The load clients' socket: a raw `net.Socket` speaking just enough RFC 6455 to read a server's
// text frames (and, for the Socket.IO target, the few bytes of Engine.IO v4 / Socket.IO v5 framing
// on top). No frame parser library, no UTF-8 decoding, no event per message: each socket read is
// timestamped once, and each text frame in it is handed over as bytes. The same code reads every
// target, so what a run measures is the servers, not the clients' core.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { performance } from 'node:perf_hooks';

const now = () => performance.timeOrigin + performance.now();
const HEAD_END = Buffer.from('\r\n\r\n');
const OPCODE = { text: 0x1, close: 0x8, ping: 0x9, pong: 0xa };

/** A client frame (masked, as RFC 6455 requires of clients); only short control or text frames. */
function clientFrame(opcode, payload) {
  if (payload.length > 125) throw new Error('client frames here are short');
  const mask = randomBytes(4);
  const frame = Buffer.alloc(6 + payload.length);
  frame[0] = 0x80 | opcode;
  frame[1] = 0x80 | payload.length;
  mask.copy(frame, 2);
  for (let i = 0; i < payload.length; i++) frame[6 + i] = payload[i] ^ mask[i & 3];
  return frame;
}

/** A short text frame from a client (a delivery receipt). */
export const clientText = (text) => clientFrame(OPCODE.text, Buffer.from(text));

const SEQ_PLAIN = Buffer.from('"seq":');
const SEQ_ESCAPED = Buffer.from('\\"seq\\":'); // inside a Socket.IO event's JSON string
const TYPE = Buffer.from('type');

/**
 * The message's type and seq, read from its bytes (both lead every target's messages): `type` is
 * the word after the first `type` key, `seq` the digits after the `"seq":` key (escaped or not;
 * `latest_seq` does not match). Welcome messages, rare, are parsed whole by the caller.
 */
export function peek(payload) {
  let type;
  const typeAt = payload.indexOf(TYPE);
  if (typeAt >= 0) {
    let i = typeAt + 4;
    while (i < payload.length && (payload[i] === 0x22 || payload[i] === 0x5c || payload[i] === 0x3a)) i++; // " \ :
    let j = i;
    while (j < payload.length && payload[j] !== 0x22 && payload[j] !== 0x5c) j++;
    type = payload.toString('latin1', i, j);
  }
  let seq;
  let at = payload.indexOf(SEQ_PLAIN);
  let from = at + SEQ_PLAIN.length;
  if (at < 0) {
    at = payload.indexOf(SEQ_ESCAPED);
    from = at + SEQ_ESCAPED.length;
  }
  if (at >= 0) {
    seq = 0;
    for (let i = from; i < payload.length && payload[i] >= 0x30 && payload[i] <= 0x39; i++) seq = seq * 10 + payload[i] - 0x30;
  }
  return { type, seq };
}

/**
 * Opens a WebSocket to `url` over a raw TCP socket. `engineIo`: the URL is a Socket.IO server's
 * base; the client speaks Engine.IO v4 (answers pings) and joins the default namespace, and
 * `onText` gets each event packet's bytes. Resolves `{ ok: true, socket }` once open (for
 * Socket.IO, once the namespace answered), or `{ ok: false, error }`.
 */
export function openRawSocket(url, { engineIo = false, onText, onClose }) {
  const target = new URL(engineIo ? '/socket.io/?EIO=4&transport=websocket' : url, url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: target.hostname, port: Number(target.port), noDelay: true });
    let pending = null;
    let upgraded = false;
    let settled = false;
    let closeCode;
    const settle = (result) => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    socket.on('connect', () => {
      socket.write(
        `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    const text = (payload, at) => {
      if (!engineIo) return onText(payload, at);
      // Engine.IO packet type first: 2 ping, 4 message (then Socket.IO: 0 connect, 2 event).
      if (payload[0] === 0x32 && payload.length === 1) return socket.write(clientFrame(OPCODE.text, Buffer.from('3')));
      if (payload[0] === 0x30) return socket.write(clientFrame(OPCODE.text, Buffer.from('40'))); // open → join "/"
      if (payload[0] === 0x34 && payload[1] === 0x30) return settle({ ok: true, socket });
      if (payload[0] === 0x34 && payload[1] === 0x32) return onText(payload, at);
    };
    socket.on('data', (chunk) => {
      const at = now();
      pending = pending ? Buffer.concat([pending, chunk]) : chunk;
      if (!upgraded) {
        const end = pending.indexOf(HEAD_END);
        if (end < 0) return;
        const status = Number(pending.toString('latin1', 0, end).split(' ')[1]);
        if (status !== 101) {
          settle({ ok: false, error: `HTTP ${status}` });
          return socket.destroy();
        }
        upgraded = true;
        pending = pending.subarray(end + HEAD_END.length);
        if (!engineIo) settle({ ok: true, socket });
      }
      let offset = 0;
      while (pending.length - offset >= 2) {
        const opcode = pending[offset] & 0x0f;
        let length = pending[offset + 1] & 0x7f;
        let header = 2;
        if (length === 126) {
          if (pending.length - offset < 4) break;
          length = pending.readUInt16BE(offset + 2);
          header = 4;
        } else if (length === 127) {
          if (pending.length - offset < 10) break;
          length = Number(pending.readBigUInt64BE(offset + 2));
          header = 10;
        }
        if (pending.length - offset < header + length) break;
        const payload = pending.subarray(offset + header, offset + header + length);
        offset += header + length;
        if (opcode === OPCODE.text) text(payload, at);
        else if (opcode === OPCODE.ping) socket.write(clientFrame(OPCODE.pong, payload));
        else if (opcode === OPCODE.close) {
          closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
          socket.end();
        }
      }
      pending = offset === pending.length ? null : pending.subarray(offset);
    });
    socket.on('error', (error) => settle({ ok: false, error: error.message }));
    socket.on('close', () => {
      settle({ ok: false, error: 'closed before it opened' });
      onClose?.(closeCode ?? 1006);
    });
  });
}
