#!/usr/bin/env node
// Logs in as a demo subscriber and prints every signal, through the client SDK: it reconnects,
// resumes by seq and deduplicates, so stopping and starting the server loses nothing.
// Usage: npm run demo:watch -- [free|pro|elite]   (default: pro)
import { readFileSync } from 'node:fs';
import { SignalcastClient, UnauthorizedError } from '@signalcast/client';
import WebSocket from 'ws';

const who = process.argv[2] ?? 'pro';
const file = process.env.DEMO_CREDENTIALS ?? `${process.env.DATA_DIR ?? './data'}/demo-credentials.json`;
const credentials = JSON.parse(readFileSync(file, 'utf8'));
const url = process.env.BASE_URL ?? credentials.base_url;
const email = `${who}@demo.signalcast`;

async function getToken() {
  const response = await fetch(`${url}/api/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: credentials.password }),
  });
  if (response.status === 401) throw new UnauthorizedError(`login refused for ${email}`);
  if (!response.ok) throw new Error(`login failed: ${response.status}`);
  return (await response.json()).access_token;
}

const client = new SignalcastClient({ url, getToken, WebSocket });
client.on('state', ({ state, retryInMs, code, reason }) =>
  console.log(
    `[${state}]${retryInMs !== undefined ? ` retry in ${retryInMs} ms` : ''}${code ? ` (${code}${reason ? ` ${reason}` : ''})` : ''}${state === 'live' ? ` as ${email}, tier ${client.welcome?.tier}` : ''}`,
  ),
);
client.on('signal', (s) =>
  console.log(
    `#${s.seq} ${s.symbol} ${s.side} @ ${s.entry}${s.premium ? ' [premium]' : ''} v${s.version} ${s.status} conf ${s.confidence}`,
  ),
);
client.on('error', (error) => console.error(`! ${error.code}: ${error.message}`));
client.connect();
process.on('SIGINT', () => {
  client.close();
  process.exit(0);
});
