import { createContext, useContext, useEffect, useMemo, useState, useSyncExternalStore, type ReactNode } from 'react';
import { SignalcastClient, SignalcastError } from './index.js';
import type { ClientOptions, ConnectionState, Signal, SignalFilters, StateChange } from './index.js';

/** One immutable object per flush: useSyncExternalStore sees a new value only when something changed. */
interface Snapshot {
  rows: Signal[];
  state: StateChange;
  error: SignalcastError | null;
  isLoading: boolean;
  lastSeq: number | undefined;
}

interface Store {
  client: SignalcastClient;
  get(): Snapshot;
  subscribe(listener: () => void): () => void;
  /** Connects on the first holder; the returned release closes after the last one, unless a retain comes first. */
  retain(): () => void;
  /** Registers a hook's `limit` (the store keeps the largest); returns its removal. */
  keep(limit: number): () => void;
  /** Re-applies the filters and limits to the stored rows. */
  refresh(): void;
  /** The server now applies these filters: rows that do not match them go. */
  applied(filters: SignalFilters): void;
  /** Shows an error, as the client's `error` event does. */
  fail(error: SignalcastError): void;
}

const DEFAULT_LIMIT = 100;
// The frame budget: a burst becomes a few renders, not one per signal.
const FLUSH_MS = 16;
const EMPTY: Snapshot = { rows: [], state: { state: 'idle' }, error: null, isLoading: true, lastSeq: undefined };

/** The same rules the server applies, so that rows stored under older filters can be dropped. */
const matches = (f: SignalFilters, s: Signal): boolean =>
  (f.premium === undefined || f.premium === s.premium) &&
  (f.min_confidence === undefined || s.confidence >= f.min_confidence) &&
  (!f.symbols || f.symbols.some((symbol) => symbol.toUpperCase() === s.symbol)) &&
  (!f.markets || f.markets.includes(s.market)) &&
  (!f.providers || f.providers.some((provider) => provider.toLowerCase() === s.provider)) &&
  (!f.sides || f.sides.includes(s.side));

const withoutPremium = ({ premium: _premium, ...rest }: SignalFilters): SignalFilters => rest;

// Sorted keys: `{ a, b }` and `{ b, a }` are the same filters and must not resubscribe.
const stable = (f: SignalFilters): string => JSON.stringify(f, Object.keys(f).sort());

function createStore(client: SignalcastClient): Store {
  const listeners = new Set<() => void>();
  const limits: number[] = [];
  let pending: Signal[] = [];
  let flushing: ReturnType<typeof setTimeout> | undefined;
  let closing: ReturnType<typeof setTimeout> | undefined;
  let refs = 0;
  let state = client.stateInfo;
  let error: SignalcastError | null = null;
  let loaded = state.state === 'live' || state.state === 'polling';
  // The filters in force (not the wanted ones: a change the server refuses must not drop rows).
  let inForce = client.filters;
  let snapshot: Snapshot = { ...EMPTY, state, isLoading: !loaded, lastSeq: client.lastSeq };

  const flush = () => {
    flushing = undefined;
    const rows = snapshot.rows.slice();
    for (const signal of pending) {
      // A known id is a newer version: it keeps its place; a new one goes on top.
      const at = rows.findIndex((row) => row.id === signal.id);
      if (at < 0) rows.unshift(signal);
      else rows[at] = signal;
    }
    pending = [];
    snapshot = {
      rows: rows.filter((row) => matches(inForce, row)).slice(0, Math.max(DEFAULT_LIMIT, ...limits)),
      state,
      error,
      isLoading: !loaded,
      lastSeq: client.lastSeq,
    };
    listeners.forEach((listener) => listener());
  };
  const refresh = () => {
    flushing ??= setTimeout(flush, FLUSH_MS);
  };

  const fail = (e: SignalcastError) => {
    error = e;
    refresh();
  };

  client.on('signal', (signal) => {
    pending.push(signal);
    refresh();
  });
  client.on('error', fail);
  client.on('reset', () => {
    // Another user, or another database: nothing shown so far applies.
    pending = [];
    snapshot = { ...snapshot, rows: [] };
    refresh();
  });
  client.on('state', (change) => {
    state = change;
    if (change.state === 'live' || change.state === 'polling' || change.state === 'replaying') error = null;
    if (change.state === 'live' || change.state === 'polling') loaded = true;
    if (change.state === 'failed') error = new SignalcastError(String(change.code ?? 'failed'), change.reason ?? 'Connection failed');
    refresh();
  });

  return {
    client,
    get: () => snapshot,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    retain() {
      if (!refs++) {
        // StrictMode's unmount/remount lands here with the close still pending: cancelling it keeps
        // the socket that is already opening, where a second connect() could race the first.
        if (closing) clearTimeout(closing);
        else client.connect();
        closing = undefined;
      }
      return () => {
        if (--refs) return;
        closing = setTimeout(() => {
          closing = undefined;
          client.close();
        }, 0);
      };
    },
    keep(limit) {
      limits.push(limit);
      return () => void limits.splice(limits.indexOf(limit), 1);
    },
    refresh,
    applied(filters) {
      inForce = filters;
      error = null;
      refresh();
    },
    fail,
  };
}

