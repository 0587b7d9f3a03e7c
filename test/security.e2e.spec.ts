import http from 'node:http';
import { PassThrough } from 'node:stream';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api, UpgradeRefused, WsClient } from './support/clients.js';
import { ADMIN, createTestDatabase, startApp, TEST_JWT_SECRET, type TestApp, type TestDatabase } from './support/test-app.js';

const PREVIOUS_SECRET = 'the-secret-before-the-rotation-0000000000000';
const UNRELATED_SECRET = 'a-secret-this-service-never-had-00000000000';

/** A well-formed access token for `userId`, signed with `secret`. */
const signWith = (secret: string, userId: string, expiresIn = 600) =>
  jwt.sign({ role: 'subscriber' }, secret, {
    algorithm: 'HS256',
    subject: userId,
    issuer: 'signalcast',
    audience: 'signalcast-clients',
    expiresIn,
  });

/** The app on a fresh database, with its logs collected. */
function useApp(overrides: Record<string, string> = {}) {
  const context = { lines: [] as string[] } as { database: TestDatabase; app: TestApp; api: Api; lines: string[] };
  beforeAll(async () => {
    context.database = await createTestDatabase();
    const destination = new PassThrough();
    destination.on('data', (chunk: Buffer) => context.lines.push(...chunk.toString().split('\n').filter(Boolean)));
    context.app = await startApp(context.database, { LOG_LEVEL: 'debug', ...overrides }, { logDestination: destination });
    context.api = new Api(context.app);
  });
  afterAll(async () => {
    await context.app?.close();
    await context.database?.drop();
  });
  return context;
}

async function expectRefused(context: { app: TestApp; api: Api }, token: string): Promise<void> {
  const response = await context.api.request('GET', '/api/v1/signals', { token });
  expect(response.status).toBe(401);
  expect(response.body.code).toBe('unauthorized');
  const refused = await WsClient.open(context.app.wsUrl, { token }).catch((error) => error);
  expect(refused).toBeInstanceOf(UpgradeRefused);
  expect(refused.status).toBe(401);
}

/** The app of this file's tests but one: mid-rotation, so the headers are checked on it too. */
const context = useApp({ JWT_SECRET_PREVIOUS: PREVIOUS_SECRET });

describe('JWT secret rotation, with JWT_SECRET_PREVIOUS set', () => {
  it('accepts a token signed with the previous secret on HTTP, on the WebSocket upgrade and in an auth refresh', async () => {
    const user = await context.api.user('pro');
    const token = signWith(PREVIOUS_SECRET, user.id);
    expect((await context.api.request('GET', '/api/v1/signals', { token })).status).toBe(200);

    const socket = await WsClient.connect(context.app.wsUrl, { token });
    expect(socket.messages[0]).toMatchObject({ type: 'welcome', user_id: user.id, tier: 'pro' });
    await socket.close();

    const refreshed = await WsClient.connect(context.app.wsUrl, { token: user.token });
    expect(await refreshed.request({ type: 'auth', token })).toMatchObject({ type: 'ack' });
    const unrelated = await refreshed.request({ type: 'auth', token: signWith(UNRELATED_SECRET, user.id) });
    expect(unrelated).toMatchObject({ type: 'error', code: 'invalid_token' });
    await refreshed.close();
  });

  it('refuses a token signed with an unrelated secret', async () => {
    const user = await context.api.user('free');
    await expectRefused(context, signWith(UNRELATED_SECRET, user.id));
  });

  it('signs new tokens with JWT_SECRET only', async () => {
    const user = await context.api.user('free');
    expect(() => jwt.verify(user.token, TEST_JWT_SECRET, { algorithms: ['HS256'] })).not.toThrow();
    expect(() => jwt.verify(user.token, PREVIOUS_SECRET, { algorithms: ['HS256'] })).toThrow(/invalid signature/);
  });

  it('refuses a token signed with the previous secret that lives longer than JWT_TTL_SECONDS (a forgery with a leaked old secret)', async () => {
    const user = await context.api.user('pro');
    await expectRefused(context, signWith(PREVIOUS_SECRET, user.id, 3600 + 1));
    const withoutIat = jwt.sign({ role: 'subscriber', exp: Math.floor(Date.now() / 1000) + 600 }, PREVIOUS_SECRET, {
      algorithm: 'HS256',
      subject: user.id,
      issuer: 'signalcast',
      audience: 'signalcast-clients',
      noTimestamp: true,
    });
    await expectRefused(context, withoutIat);
  });

  it('never logs either secret', async () => {
    await context.api.request('GET', '/api/v1/signals', { token: signWith(UNRELATED_SECRET, 'nobody') });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(context.lines.length).toBeGreaterThan(5);
    for (const secret of [TEST_JWT_SECRET, PREVIOUS_SECRET]) {
      expect(context.lines.filter((line) => line.includes(secret))).toEqual([]);
    }
  });
});

describe('JWT secret rotation, without JWT_SECRET_PREVIOUS', () => {
  const unrotated = useApp();

  it('refuses a token signed with the previous secret', async () => {
    const user = await unrotated.api.user('pro');
    await expectRefused(unrotated, signWith(PREVIOUS_SECRET, user.id));
    expect((await unrotated.api.request('GET', '/api/v1/signals', { token: user.token })).status).toBe(200);
  });
});

/** The Content-Security-Policy as directive → sources. */
function csp(headers: Headers): Record<string, string[]> {
  const value = headers.get('content-security-policy');
  expect(value).toBeTruthy();
  return Object.fromEntries(
    value!.split(';').map((directive) => {
      const [name, ...sources] = directive.trim().split(/\s+/);
      return [name, sources];
    }),
  );
}

