// The size budget (issue 12): each entry point bundled and minified with rolldown, then gzipped
// (level 9). The core counts everything `index.js` exports (no tree-shaking credit); the React
// entry counts only itself (react and the core are external: "on top of" the core).
import { gzipSync } from 'node:zlib';
import { rolldown } from 'rolldown';

const BUDGETS = [
  { entry: 'dist/esm/index.js', name: '@signalcast/client', limit: 6 * 1024, external: [] },
  { entry: 'dist/esm/react.js', name: '@signalcast/client/react', limit: 2 * 1024, external: ['react', 'react/jsx-runtime', './index.js'] },
];

let failed = false;
console.log('entry                       min+gzip   budget');
for (const { entry, name, limit, external } of BUDGETS) {
  const bundle = await rolldown({ input: new URL(`../${entry}`, import.meta.url).pathname, external, logLevel: 'silent' });
  const { output } = await bundle.generate({ format: 'esm', minify: true });
  await bundle.close();
  const code = output
    .filter((chunk) => chunk.type === 'chunk')
    .map((chunk) => chunk.code)
    .join('');
  const bytes = gzipSync(code, { level: 9 }).length;
  const over = bytes > limit;
  failed ||= over;
  console.log(
    `${name.padEnd(28)}${`${(bytes / 1024).toFixed(2)} KB`.padStart(8)}   ${(limit / 1024).toFixed(0)} KB${over ? '   OVER BUDGET' : ''}`,
  );
}
if (failed) process.exit(1);
