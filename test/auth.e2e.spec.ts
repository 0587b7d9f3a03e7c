import { createHmac } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api, signalBody, UpgradeRefused, WsClient } from './support/clients.js';
import { ADMIN, createTestDatabase, startApp, TEST_JWT_SECRET, type TestApp, type TestDatabase } from './support/test-app.js';

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('authentication and authorization', () => {
  let database: TestDatabase;
  let app: TestApp;
  let api: Api;
  let subscriber: Awaited<ReturnType<Api['user']>>;

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await startApp(database, { AUTH_RATE_LIMIT_MAX: '1000' });
    api = new Api(app);
    subscriber = await api.user('pro');
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  const claims = () => ({ sub: subscriber.id, role: 'subscriber', iss: 'signalcast', aud: 'signalcast-clients' });
  const forged = {
    garbage: () => 'not-a-jwt',
    expired: () => jwt.sign({ ...claims(), exp: Math.floor(Date.now() / 1000) - 60 }, TEST_JWT_SECRET, { algorithm: 'HS256' }),
    wrongSecret: () => jwt.sign(claims(), 'another-secret-that-is-also-long-enough-000', { algorithm: 'HS256', expiresIn: 600 }),
    algNone: () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims(), exp: Math.floor(Date.now() / 1000) + 600 })}.`,
    hs512: () => jwt.sign(claims(), TEST_JWT_SECRET, { algorithm: 'HS512', expiresIn: 600 }),
    wrongIssuer: () => jwt.sign({ ...claims(), iss: 'someone-else' }, TEST_JWT_SECRET, { algorithm: 'HS256', expiresIn: 600 }),
    wrongAudience: () => jwt.sign({ ...claims(), aud: 'other' }, TEST_JWT_SECRET, { algorithm: 'HS256', expiresIn: 600 }),
    noExpiry: () => {
      const header = b64({ alg: 'HS256', typ: 'JWT' });
      const payload = b64(claims());
      const signature = createHmac('sha256', TEST_JWT_SECRET).update(`${header}.${payload}`).digest('base64url');
      return `${header}.${payload}.${signature}`;
    },
  };

  it('issues a bearer token for valid credentials', async () => {
    const result = await api.request('POST', '/api/auth/token', { body: ADMIN });
    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({ token_type: 'Bearer', expires_in: 3600 });
    const decoded = jwt.verify(result.body.access_token, TEST_JWT_SECRET, { algorithms: ['HS256'] }) as jwt.JwtPayload;
    expect(decoded).toMatchObject({ role: 'admin', iss: 'signalcast', aud: 'signalcast-clients' });
    expect(decoded).not.toHaveProperty('tier');
  });

  it('answers a wrong password and an unknown user identically', async () => {
    const wrong = await api.request('POST', '/api/auth/token', { body: { email: ADMIN.email, password: 'wrong-password' } });
    const unknown = await api.request('POST', '/api/auth/token', { body: { email: 'nobody@x.io', password: 'wrong-password' } });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(wrong.body).toEqual(unknown.body);
    expect(wrong.body).toEqual({ code: 'invalid_credentials', message: 'Invalid email or password' });
  });

  it('rejects a malformed token request with 400 naming the field', async () => {
    const result = await api.request('POST', '/api/auth/token', { body: { email: ADMIN.email } });
    expect(result.status).toBe(400);
    expect(result.body.code).toBe('validation_failed');
    expect(result.body.details).toEqual([expect.objectContaining({ field: 'password' })]);
    const notJson = await api.request('POST', '/api/auth/token', { rawBody: '{"email":', headers: { 'content-type': 'application/json' } });
    expect(notJson.status).toBe(400);
    expect(notJson.body.code).toBe('bad_request');
  });

  for (const [name, make] of Object.entries(forged)) {
    it(`refuses a ${name} token on HTTP (401) and on the WebSocket upgrade (401)`, async () => {
      const token = make();
      const http = await api.request('GET', '/api/v1/signals', { token });
      expect(http.status).toBe(401);
      expect(http.body.code).toBe('unauthorized');
      const refused = await WsClient.open(app.wsUrl, { token }).then(
        () => undefined,
        (error) => error,
      );
      expect(refused).toBeInstanceOf(UpgradeRefused);
      expect(refused.status).toBe(401);
    });
  }

  it('refuses a WebSocket upgrade without a token, and accepts the token in an Authorization header', async () => {
    const refused = await WsClient.open(app.wsUrl).catch((error) => error);
    expect(refused).toBeInstanceOf(UpgradeRefused);
    expect(refused.status).toBe(401);
    const client = await WsClient.connect(app.wsUrl, { headers: { authorization: `Bearer ${subscriber.token}` } });
    expect(client.messages[0]).toMatchObject({ type: 'welcome', user_id: subscriber.id, tier: 'pro' });
    await client.close();
  });

  it('guards the sync endpoint: 401 without or with a bad key, 403 for a subscriber, 401 after revocation', async () => {
    const path = '/api/v1/external-signals/sync/signal';
    const none = await api.request('POST', path, { body: signalBody() });
    expect(none.status).toBe(401);
    expect((await api.request('POST', path, { apiKey: 'sc_live_bogus', body: signalBody() })).status).toBe(401);
    const asSubscriber = await api.request('POST', path, { token: subscriber.token, body: signalBody() });
    expect(asSubscriber.status).toBe(403);
    expect(asSubscriber.body.code).toBe('forbidden');

    const provider = await api.provider();
    expect((await api.sync(provider.apiKey, signalBody())).status).toBe(201);
    const revoke = await api.request('DELETE', `/api/v1/admin/api-keys/${provider.keyId}`, { token: await api.admin() });
    expect(revoke.status).toBe(204);
    const after = await api.sync(provider.apiKey, signalBody());
    expect(after.status).toBe(401);
    const twice = await api.request('DELETE', `/api/v1/admin/api-keys/${provider.keyId}`, { token: await api.admin() });
    expect(twice.status).toBe(404);
  });

  it('takes admin rights away at once when an admin is demoted, without waiting for the token to expire', async () => {
    const other = await api.user('elite', 'admin');
    expect((await api.request('GET', '/ws/stats', { token: other.token })).status).toBe(200);
    const demote = await api.request('PATCH', `/api/v1/admin/users/${other.id}`, {
      token: await api.admin(),
      body: { role: 'subscriber' },
    });
    expect(demote.status).toBe(200);
    expect((await api.request('GET', '/ws/stats', { token: other.token })).status).toBe(403);
  });

  it('stops a provider key at once when its user stops being a provider', async () => {
    const provider = await api.provider();
    expect((await api.sync(provider.apiKey, signalBody())).status).toBe(201);
    await api.request('PATCH', `/api/v1/admin/users/${provider.id}`, { token: await api.admin(), body: { role: 'subscriber' } });
    expect((await api.sync(provider.apiKey, signalBody())).status).toBe(403);
  });

  it('keeps admin endpoints for admins', async () => {
    const admin = await api.admin();
    expect((await api.request('GET', '/ws/stats')).status).toBe(401);
    expect((await api.request('GET', '/ws/stats', { token: subscriber.token })).status).toBe(403);
    const asSubscriber = await api.request('POST', '/api/v1/admin/users', {
      token: subscriber.token,
      body: { email: 'x@y.io', password: 'long-enough-password', role: 'admin', tier: 'elite' },
    });
    expect(asSubscriber.status).toBe(403);

    const duplicate = await api.request('POST', '/api/v1/admin/users', {
      token: admin,
      body: { email: ADMIN.email, password: 'long-enough-password' },
    });
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.code).toBe('conflict');

    const badTier = await api.request('PATCH', `/api/v1/admin/users/${subscriber.id}`, { token: admin, body: { tier: 'platinum' } });
    expect(badTier.status).toBe(400);
    expect(badTier.body.details[0].field).toBe('tier');
    const unknownField = await api.request('PATCH', `/api/v1/admin/users/${subscriber.id}`, {
      token: admin,
      body: { tier: 'pro', plan: 1 },
    });
    expect(unknownField.status).toBe(400);
    expect(unknownField.body.details[0]).toEqual({ field: 'plan', message: 'unknown field' });
    const missing = await api.request('PATCH', '/api/v1/admin/users/00000000-0000-4000-8000-000000000000', {
      token: admin,
      body: { tier: 'pro' },
    });
    expect(missing.status).toBe(404);
    expect((await api.request('PATCH', '/api/v1/admin/users/not-a-uuid', { token: admin, body: { tier: 'pro' } })).status).toBe(400);

    const keyForSubscriber = await api.request('POST', `/api/v1/admin/users/${subscriber.id}/api-keys`, { token: admin });
    expect(keyForSubscriber.status).toBe(409);
  });
});

describe('token endpoint rate limit', () => {
  let database: TestDatabase;
  let app: TestApp;

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await startApp(database, { AUTH_RATE_LIMIT_MAX: '3', AUTH_RATE_LIMIT_WINDOW_MS: '60000' });
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  it('answers 429 with Retry-After once a client exceeds the limit', async () => {
    const api = new Api(app);
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      statuses.push((await api.request('POST', '/api/auth/token', { body: { email: 'a@b.io', password: 'nope' } })).status);
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
    const limited = await api.request('POST', '/api/auth/token', { body: ADMIN });
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe('rate_limited');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});

describe('token rate limit behind a proxy (TRUST_PROXY)', () => {
  let database: TestDatabase;
  let app: TestApp;

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await startApp(database, { AUTH_RATE_LIMIT_MAX: '1', TRUST_PROXY: '1' });
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  it('limits each client by its forwarded address', async () => {
    const api = new Api(app);
    const attempt = (ip: string) =>
      api.request('POST', '/api/auth/token', { body: { email: 'a@b.io', password: 'nope' }, headers: { 'x-forwarded-for': ip } });
    expect((await attempt('203.0.113.1')).status).toBe(401);
    expect((await attempt('203.0.113.2')).status).toBe(401);
    expect((await attempt('203.0.113.1')).status).toBe(429);
    // An IPv6 client is counted by its /64: a fresh address in the same network is the same client.
    expect((await attempt('2001:db8:1:2::1')).status).toBe(401);
    expect((await attempt('2001:db8:1:2:abcd:1:2:3')).status).toBe(429);
    expect((await attempt('2001:db8:1:3::1')).status).toBe(401);
  });
});
