import { SignalcastClient, type Signal, type SignalFilters } from '@signalcast/client';
import { SignalcastProvider, useConnectionState, useSignals } from '@signalcast/client/react';
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { tokenProvider, type Session } from './session.js';
import { SignIn } from './SignIn.js';

/** Each user's filters, in this browser (another user of the browser has their own). */
const filtersKey = (userId: string) => `signalcast.filters.${userId}`;
const SIDES: Signal['side'][] = ['buy', 'sell', 'long', 'short', 'close'];

const strings = (value: unknown): string[] | undefined =>
  Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'string') ? value : undefined;

/** The stored filters, checked field by field: a damaged value is dropped, never trusted. */
function loadFilters(userId: string): SignalFilters {
  let stored: Record<string, unknown>;
  try {
    stored = JSON.parse(localStorage.getItem(filtersKey(userId)) ?? '{}') ?? {};
  } catch {
    return {};
  }
  if (typeof stored !== 'object') return {};
  const filters: SignalFilters = {};
  const symbols = strings(stored.symbols);
  const markets = strings(stored.markets);
  const sides = strings(stored.sides)?.filter((side): side is Signal['side'] => (SIDES as string[]).includes(side));
  if (symbols) filters.symbols = symbols;
  if (markets) filters.markets = markets;
  if (sides?.length) filters.sides = sides;
  if (Number.isInteger(stored.min_confidence) && (stored.min_confidence as number) >= 0 && (stored.min_confidence as number) <= 100) {
    filters.min_confidence = stored.min_confidence as number;
  }
  if (stored.premium === true) filters.premium = true;
  return filters;
}

/**
 * The subscriber's live feed. One client per signed-in tab: when the session ends, the client
 * stops (`failed`, unauthorized), the rows stay, and signing in again resumes from the last seq.
 */
export function Feed({ session, onSession }: { session: Session; onSession: (session: Session) => void }) {
  const current = useRef(session);
  current.current = session;
  // Constructing is inert; the provider connects it while mounted.
  const [client] = useState(
    () =>
      new SignalcastClient({
        url: location.origin,
        getToken: tokenProvider(() => current.current),
        history: 100,
        filters: loadFilters(session.userId),
        // Behind a proxy that refuses WebSocket, a feed people watch should not be 30 s late.
        poll: { intervalMs: 10_000 },
      }),
  );
  const renewed = (next: Session) => {
    // Before connect(): getToken reads it at once, before any re-render. Another user gets a
    // feed (and a client) of their own: the App keys the feed by user.
    current.current = next;
    onSession(next);
  };
  return (
    <SignalcastProvider client={client}>
      <FeedView client={client} session={session} onSession={renewed} />
    </SignalcastProvider>
  );
}

function FeedView({ client, session, onSession }: { client: SignalcastClient; session: Session; onSession: (session: Session) => void }) {
  const [filters, setFilters] = useState<SignalFilters>(() => loadFilters(session.userId));
  const { signals, isLoading, error, state, lastSeq } = useSignals({ limit: 200, filters });
  const connection = useConnectionState();
  const timing = useDeliveryTiming(client);
  const tier = client.welcome?.tier;
  const signedOut = state === 'failed' && connection.code === 'unauthorized';

  return (
    <>
      <StatusStrip client={client} tier={tier} lastSeq={lastSeq} latencyMs={timing} />
      {tier && (tier === 'free' || tier === 'basic') && (
        <p className="note">Premium signals are published for pro and elite subscribers; your {tier} plan shows the regular ones.</p>
      )}
      <FilterForm
        filters={filters}
        onApply={(next) => {
          localStorage.setItem(filtersKey(session.userId), JSON.stringify(next));
          setFilters(next);
        }}
      />
      {error && !signedOut && (
        <p className="error" role="alert">
          {error.code}: {error.message}
        </p>
      )}
      <SignalTable signals={signals} isLoading={isLoading} />
      {signedOut && (
        <div className="overlay" role="dialog" aria-modal="true" aria-label="Sign in again">
          <SignIn
            email={session.email}
            message="Your session has ended. Sign in again: the feed continues where it stopped."
            onSignedIn={(next) => {
              onSession(next);
              if (next.userId === session.userId) client.connect(); // another user gets a new feed
            }}
          />
        </div>
      )}
    </>
  );
}

/** The delivery latency of the last live signal: now − `received_at`, on the server's clock (the welcome's `server_time`). */
function useDeliveryTiming(client: SignalcastClient): number | null {
  const [latency, setLatency] = useState<number | null>(null);
  useEffect(() => {
    let skewMs = 0;
    const offState = client.on('state', (change) => {
      if ((change.state === 'live' || change.state === 'replaying') && client.welcome)
        skewMs = Date.parse(client.welcome.server_time) - Date.now();
    });
    const offSignal = client.on('signal', (signal) => {
      if (client.state === 'live') setLatency(Math.max(0, Date.now() + skewMs - Date.parse(signal.received_at)));
    });
    return () => {
      offState();
      offSignal();
    };
  }, [client]);
  return latency;
}