// One store per client, so two providers given the same client share its socket and its rows.
const stores = new WeakMap<SignalcastClient, Store>();
const storeOf = (client: SignalcastClient): Store => {
  let store = stores.get(client);
  if (!store) stores.set(client, (store = createStore(client)));
  return store;
};

const Context = createContext<Store | null>(null);

function useStore(): Store {
  const store = useContext(Context);
  if (!store) throw new Error('Signalcast hooks must be used inside <SignalcastProvider>');
  return store;
}

export type SignalcastProviderProps = { children?: ReactNode } & (
  { client: SignalcastClient; options?: never } | { options: ClientOptions; client?: never }
);

/**
 * Provides one client (one socket) to the hooks below; it connects while the provider is mounted.
 * `options` are read once, on the first render.
 */
export function SignalcastProvider({ client, options, children }: SignalcastProviderProps) {
  // Constructing is inert (no socket until connect()), so StrictMode's discarded second instance costs nothing.
  const [own] = useState(() => (client ? undefined : new SignalcastClient(options!)));
  const store = storeOf(client ?? own!);
  useEffect(store.retain, [store]);
  return <Context.Provider value={store}>{children}</Context.Provider>;
}

export interface UseSignalsOptions {
  /** Rows returned, newest first (default 100). */
  limit?: number;
  /** Premium signals only: sent to the server as the filter `premium: true`. */
  premiumOnly?: boolean;
  /**
   * The connection's filters (one set per client: the last hook to change them wins). A hook given
   * neither this nor `premiumOnly` keeps the client's own; `premiumOnly` alone changes only their
   * `premium` criterion. Rows the new filters exclude are dropped; rows they add are not fetched
   * back (they arrive from now on).
   */
  filters?: SignalFilters;
  useWebSocket?: boolean;
  /** Milliseconds between two polls when polling. */
  pollInterval?: number;
}

export interface UseSignalsResult {
  signals: Signal[];
  /** True until the connection has first been `live` or `polling`. */
  isLoading: boolean;
  error: SignalcastError | null;
  state: ConnectionState;
  lastSeq: number | undefined;
}

export function useSignals({
  limit = DEFAULT_LIMIT,
  premiumOnly,
  filters,
  useWebSocket,
  pollInterval,
}: UseSignalsOptions = {}): UseSignalsResult {
  const store = useStore();
  const { client } = store;
  const snapshot = useSyncExternalStore(store.subscribe, store.get, () => EMPTY);
  const rows = Number.isSafeInteger(limit) && limit > 0 ? limit : DEFAULT_LIMIT;
  useEffect(() => store.keep(rows), [store, rows]);

  // `premiumOnly` alone changes only the `premium` criterion of the client's filters.
  const base: SignalFilters | undefined = filters ?? (premiumOnly !== undefined ? withoutPremium(client.filters) : undefined);
  const premium = premiumOnly === true ? true : premiumOnly === false ? (base?.premium === false ? false : undefined) : base?.premium;
  const wanted = base && { ...withoutPremium(base), ...(premium !== undefined && { premium }) };
  const key = wanted && stable(wanted);
  useEffect(() => {
    if (!wanted || key === stable(client.filters)) return;
    // A refused change only rejects this promise (the client keeps the previous filters), so it is
    // shown here; `closed` means the provider went away first.
    client.subscribe(wanted).then(
      () => store.applied(wanted),
      (e: SignalcastError) => e.code === 'closed' || store.fail(e),
    );
    // `key` stands for `wanted`: a new object with the same filters every render must not resubscribe.
  }, [store, key]);

  useEffect(() => {
    if (useWebSocket === undefined && pollInterval === undefined) return;
    client.configure({
      ...(useWebSocket !== undefined && { useWebSocket }),
      ...(pollInterval !== undefined && { poll: { intervalMs: pollInterval } }),
    });
  }, [client, useWebSocket, pollInterval]);

  return useMemo(
    () => ({
      signals: snapshot.rows.slice(0, rows),
      isLoading: snapshot.isLoading,
      error: snapshot.error,
      state: snapshot.state.state,
      lastSeq: snapshot.lastSeq,
    }),
    [snapshot, rows],
  );
}

/** `{ state, retryInMs, code, reason }` of the provider's client. */
export function useConnectionState(): StateChange {
  const store = useStore();
  return useSyncExternalStore(
    store.subscribe,
    () => store.get().state,
    () => EMPTY.state,
  );
}

export function useSignalcastClient(): SignalcastClient {
  return useStore().client;
}
