import { useEffect, useState, type FormEvent } from 'react';
import { demoAccounts, signIn, SignInError, type DemoAccounts, type Session } from './session.js';

export function SignIn({
  onSignedIn,
  email: knownEmail,
  message,
}: {
  onSignedIn: (session: Session) => void;
  email?: string;
  message?: string;
}) {
  const [email, setEmail] = useState(knownEmail ?? '');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [demo, setDemo] = useState<DemoAccounts | null>(null);

  useEffect(() => {
    let live = true;
    void demoAccounts().then((accounts) => live && setDemo(accounts));
    return () => {
      live = false;
    };
  }, []);

  const submit = async (as: string, secret: string) => {
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await signIn(as, secret));
    } catch (caught) {
      setError(caught instanceof SignInError ? caught.message : 'The service cannot be reached.');
    } finally {
      setBusy(false);
    }
  };
  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    void submit(email, password);
  };

  return (
    <main className="signin">
      <section className="panel">
        <h1>Sign in to signalcast</h1>
        {message && <p role="status">{message}</p>}
        <form onSubmit={onSubmit}>
          <label>
            Email
            <input type="email" autoComplete="username" required value={email} onChange={(event) => setEmail(event.target.value)} />
          </label>
          <label>
            Password
            <input
              type="password"
              autoComplete="current-password"
              required
              value={password}
              onChange={(event) => setPassword(event.target.value)}
            />
          </label>
          {error && (
            <p className="error" role="alert">
              {error}
            </p>
          )}
          <button type="submit" disabled={busy}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </form>
        {demo && (
          <div className="demo">
            <h2>Demo accounts</h2>
            <p>
              This service runs with the demo seed (password <code>{demo.password}</code>).
            </p>
            <ul>
              {demo.accounts
                .filter((account) => account.role !== 'provider')
                .map((account) => (
                  <li key={account.email}>
                    <button type="button" disabled={busy} onClick={() => void submit(account.email, demo.password)}>
                      Sign in as {account.email}
                    </button>
                    <span className="muted">
                      {account.role}, {account.tier}
                    </span>
                  </li>
                ))}
            </ul>
          </div>
        )}
      </section>
    </main>
  );
}