describe('security headers', () => {
  it('forbid caching per-user answers (the API, /ws/stats): no browser or shared cache keeps them', async () => {
    const token = await context.api.admin();
    const answers = [
      await fetch(`${context.app.baseUrl}/api/v1/signals`, { headers: { authorization: `Bearer ${token}` } }),
      await fetch(`${context.app.baseUrl}/api/v1/signals`),
      await fetch(`${context.app.baseUrl}/ws/stats`, { headers: { authorization: `Bearer ${token}` } }),
      await fetch(`${context.app.baseUrl}/api/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(ADMIN),
      }),
    ];
    // Express routes case-insensitively and takes absolute-form targets: the header must not depend on spelling.
    answers.push(await fetch(`${context.app.baseUrl}/API/v1/signals`, { headers: { authorization: `Bearer ${token}` } }));
    answers.push(await fetch(`${context.app.baseUrl}/WS/stats`, { headers: { authorization: `Bearer ${token}` } }));
    expect(answers.map((answer) => answer.status)).toEqual([200, 401, 200, 200, 200, 200]);
    for (const answer of answers) expect(answer.headers.get('cache-control')).toBe('no-store');
  });

  it('are on every API response, errors included, without X-Powered-By', async () => {
    const host = new URL(context.app.baseUrl).host;
    const responses = {
      health: await fetch(`${context.app.baseUrl}/health`),
      unauthorized: await fetch(`${context.app.baseUrl}/api/v1/signals`),
      notFound: await fetch(`${context.app.baseUrl}/no-such-route`),
      tooLarge: await fetch(`${context.app.baseUrl}/api/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'a@b.io', password: 'x'.repeat(300_000) }),
      }),
    };
    expect(Object.values(responses).map((r) => r.status)).toEqual([200, 401, 404, 413]);
    for (const { headers } of Object.values(responses)) {
      expect(headers.get('x-content-type-options')).toBe('nosniff');
      expect(headers.get('x-powered-by')).toBeNull();
      expect(headers.get('x-frame-options')).toBe('SAMEORIGIN');
      expect(headers.get('strict-transport-security')).toMatch(/^max-age=\d+/);
      expect(headers.get('referrer-policy')).toBe('no-referrer');
      expect(headers.get('cross-origin-opener-policy')).toBe('same-origin');
      const policy = csp(headers);
      expect(policy).toMatchObject({
        'default-src': ["'self'"],
        'script-src': ["'self'"],
        'script-src-attr': ["'none'"],
        'object-src': ["'none'"],
        'base-uri': ["'self'"],
        'frame-ancestors': ["'self'"],
        // The web app's WebSocket to /ws/signals, on the page's own host.
        'connect-src': ["'self'", `ws://${host}`, `wss://${host}`],
      });
      expect(policy).not.toHaveProperty('upgrade-insecure-requests');
    }
  });

  it('names no other host in connect-src when the Host header is not a plain host', async () => {
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const { port } = new URL(context.app.baseUrl);
      http
        .get({ host: '127.0.0.1', port, path: '/health/live', headers: { host: "evil.example; script-src 'unsafe-inline'" } }, resolve)
        .on('error', reject);
    });
    response.resume();
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-security-policy']).toContain("connect-src 'self';");
    expect(response.headers['content-security-policy']).not.toContain('evil');
  });

  it('let Swagger UI at /docs load: its page, scripts and styles come from this origin under the policy', async () => {
    const page = await fetch(`${context.app.baseUrl}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    const policy = csp(page.headers);

    // Every script is a file from this origin ('self'): an inline one would be blocked.
    const scripts = [...html.matchAll(/<script\b([^>]*)>/g)].map(([, attributes]) => /\bsrc="([^"]+)"/.exec(attributes!)?.[1]);
    expect(scripts.length).toBeGreaterThanOrEqual(3);
    expect(scripts).not.toContain(undefined);
    expect(policy['script-src']).toEqual(["'self'"]);
    // The page has inline <style> blocks and style attributes: the policy must allow them.
    expect(html).toMatch(/<style>/);
    expect(policy['style-src']).toEqual(["'self'", "'unsafe-inline'"]);

    const stylesheets = [...html.matchAll(/<link\b[^>]*rel="stylesheet"[^>]*href="([^"]+)"/g)].map(([, href]) => href!);
    const icons = [...html.matchAll(/<link\b[^>]*rel="icon"[^>]*href="([^"]+)"/g)].map(([, href]) => href!);
    expect(stylesheets.length).toBeGreaterThanOrEqual(1);
    const assets = [
      ...scripts.map((src) => ({ url: new URL(src!, page.url), type: /javascript/ })),
      ...stylesheets.map((href) => ({ url: new URL(href, page.url), type: /^text\/css/ })),
      ...icons.map((href) => ({ url: new URL(href, page.url), type: /^image\// })),
    ];
    for (const { url, type } of assets) {
      expect(url.origin).toBe(context.app.baseUrl);
      const asset = await fetch(url);
      expect(asset.status, url.pathname).toBe(200);
      // With nosniff, a script or stylesheet served under another type is refused.
      expect(asset.headers.get('content-type'), url.pathname).toMatch(type);
      expect(asset.headers.get('x-content-type-options')).toBe('nosniff');
      expect((await asset.arrayBuffer()).byteLength, url.pathname).toBeGreaterThan(0);
    }
  });
});