function StatusStrip({
  client,
  tier,
  lastSeq,
  latencyMs,
}: {
  client: SignalcastClient;
  tier?: string;
  lastSeq?: number;
  latencyMs: number | null;
}) {
  const connection = useConnectionState();
  const [now, setNow] = useState(Date.now);
  const [since, setSince] = useState(Date.now);
  useEffect(() => setSince(Date.now()), [connection]);
  useEffect(() => {
    if (connection.state !== 'disconnected') return;
    const timer = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(timer);
  }, [connection]);

  let badge: string;
  let tone = 'wait';
  switch (connection.state) {
    case 'live':
      badge = 'Live';
      tone = 'ok';
      break;
    case 'replaying':
      badge = 'Replaying';
      break;
    case 'polling':
      badge = 'Polling';
      break;
    case 'disconnected':
      badge = `Reconnecting in ${Math.max(0, Math.ceil(((connection.retryInMs ?? 0) - (now - since)) / 1000))} s`;
      tone = 'warn';
      break;
    case 'failed':
      badge = `Stopped: ${connection.reason ?? connection.code ?? 'failed'}`;
      tone = 'bad';
      break;
    case 'closed':
      badge = 'Stopped';
      tone = 'bad';
      break;
    default:
      badge = 'Connecting';
  }
  return (
    <section className="strip" aria-label="Connection">
      <span className={`badge ${tone}`} role="status" aria-live="polite" data-testid="connection">
        {badge}
      </span>
      {connection.state === 'disconnected' && (
        <button type="button" onClick={() => client.reconnectNow()}>
          Reconnect now
        </button>
      )}
      <span>
        Tier <strong data-testid="tier">{tier ?? '…'}</strong>
      </span>
      <span>
        Last seq <strong data-testid="last-seq">{lastSeq ?? '…'}</strong>
      </span>
      <span>
        Delivery <strong>{latencyMs === null ? '…' : `${latencyMs} ms`}</strong>
      </span>
    </section>
  );
}

const list = (text: string) =>
  text
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);

function FilterForm({ filters, onApply }: { filters: SignalFilters; onApply: (filters: SignalFilters) => void }) {
  const [symbols, setSymbols] = useState((filters.symbols ?? []).join(', '));
  const [markets, setMarkets] = useState((filters.markets ?? []).join(', '));
  const [sides, setSides] = useState<Signal['side'][]>(filters.sides ?? []);
  const [minConfidence, setMinConfidence] = useState(filters.min_confidence === undefined ? '' : String(filters.min_confidence));
  const [premiumOnly, setPremiumOnly] = useState(filters.premium === true);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const next: SignalFilters = {};
    if (list(symbols).length) next.symbols = list(symbols).map((symbol) => symbol.toUpperCase());
    if (list(markets).length) next.markets = list(markets).map((market) => market.toLowerCase());
    if (sides.length) next.sides = sides;
    if (minConfidence !== '') next.min_confidence = Math.min(100, Math.max(0, Math.round(Number(minConfidence))));
    if (premiumOnly) next.premium = true;
    onApply(next);
  };
  return (
    <form className="filters" onSubmit={submit} aria-label="Filters">
      <label>
        Symbols
        <input value={symbols} placeholder="BTCUSDT, ETHUSDT" onChange={(event) => setSymbols(event.target.value)} />
      </label>
      <label>
        Markets
        <input value={markets} placeholder="crypto, forex" onChange={(event) => setMarkets(event.target.value)} />
      </label>
      <fieldset>
        <legend>Sides</legend>
        {SIDES.map((side) => (
          <label key={side} className="inline">
            <input
              type="checkbox"
              checked={sides.includes(side)}
              onChange={(event) => setSides(event.target.checked ? [...sides, side] : sides.filter((other) => other !== side))}
            />
            {side}
          </label>
        ))}
      </fieldset>
      <label>
        Min. confidence
        <input
          type="number"
          min={0}
          max={100}
          inputMode="numeric"
          value={minConfidence}
          onChange={(event) => setMinConfidence(event.target.value)}
        />
      </label>
      <label className="inline">
        <input type="checkbox" checked={premiumOnly} onChange={(event) => setPremiumOnly(event.target.checked)} />
        Premium only
      </label>
      <button type="submit">Apply filters</button>
    </form>
  );
}

const time = (iso: string) =>
  new Date(iso).toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });

function statusOf(signal: Signal): string {
  if (signal.status === 'active' && signal.expires_at && Date.parse(signal.expires_at) < Date.now()) return 'expired';
  return signal.status;
}

function SignalTable({ signals, isLoading }: { signals: Signal[]; isLoading: boolean }) {
  return (
    <div className="table-wrap">
      <table className="signals">
        <caption>{isLoading ? 'Connecting…' : `${signals.length} signal${signals.length === 1 ? '' : 's'}, newest first`}</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Symbol</th>
            <th scope="col">Market</th>
            <th scope="col">Side</th>
            <th scope="col">Entry</th>
            <th scope="col">Stop</th>
            <th scope="col">Targets</th>
            <th scope="col">Conf.</th>
            <th scope="col">Provider</th>
            <th scope="col">Tier</th>
            <th scope="col">Status</th>
          </tr>
        </thead>
        <tbody>
          {signals.map((signal) => {
            const status = statusOf(signal);
            return (
              // Keyed by version: an amended row is a new element, so it flashes like a new one.
              <tr
                key={`${signal.id}:${signal.version}`}
                className={`flash ${status === 'active' ? '' : 'inactive'}`}
                data-signal={signal.external_id}
                data-version={signal.version}
              >
                <td>{time(signal.issued_at)}</td>
                <th scope="row">{signal.symbol}</th>
                <td>{signal.market}</td>
                <td className={`side ${signal.side}`}>{signal.side}</td>
                <td className="num">{signal.entry}</td>
                <td className="num">{signal.stop_loss ?? '—'}</td>
                <td className="num">{signal.take_profits.join(' / ') || '—'}</td>
                <td className="num">{signal.confidence}</td>
                <td title={signal.provider}>{signal.provider.slice(0, 8)}</td>
                <td>{signal.premium ? <span className="premium">Premium</span> : 'Regular'}</td>
                <td>
                  <span className={`status ${status}`}>{status}</span>
                  {signal.version > 1 && <span className="amended"> amended v{signal.version}</span>}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
