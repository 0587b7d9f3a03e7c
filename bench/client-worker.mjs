// A load-client process: opens sockets to one target and records, per socket, the seq and the
// arrival time (epoch ms, µs precision, same clock as the harness) of every signal it receives.
// Driven by the harness over IPC: connect → (signals flow) → collect → exit.
import { performance } from 'node:perf_hooks';
import { io } from 'socket.io-client';
import WebSocket from 'ws';

const now = () => performance.timeOrigin + performance.now();
const sockets = [];

/**
 * The type and seq of a message, read without parsing the whole JSON (both come first in every
 * target's messages). The clients observe when each message arrives; the less each one costs here,
 * the less the measurement is bounded by the client core rather than the server. Same work for
 * every target.
 */
function peek(raw) {
  const typeAt = raw.indexOf('"type":"');
  const type = typeAt < 0 ? undefined : raw.slice(typeAt + 8, raw.indexOf('"', typeAt + 8));
  const seqAt = raw.indexOf('"seq":');
  return { type, seq: seqAt < 0 ? undefined : parseInt(raw.slice(seqAt + 6, seqAt + 30), 10) };
}

function record(entry, raw) {
  const message = peek(raw);
  if (message.type === 'signal' || message.type === 'signal_update') {
    if (message.seq <= (entry.seqs.at(-1) ?? 0)) entry.outOfOrder++;
    entry.seqs.push(message.seq);
    entry.times.push(now());
  } else if (message.type === 'welcome') {
    entry.welcomed = true;
    // Where a resume starts when nothing came yet: the seq this socket started after.
    entry.startedAfter ??= JSON.parse(raw).latest_seq;
  }
}

function openWs(url, entry) {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    entry.close = () => socket.terminate();
    socket.on('message', (data) => record(entry, data.toString()));
    socket.on('open', () => resolve(true));
    socket.on('error', (error) => {
      entry.error = error.message;
      resolve(false);
    });
    socket.on('unexpected-response', (_req, res) => {
      entry.error = `HTTP ${res.statusCode}`;
      resolve(false);
    });
    socket.on('close', (code) => {
      entry.closeCode = code;
      entry.onClose?.();
    });
  });
}

function openSocketIo(url, entry) {
  return new Promise((resolve) => {
    const socket = io(url, { transports: ['websocket'], reconnection: false, forceNew: true });
    entry.close = () => socket.disconnect();
    socket.on('signal', (raw) => record(entry, raw));
    socket.on('connect', () => resolve(true));
    socket.on('connect_error', (error) => {
      entry.error = error.message;
      resolve(false);
    });
  });
}

async function connect({ kind, url, clients, concurrency }) {
  const started = now();
  let failed = 0;
  let next = 0;
  const lane = async () => {
    while (next < clients.length) {
      const client = clients[next++];
      const entry = { tier: client.tier, symbols: client.symbols, seqs: [], times: [], welcomed: false, outOfOrder: 0 };
      sockets.push(entry);
      const filter = client.symbols ? `&symbols=${client.symbols.join(',')}` : '';
      const target = kind === 'socketio' ? url : `${url}?token=${encodeURIComponent(client.token)}${filter}`;
      entry.url = target;
      const ok = await (kind === 'socketio' ? openSocketIo(target, entry) : openWs(target, entry));
      if (!ok) failed++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  // signalcast sockets count once welcomed (registered for delivery).
  if (kind === 'signalcast') {
    const deadline = Date.now() + 30_000;
    while (sockets.some((s) => !s.welcomed && !s.error) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }
  return {
    opened: clients.length - failed,
    failed,
    ms: now() - started,
    errors: [...new Set(sockets.map((s) => s.error).filter(Boolean))].slice(0, 3),
  };
}

/**
 * The soak's trickle of reconnects: `count` random signalcast sockets are dropped (as a lost
 * connection would be) and open again with `?since=` the last seq they received, as a client
 * resumes; what they receive after is recorded on the same entry, so the set check covers resume.
 */
async function reconnect(count) {
  const open = sockets.filter((s) => s.welcomed && !s.reconnecting && s.closeCode === undefined);
  let done = 0;
  for (let i = 0; i < count && open.length > 0; i++) {
    const [entry] = open.splice(Math.floor(Math.random() * open.length), 1);
    entry.reconnecting = true;
    const closed = new Promise((resolve) => (entry.onClose = resolve));
    entry.close();
    await closed;
    entry.closeCode = undefined;
    const since = entry.seqs.at(-1) ?? entry.startedAfter ?? 0;
    if (await openWs(`${entry.url}&since=${since}`, entry)) done++;
    entry.reconnecting = false;
  }
  return done;
}

process.on('message', async (message) => {
  if (message.cmd === 'connect') {
    process.send({ cmd: 'connected', ...(await connect(message)) });
  } else if (message.cmd === 'collect') {
    process.send({
      cmd: 'collected',
      sockets: sockets.map(({ tier, symbols, seqs, times, closeCode, outOfOrder }) => ({
        tier,
        symbols,
        seqs,
        times,
        closeCode,
        outOfOrder,
      })),
    });
  } else if (message.cmd === 'reconnect') {
    process.send({ cmd: 'reconnected', count: await reconnect(message.count) });
  } else if (message.cmd === 'reset') {
    for (const socket of sockets) {
      socket.seqs = [];
      socket.times = [];
    }
    process.send({ cmd: 'reset-done' });
  } else if (message.cmd === 'close') {
    for (const socket of sockets) socket.close?.();
    setTimeout(() => process.exit(0), 200);
  }
});
