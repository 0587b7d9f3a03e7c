#!/usr/bin/env node
// Sends one demo signal with the provider key from the demo seed (data/demo-credentials.json).
// Usage: npm run demo:signal [-- --premium] [-- --symbol ETHUSDT]
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const file = process.env.DEMO_CREDENTIALS ?? `${process.env.DATA_DIR ?? './data'}/demo-credentials.json`;
let credentials;
try {
  credentials = JSON.parse(readFileSync(file, 'utf8'));
} catch {
  console.error(`No demo credentials at ${file}: start the service once on an empty embedded database (npm start).`);
  process.exit(1);
}
const baseUrl = process.env.BASE_URL ?? credentials.base_url;
const symbolIndex = args.indexOf('--symbol');
const body = {
  external_id: `demo-${Date.now()}`,
  symbol: symbolIndex >= 0 ? args[symbolIndex + 1] : 'BTCUSDT',
  market: 'crypto',
  side: 'long',
  entry: '64250.5',
  stop_loss: '63100',
  take_profits: ['65500', '67000'],
  confidence: 78,
  timeframe: '4h',
  note: 'demo signal',
  premium: args.includes('--premium'),
  issued_at: new Date().toISOString(),
};
const response = await fetch(`${baseUrl}/api/v1/external-signals/sync/signal`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', 'x-api-key': credentials.provider_api_key },
  body: JSON.stringify(body),
});
console.log(response.status, JSON.stringify(await response.json(), null, 2));
