import { useEffect, useRef, useState, type FormEvent } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { api, ApiError, type Session } from './session.js';
import { formatMs, formatShare, SLO_OBJECTIVE, sloVerdict, TIERS, tierLatency, windowLabel, type Stats } from './stats.js';

interface User {
  id: string;
  email: string;
  role: string;
  tier: string;
}
interface ApiKey {
  id: string;
  prefix: string;
  created_at: string;
  revoked_at: string | null;
}

const REFRESH_MS = 5_000;

/** The operator's view: the cluster's `/ws/stats` every 5 s while the tab is visible, and the users. */
export function Admin({ session }: { session: Session }) {
  return (
    <>
      <StatsPanel session={session} />
      <UsersPanel session={session} />
    </>
  );
}

function StatsPanel({ session }: { session: Session }) {
  const [stats, setStats] = useState<Stats | null>(null);
  const [error, setError] = useState<string | null>(null);
  const series = useRef<{ at: number[]; connections: number[]; deliveries: number[]; last?: { at: number; delivered: number } }>({
    at: [],
    connections: [],
    deliveries: [],
  });

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let live = true;
    const load = async () => {
      clearTimeout(timer);
      if (document.visibilityState === 'visible') {
        try {
          const next = await api<Stats>(session, 'GET', '/ws/stats');
          if (!live) return;
          const at = Date.now() / 1000;
          const s = series.current;
          const rate = s.last ? Math.max(0, (next.messages_delivered - s.last.delivered) / Math.max(0.001, at - s.last.at)) : 0;
          s.last = { at, delivered: next.messages_delivered };
          s.at.push(at);
          s.connections.push(next.total_connections);
          s.deliveries.push(Math.round(rate * 10) / 10);
          setStats(next);
          setError(null);
        } catch (caught) {
          if (live) setError(caught instanceof Error ? caught.message : String(caught));
        }
      }
      if (live) timer = setTimeout(load, REFRESH_MS);
    };
    const onVisible = () => document.visibilityState === 'visible' && void load();
    document.addEventListener('visibilitychange', onVisible);
    void load();
    return () => {
      live = false;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, [session]);

  return (
    <section className="panel" aria-labelledby="stats-title">
      <h1 id="stats-title">Cluster</h1>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {stats && (
        <>
          <dl className="cards">
            <Card label="Connections" value={stats.total_connections} testId="stat-connections" />
            <Card label="Active users" value={stats.active_users} testId="stat-users" />
            {TIERS.map((tier) => (
              <Card key={tier} label={`Users ${tier}`} value={stats.users_by_tier[tier] ?? 0} testId={`stat-tier-${tier}`} />
            ))}
            <Card label="Signals broadcast" value={stats.signals_broadcast} testId="stat-broadcast" />
            <Card label="Messages delivered" value={stats.messages_delivered} testId="stat-delivered" />
            <Card label="Slow consumers cut" value={stats.slow_consumers_disconnected} testId="stat-slow" />
            <Card label="Bus" value={stats.bus} testId="stat-bus" />
          </dl>
          <LatencyPanel stats={stats} />
          <Chart series={series.current} version={series.current.at.length} />
          <div className="table-wrap">
            <table>
              <caption>Instances</caption>
              <thead>
                <tr>
                  <th scope="col">Instance</th>
                  <th scope="col">Connections</th>
                  <th scope="col">Delivered seq</th>
                  <th scope="col">Write conflicts</th>
                  <th scope="col">Gaps refilled</th>
                </tr>
              </thead>
              <tbody>
                {stats.instances.map((instance) => (
                  <tr key={instance.instance_id}>
                    <th scope="row">{instance.instance_id}</th>
                    <td className="num">{instance.total_connections}</td>
                    <td className="num">{instance.delivered_seq}</td>
                    <td className="num">{instance.write_conflicts}</td>
                    <td className="num">{instance.gaps_refilled}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}

function Card({ label, value, testId }: { label: string; value: number | string; testId: string }) {
  return (
    <div className="card">
      <dt>{label}</dt>
      <dd data-testid={testId}>{value}</dd>
    </div>
  );
}

const VERDICTS = {
  met: { badge: 'ok', text: 'SLO met' },
  missed: { badge: 'bad', text: 'SLO missed' },
  'no-receipts': { badge: 'wait', text: 'No receipts yet' },
} as const;

/**
 * Delivery latency per tier and the SLO, over the server's window, from client receipts. A
 * receipt's latency is its arrival minus the signal's commit: an upper bound that includes half a
 * round trip. Hidden behind one line when the server predates receipts.
 */
function LatencyPanel({ stats }: { stats: Stats }) {
  const slo = stats.slo;
  return (
    <section className="latency" aria-labelledby="latency-title" data-testid="latency">
      <h2 id="latency-title">Delivery latency ({windowLabel(slo?.window_seconds ?? 300)})</h2>
      {!slo || !stats.delivery_latency_ms ? (
        <p className="muted" data-testid="latency-unavailable">
          This server does not report delivery latency: it predates delivery receipts.
        </p>
      ) : (
        <>
          <SloLine slo={slo} />
          <div className="table-wrap">
            <table>
              <caption>From commit to the client&apos;s receipt, per tier (an upper bound: it includes half a round trip)</caption>
              <thead>
                <tr>
                  <th scope="col">Tier</th>
                  <th scope="col" className="num">
                    p50
                  </th>
                  <th scope="col" className="num">
                    p99
                  </th>
                  <th scope="col" className="num">
                    Receipts
                  </th>
                </tr>
              </thead>
              <tbody>
                {TIERS.map((tier) => {
                  const latency = tierLatency(stats, tier);
                  const over = latency.p99 !== null && latency.p99 > slo.target_ms;
                  return (
                    <tr key={tier} data-tier={tier}>
                      <th scope="row">{tier}</th>
                      <td className="num" data-testid={`latency-${tier}-p50`}>
                        {formatMs(latency.p50)}
                      </td>
                      <td className="num">
                        <span data-testid={`latency-${tier}-p99`} className={over ? 'over' : undefined}>
                          {formatMs(latency.p99)}
                        </span>
                        {over && <span className="visually-hidden"> (over the {slo.target_ms} ms target)</span>}
                      </td>
                      <td className="num" data-testid={`latency-${tier}-count`}>
                        {latency.count}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}

/** "SLO met: 99.2 % within 500 ms", against the page's objective (SLO_OBJECTIVE). */
function SloLine({ slo }: { slo: NonNullable<Stats['slo']> }) {
  const verdict = sloVerdict(slo);
  const objective = `objective ${SLO_OBJECTIVE * 100} %`;
  return (
    <p className="slo" data-testid="slo" data-verdict={verdict}>
      <span className={`badge ${VERDICTS[verdict].badge}`} data-testid="slo-verdict">
        {VERDICTS[verdict].text}
      </span>
      {verdict === 'no-receipts' || slo.within === null ? (
        <span className="muted">
          {objective} within {slo.target_ms} ms
        </span>
      ) : (
        <>
          <span>
            <strong data-testid="slo-within">{formatShare(slo.within)}</strong> within {slo.target_ms} ms
          </span>
          <span className="muted">
            {objective}, {slo.count} {slo.count === 1 ? 'receipt' : 'receipts'}
          </span>
        </>
      )}
    </p>
  );
}

/** Connections and deliveries per second since the page opened (uPlot). */
function Chart({ series, version }: { series: { at: number[]; connections: number[]; deliveries: number[] }; version: number }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    const width = () => Math.max(280, (box.current?.clientWidth ?? 600) - 8);
    plot.current = new uPlot(
      {
        width: width(),
        height: 200,
        series: [
          {},
          { label: 'Connections', stroke: '#1f5fbf', width: 2 },
          { label: 'Deliveries/s', stroke: '#b3541e', width: 2, scale: 'rate' },
        ],
        axes: [{}, { label: 'connections' }, { side: 1, scale: 'rate', label: 'per second', grid: { show: false } }],
      },
      [[], [], []],
      box.current!,
    );
    const onResize = () => plot.current?.setSize({ width: width(), height: 200 });
    addEventListener('resize', onResize);
    return () => {
      removeEventListener('resize', onResize);
      plot.current?.destroy();
      plot.current = null;
    };
  }, []);
  useEffect(() => {
    plot.current?.setData([series.at, series.connections, series.deliveries]);
  }, [series, version]);
  return <div ref={box} className="chart" role="img" aria-label="Connections and deliveries per second since this page opened" />;
}

function UsersPanel({ session }: { session: Session }) {
  const [search, setSearch] = useState('');
  const [query, setQuery] = useState('');
  const [pages, setPages] = useState<string[]>(['']);
  const [page, setPage] = useState<{ data: User[]; next_cursor: string | null } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const cursor = pages.at(-1)!;

  useEffect(() => {
    let live = true;
    const params = new URLSearchParams({ limit: '20', ...(query && { email: query }), ...(cursor && { cursor }) });
    api<{ data: User[]; next_cursor: string | null }>(session, 'GET', `/api/v1/admin/users?${params}`).then(
      (answer) => live && (setPage(answer), setError(null)),
      (caught: Error) => live && setError(caught.message),
    );
    return () => {
      live = false;
    };
  }, [session, query, cursor, reload]);

  const onSearch = (event: FormEvent) => {
    event.preventDefault();
    setQuery(search.trim());
    setPages(['']);
  };
  return (
    <section className="panel" aria-labelledby="users-title">
      <h1 id="users-title">Users</h1>
      <form className="search" onSubmit={onSearch} role="search">
        <label>
          Email contains
          <input type="search" value={search} onChange={(event) => setSearch(event.target.value)} />
        </label>
        <button type="submit">Search</button>
      </form>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <div className="table-wrap">
        <table>
          <caption>{query ? `Users whose email contains “${query}”` : 'All users'}, by email</caption>
          <thead>
            <tr>
              <th scope="col">Email</th>
              <th scope="col">Role</th>
              <th scope="col">Tier</th>
              <th scope="col">API keys</th>
            </tr>
          </thead>
          <tbody>
            {page?.data.map((user) => (
              <UserRow key={user.id} session={session} user={user} onChanged={() => setReload((count) => count + 1)} />
            ))}
          </tbody>
        </table>
      </div>
      <nav className="pager" aria-label="Pages">
        <button type="button" disabled={pages.length < 2} onClick={() => setPages(pages.slice(0, -1))}>
          Previous
        </button>
        <span>Page {pages.length}</span>
        <button type="button" disabled={!page?.next_cursor} onClick={() => page?.next_cursor && setPages([...pages, page.next_cursor])}>
          Next
        </button>
      </nav>
    </section>
  );
}

function UserRow({ session, user, onChanged }: { session: Session; user: User; onChanged: () => void }) {
  // The select only chooses; Save applies. A tier change reaches the user's open sockets at once,
  // so arrowing through the options must not send one request per option.
  const [tier, setTier] = useState(user.tier);
  const [saving, setSaving] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const [keysOpen, setKeysOpen] = useState(false);
  useEffect(() => setTier(user.tier), [user.tier]);

  const save = async () => {
    setSaving(true);
    setMessage(null);
    try {
      await api(session, 'PATCH', `/api/v1/admin/users/${user.id}`, { tier });
      setMessage(`Tier set to ${tier}`);
      onChanged();
    } catch (caught) {
      setTier(user.tier);
      setMessage(caught instanceof ApiError ? `Not changed: ${caught.message}` : 'Not changed: the service cannot be reached');
    } finally {
      setSaving(false);
    }
  };
  return (
    <>
      <tr data-user={user.email}>
        <th scope="row">{user.email}</th>
        <td>{user.role}</td>
        <td>
          <select
            aria-label={`Tier of ${user.email}`}
            value={tier}
            disabled={saving}
            onChange={(event) => setTier(event.target.value)}
            aria-describedby={`msg-${user.id}`}
          >
            {TIERS.map((option) => (
              <option key={option} value={option}>
                {option}
              </option>
            ))}
          </select>
          <button
            type="button"
            disabled={saving || tier === user.tier}
            onClick={() => void save()}
            aria-label={`Save the tier of ${user.email}`}
          >
            Save
          </button>
          <span id={`msg-${user.id}`} className="muted" role="status">
            {message}
          </span>
        </td>
        <td>
          {user.role === 'provider' ? (
            <button type="button" aria-expanded={keysOpen} onClick={() => setKeysOpen(!keysOpen)}>
              {keysOpen ? 'Hide keys' : 'Keys'}
            </button>
          ) : (
            '—'
          )}
        </td>
      </tr>
      {keysOpen && (
        <tr>
          <td colSpan={4}>
            <ApiKeys session={session} user={user} />
          </td>
        </tr>
      )}
    </>
  );
}

function ApiKeys({ session, user }: { session: Session; user: User }) {
  const [keys, setKeys] = useState<ApiKey[] | null>(null);
  const [issued, setIssued] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const [busy, setBusy] = useState(false);
  const [confirming, setConfirming] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    api<{ data: ApiKey[] }>(session, 'GET', `/api/v1/admin/users/${user.id}/api-keys`).then(
      (answer) => live && setKeys(answer.data),
      (caught: Error) => live && setError(caught.message),
    );
    return () => {
      live = false;
    };
  }, [session, user.id, reload]);

  // One request at a time: a double click must not issue a key nobody sees.
  const run = async (work: () => Promise<void>) => {
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      await work();
      setReload((count) => count + 1);
    } catch (caught) {
      setError(caught instanceof Error ? caught.message : String(caught));
    } finally {
      setBusy(false);
      setConfirming(null);
    }
  };
  const issue = () =>
    run(async () => {
      const created = await api<{ key: string }>(session, 'POST', `/api/v1/admin/users/${user.id}/api-keys`);
      setIssued(created.key);
    });
  const revoke = (id: string) => run(() => api(session, 'DELETE', `/api/v1/admin/api-keys/${id}`));
  return (
    <div className="keys">
      {issued && (
        <p role="status">
          New key, shown only now: <code data-testid="new-key">{issued}</code>
        </p>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <ul>
        {keys?.map((key) => (
          <li key={key.id}>
            <code>{key.prefix}…</code> created {new Date(key.created_at).toLocaleString()}
            {key.revoked_at ? (
              <span className="muted"> revoked {new Date(key.revoked_at).toLocaleString()}</span>
            ) : confirming === key.id ? (
              // Revoking stops the provider's syncs at once and cannot be undone: a second, explicit step.
              <>
                <button type="button" className="danger" disabled={busy} onClick={() => void revoke(key.id)}>
                  Revoke {key.prefix}… now
                </button>
                <button type="button" className="link" onClick={() => setConfirming(null)}>
                  Keep it
                </button>
              </>
            ) : (
              <button type="button" disabled={busy} onClick={() => setConfirming(key.id)}>
                Revoke
              </button>
            )}
          </li>
        ))}
      </ul>
      <button type="button" disabled={busy} onClick={() => void issue()}>
        Issue a new key
      </button>
    </div>
  );
}
