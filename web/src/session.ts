import { UnauthorizedError } from '@signalcast/client';

/** Who is signed in in this tab: the token and what its claims say (read, not trusted: the server checks). */
export interface Session {
  token: string;
  email: string;
  userId: string;
  role: 'subscriber' | 'provider' | 'admin';
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

const KEY = 'signalcast.session';

function claims(token: string): { sub?: string; role?: string; exp?: number } {
  try {
    const payload = token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(payload));
  } catch {
    return {};
  }
}

/** The tab's session (sessionStorage: closing the tab signs out), if any and not expired. */
export function loadSession(): Session | null {
  try {
    const session = JSON.parse(sessionStorage.getItem(KEY) ?? 'null') as Session | null;
    return session && session.expiresAt > Date.now() ? session : null;
  } catch {
    return null;
  }
}

export function clearSession(): void {
  sessionStorage.removeItem(KEY);
}

export class SignInError extends Error {}

export async function signIn(email: string, password: string): Promise<Session> {
  const response = await fetch('/api/auth/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new SignInError(
      response.status === 401
        ? 'Wrong email or password.'
        : response.status === 429
          ? 'Too many attempts: wait a minute.'
          : (body.message ?? `Sign-in failed (${response.status}).`),
    );
  }
  const token: string = body.access_token;
  const { sub, role, exp } = claims(token);
  const session: Session = {
    token,
    email: email.trim().toLowerCase(),
    userId: sub ?? '',
    role: (role as Session['role']) ?? 'subscriber',
    expiresAt: (exp ?? Date.now() / 1000 + Number(body.expires_in ?? 0)) * 1000,
  };
  sessionStorage.setItem(KEY, JSON.stringify(session));
  return session;
}

/**
 * The SDK's `getToken`: the tab's token while it is valid. There is no refresh token, so an
 * expired (or refused) token means signing in again: `UnauthorizedError` stops the client, the
 * page asks for the password, and the feed resumes from where it was.
 */
export function tokenProvider(current: () => Session | null) {
  return async ({ reason }: { reason: string }): Promise<string> => {
    const session = current();
    if (!session || session.expiresAt - Date.now() < 5_000 || reason === 'unauthorized' || reason === 'expiring') {
      throw new UnauthorizedError('Your session has ended: sign in again.');
    }
    return session.token;
  };
}

export interface DemoAccounts {
  password: string;
  accounts: { email: string; role: string; tier: string }[];
}

/** The demo accounts, when this service runs with the demo seed (204 otherwise). */
export async function demoAccounts(): Promise<DemoAccounts | null> {
  const response = await fetch('/api/v1/demo').catch(() => null);
  return response?.status === 200 ? ((await response.json()) as DemoAccounts) : null;
}

/** Dispatched on `window` when the service refuses the session's token: the app asks to sign in again. */
export const SESSION_ENDED = 'signalcast:session-ended';

/** An authenticated JSON request; a 401 ends the session. */
export async function api<T>(session: Session, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${session.token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  if (response.status === 401) dispatchEvent(new Event(SESSION_ENDED));
  if (response.status === 204) return undefined as T;
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, answer.code ?? 'error', answer.message ?? `HTTP ${response.status}`);
  return answer as T;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
