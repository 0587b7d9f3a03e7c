#!/usr/bin/env node
// Logs in as a demo subscriber and prints every message from /ws/signals.
// Usage: npm run demo:watch -- [free|pro|elite]   (default: pro)
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';

const who = process.argv[2] ?? 'pro';
const file = process.env.DEMO_CREDENTIALS ?? `${process.env.DATA_DIR ?? './data'}/demo-credentials.json`;
const credentials = JSON.parse(readFileSync(file, 'utf8'));
const baseUrl = process.env.BASE_URL ?? credentials.base_url;
const response = await fetch(`${baseUrl}/api/auth/token`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ email: `${who}@demo.signalcast`, password: credentials.password }),
});
if (!response.ok) {
  console.error(`login failed: ${response.status} ${await response.text()}`);
  process.exit(1);
}
const { access_token: token } = await response.json();
const socket = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/ws/signals`, { headers: { authorization: `Bearer ${token}` } });
socket.on('open', () => console.log(`connected as ${who}@demo.signalcast; waiting for signals (Ctrl-C to stop)`));
socket.on('message', (data) => console.log(data.toString()));
socket.on('close', (code, reason) => console.log(`closed ${code} ${reason}`));
