import { useEffect, useState } from 'react';
import { Admin } from './Admin.js';
import { Feed } from './Feed.js';
import { clearSession, loadSession, SESSION_ENDED, type Session } from './session.js';
import { SignIn } from './SignIn.js';

/** `/` is the feed, `/admin` the dashboard; links change the path without a reload. */
function usePath(): [string, (path: string) => void] {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const onPop = () => setPath(location.pathname);
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, []);
  const navigate = (next: string) => {
    history.pushState(null, '', next);
    setPath(next);
  };
  return [path, navigate];
}

export function App() {
  const [session, setSession] = useState<Session | null>(loadSession);
  const [ended, setEnded] = useState<string | null>(null);
  const [path, navigate] = usePath();
  // An answer 401 anywhere (the dashboard's requests) ends the session: sign in again.
  useEffect(() => {
    const onEnded = () => {
      clearSession();
      setSession(null);
      setEnded('Your session has ended: sign in again.');
    };
    addEventListener(SESSION_ENDED, onEnded);
    return () => removeEventListener(SESSION_ENDED, onEnded);
  }, []);

  if (!session) {
    return (
      <SignIn
        message={ended ?? undefined}
        onSignedIn={(next) => {
          setEnded(null);
          setSession(next);
        }}
      />
    );
  }
  const signOut = () => {
    clearSession();
    setSession(null);
  };
  const isAdmin = session.role === 'admin';
  return (
    <>
      <header className="bar">
        <a
          className="brand"
          href="/"
          onClick={(event) => {
            event.preventDefault();
            navigate('/');
          }}
        >
          signalcast
        </a>
        <nav aria-label="Main">
          <a
            href="/"
            aria-current={path !== '/admin' ? 'page' : undefined}
            onClick={(event) => {
              event.preventDefault();
              navigate('/');
            }}
          >
            Feed
          </a>
          {isAdmin && (
            <a
              href="/admin"
              aria-current={path === '/admin' ? 'page' : undefined}
              onClick={(event) => {
                event.preventDefault();
                navigate('/admin');
              }}
            >
              Dashboard
            </a>
          )}
        </nav>
        <span className="who">
          {session.email}
          <button type="button" className="link" onClick={signOut}>
            Sign out
          </button>
        </span>
      </header>
      <main>
        {path === '/admin' ? (
          isAdmin ? (
            <Admin session={session} />
          ) : (
            <section className="panel" role="alert">
              <h1>Not allowed</h1>
              <p>The dashboard is for administrators. You are signed in as a {session.role}.</p>
            </section>
          )
        ) : (
          // One feed (one client) per user: another user signing in starts from nothing.
          <Feed key={session.userId} session={session} onSession={setSession} />
        )}
      </main>
    </>
  );
}
