// Summarizes a V8 CPU profile (`node --cpu-prof`, or `npm run bench -- --profile dir`): self time
// by package (or file) and the top functions, so a README claim can cite what the profile shows.
//   node bench/profile-summary.mjs <file.cpuprofile> [--top 25] [--from s] [--to s]
// --from/--to keep only the samples in that window (seconds since the profile started); the
// per-second timeline printed first shows where the measured phase is.
import { readFileSync } from 'node:fs';

const [file, ...rest] = process.argv.slice(2);
if (!file) throw new Error('usage: node bench/profile-summary.mjs <file.cpuprofile> [--top 25]');
const option = (name, fallback) => (rest.includes(name) ? Number(rest[rest.indexOf(name) + 1]) : fallback);
const top = option('--top', 25);
const from = option('--from', 0) * 1e6;
const to = option('--to', Infinity) * 1e6;
const profile = JSON.parse(readFileSync(file, 'utf8'));

const idleId = profile.nodes.find((node) => node.callFrame.functionName === '(idle)')?.id;
const selfMicros = new Map(profile.nodes.map((node) => [node.id, 0]));
const busyPerSecond = [];
let at = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const delta = profile.timeDeltas[i] ?? 0;
  at += delta;
  const second = Math.floor(at / 1e6);
  busyPerSecond[second] = (busyPerSecond[second] ?? 0) + (profile.samples[i] === idleId ? 0 : delta);
  if (at < from || at >= to) continue;
  selfMicros.set(profile.samples[i], selfMicros.get(profile.samples[i]) + delta);
}
console.log(`busy % per second: ${Array.from(busyPerSecond, (us) => Math.round((us ?? 0) / 1e4)).join(' ')}`);
const total = [...selfMicros.values()].reduce((sum, us) => sum + us, 0);

/** `node_modules/@scope/name` or `node_modules/name`, else the file under src/ or dist/, else the V8 category. */
function bucketOf({ url, functionName }) {
  if (!url) return `(${functionName || 'native'})`;
  const packageMatch = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (packageMatch) return packageMatch[1];
  if (url.startsWith('node:')) return url;
  const own = /\/(dist|src)\/(.+)$/.exec(url);
  return own ? own[2] : url;
}

const byBucket = new Map();
const byFunction = new Map();
for (const node of profile.nodes) {
  const us = selfMicros.get(node.id);
  if (!us) continue;
  const bucket = bucketOf(node.callFrame);
  byBucket.set(bucket, (byBucket.get(bucket) ?? 0) + us);
  const name = `${node.callFrame.functionName || '(anonymous)'} ${bucket}:${node.callFrame.lineNumber + 1}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + us);
}

const print = (title, entries) => {
  console.log(`\n${title}`);
  for (const [name, us] of [...entries].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${(us / 1000).toFixed(0).padStart(8)} ms ${((us / total) * 100).toFixed(1).padStart(5)} %  ${name}`);
  }
};
console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled`);
print('self time by package / file', byBucket);
print('self time by function', byFunction);
