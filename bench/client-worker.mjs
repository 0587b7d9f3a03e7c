// A load-client process: opens sockets to one target and records, per socket, the seq and the
// arrival time (epoch ms, µs precision, same clock as the harness) of every signal it receives.
// Driven by the harness over IPC: connect → (signals flow) → collect → exit.
//
// The sockets are raw TCP sockets reading WebSocket frames from their bytes (./raw-socket.mjs),
// the same client for every target. `BENCH_CLIENT=library` uses the `ws` and `socket.io-client`
// libraries instead (the harness's clients before issue 15), to compare the two.
import { performance } from 'node:perf_hooks';
import { clientText, peek, openRawSocket } from './raw-socket.mjs';

const now = () => performance.timeOrigin + performance.now();
const sockets = [];
const LIBRARY = process.env.BENCH_CLIENT === 'library';

/** The libraries' clients hand over decoded strings: type and seq read from the text, as before. */
function peekText(raw) {
  const typeAt = raw.indexOf('"type":"');
  const type = typeAt < 0 ? undefined : raw.slice(typeAt + 8, raw.indexOf('"', typeAt + 8));
  const seqAt = raw.indexOf('"seq":');
  return { type, seq: seqAt < 0 ? undefined : parseInt(raw.slice(seqAt + 6, seqAt + 30), 10) };
}

/** One message: its type and seq, read from its bytes; `at`: when the read that held it arrived. */
function record(entry, bytes, at = now()) {
  const message = typeof bytes === 'string' ? peekText(bytes) : peek(bytes);
  if (message.type === 'signal' || message.type === 'signal_update') {
    if (message.seq <= (entry.seqs.at(-1) ?? 0)) entry.outOfOrder++;
    entry.seqs.push(message.seq);
    entry.times.push(at);
    if (entry.receipt) acknowledge(entry, message.seq);
  } else if (message.type === 'welcome') {
    entry.welcomed = true;
    // Where a resume starts when nothing came yet: the seq this socket started after.
    entry.startedAfter ??= JSON.parse(bytes.toString()).latest_seq;
  }
}

/**
 * Delivery receipts as the SDK sends them: right after a signal when none went out in the last
 * 250 ms, else one at the end of that window with the highest seq received by then.
 */
const RECEIPT_INTERVAL_MS = 250;
function acknowledge(entry, seq) {
  entry.receipt.seq = Math.max(entry.receipt.seq, seq);
  if (entry.receipt.timer) return;
  const wait = entry.receipt.sentAt + RECEIPT_INTERVAL_MS - now();
  if (wait <= 0) return sendReceipt(entry);
  entry.receipt.timer = setTimeout(() => sendReceipt(entry), wait);
}
function sendReceipt(entry) {
  const receipt = entry.receipt;
  receipt.timer = undefined;
  if (receipt.seq <= receipt.sent) return;
  receipt.send(`{"type":"received","seq":${receipt.seq}}`);
  receipt.sent = receipt.seq;
  receipt.sentAt = now();
}

async function openRaw(url, entry, engineIo) {
  const opened = await openRawSocket(url, {
    engineIo,
    onText: (payload, at) => record(entry, payload, at),
    onClose: (code) => {
      entry.closeCode = code;
      entry.onClose?.();
    },
  });
  if (!opened.ok) {
    entry.error = opened.error;
    return false;
  }
  entry.close = () => opened.socket.destroy();
  if (entry.wantsReceipts) entry.receipt = { seq: 0, sent: 0, sentAt: -Infinity, send: (text) => opened.socket.write(clientText(text)) };
  return true;
}

async function openWs(url, entry) {
  if (!LIBRARY) return openRaw(url, entry, false);
  const { default: WebSocket } = await import('ws');
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

async function openSocketIo(url, entry) {
  if (!LIBRARY) return openRaw(url, entry, true);
  const { io } = await import('socket.io-client');
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

async function connect({ kind, url, clients, concurrency, receipts = false }) {
  const started = now();
  let failed = 0;
  let next = 0;
  const lane = async () => {
    while (next < clients.length) {
      const client = clients[next++];
      const entry = {
        tier: client.tier,
        symbols: client.symbols,
        seqs: [],
        times: [],
        welcomed: false,
        outOfOrder: 0,
        wantsReceipts: receipts,
      };
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
