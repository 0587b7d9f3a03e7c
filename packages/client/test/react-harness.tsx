// The React entry on the real SignalcastClient over FakeSocket (real timers), rendered with
// @testing-library/react in happy-dom (installed here, as test/client-react.dom.spec.tsx does).
import { builtinEnvironments } from 'vitest/runtime';
export async function installDom() {
  const dom = await builtinEnvironments['happy-dom'].setup(globalThis, { happyDOM: { url: 'http://localhost:3000' } });
  (globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;
  const rtl = await import('@testing-library/react');
  return { dom, rtl };
}
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

import { SignalcastClient, type ClientOptions, type Signal } from '../src/index.js';
import { SignalcastProvider, useSignals, type UseSignalsOptions } from '../src/react.js';
import { FakeSocket, signal } from './harness.js';
export { FakeSocket, signal };

export function makeClient(options: Partial<ClientOptions> = {}) {
  return new SignalcastClient({
    url: 'https://signals.example.com',
    getToken: () => 'token-1',
    WebSocket: FakeSocket,
    fetch: () => Promise.reject(new Error('no HTTP')),
    backoff: { minMs: 10, maxMs: 50 },
    ...options,
  });
}

export const seen: { current: ReturnType<typeof useSignals> | undefined } = { current: undefined };
export function Feed(props: UseSignalsOptions) {
  const result = useSignals(props);
  seen.current = result;
  return (
    <ol>
      {result.signals.map((s) => (
        <li key={s.id}>{s.id}</li>
      ))}
    </ol>
  );
}
export function App({ client, ...props }: UseSignalsOptions & { client: SignalcastClient }) {
  return (
    <SignalcastProvider client={client}>
      <Feed {...props} />
    </SignalcastProvider>
  );
}
export const ids = () => seen.current!.signals.map((s) => s.id);
export const sig = (seq: number, patch: Partial<Signal> = {}, id = `s${seq}`, version = 1) => ({
  type: version > 1 ? 'signal_update' : 'signal',
  ...signal(seq, id, version),
  ...patch,
});
