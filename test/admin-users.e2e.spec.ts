import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api } from './support/clients.js';
import { createTestDatabase, startApp, useTestApp, type TestApp, type TestDatabase } from './support/test-app.js';

const USER_VIEW_KEYS = ['created_at', 'email', 'id', 'role', 'tier', 'updated_at'];
const API_KEY_VIEW_KEYS = ['created_at', 'id', 'prefix', 'revoked_at'];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A tag no other user carries, so a search for it sees only this test's users. */
const uniqueTag = (name: string) => `${name}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

describe("admin: user listing and a user's API keys", () => {
  const context = useTestApp();
  let admin: string;
  let subscriber: Awaited<ReturnType<Api['user']>>;

  beforeAll(async () => {
    admin = await context.api.admin();
    subscriber = await context.api.user('pro');
  });

  /** Creates a user through the admin API, without logging in as them. */
  async function createUser(email: string, role = 'subscriber', tier = 'free'): Promise<{ id: string; email: string }> {
    const created = await context.api.request('POST', '/api/v1/admin/users', {
      token: admin,
      body: { email, password: 'user-password-123', role, tier },
    });
    if (created.status !== 201) throw new Error(`create ${email} failed: ${created.status} ${JSON.stringify(created.body)}`);
    return created.body;
  }

  const listUsers = (query: string, token = admin) => context.api.request('GET', `/api/v1/admin/users${query}`, { token });

  /** Follows `next_cursor` to the end; every page must hold `limit` users except the last. */
  async function walk(query: string, limit: number): Promise<{ emails: string[]; pages: number }> {
    const emails: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const separator = query ? '&' : '?';
      const page = await listUsers(`${query}${separator}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      pages++;
      cursor = page.body.next_cursor;
      if (cursor !== null) expect(page.body.data).toHaveLength(limit);
      emails.push(...page.body.data.map((user: { email: string }) => user.email));
      expect(pages).toBeLessThan(100);
    } while (cursor !== null);
    return { emails, pages };
  }

  it('keeps both listings for admins: 401 without a token, 403 for a subscriber', async () => {
    for (const path of ['/api/v1/admin/users', `/api/v1/admin/users/${subscriber.id}/api-keys`]) {
      const anonymous = await context.api.request('GET', path);
      expect(anonymous.status).toBe(401);
      expect(anonymous.body.code).toBe('unauthorized');
      const asSubscriber = await context.api.request('GET', path, { token: subscriber.token });
      expect(asSubscriber.status).toBe(403);
      expect(asSubscriber.body.code).toBe('forbidden');
      const asProvider = await context.api.request('GET', path, { token: context.provider.token });
      expect(asProvider.status).toBe(403);
    }
  });

  it('lists users ordered by email, a page at a time, with an opaque cursor', async () => {
    const tag = uniqueTag('order');
    // Created out of order; the emails differ in one letter only, so every collation sorts them alike.
    const letters = ['c', 'a', 'e', 'b', 'd'];
    const created = [];
    for (const letter of letters) created.push(await createUser(`${tag}-${letter}@example.com`, 'subscriber', 'pro'));
    const expected = ['a', 'b', 'c', 'd', 'e'].map((letter) => `${tag}-${letter}@example.com`);

    const first = await listUsers(`?email=${tag}&limit=2`);
    expect(first.status).toBe(200);
    expect(Object.keys(first.body).sort()).toEqual(['data', 'next_cursor']);
    expect(first.body.data.map((u: { email: string }) => u.email)).toEqual(expected.slice(0, 2));
    expect(Object.keys(first.body.data[0]).sort()).toEqual(USER_VIEW_KEYS);
    const a = created[1]!;
    expect(first.body.data[0]).toEqual({ ...a, role: 'subscriber', tier: 'pro' });
    expect(typeof first.body.next_cursor).toBe('string');
    expect(first.body.next_cursor).toMatch(/^[A-Za-z0-9_-]+$/);

    const second = await listUsers(`?email=${tag}&limit=2&cursor=${first.body.next_cursor}`);
    expect(second.body.data.map((u: { email: string }) => u.email)).toEqual(expected.slice(2, 4));
    const third = await listUsers(`?email=${tag}&limit=2&cursor=${second.body.next_cursor}`);
    expect(third.body.data.map((u: { email: string }) => u.email)).toEqual(expected.slice(4));
    expect(third.body.next_cursor).toBeNull();

    // A page that ends exactly on the last user says so: no cursor to an empty page.
    const exact = await listUsers(`?email=${tag}&limit=5`);
    expect(exact.body.data).toHaveLength(5);
    expect(exact.body.next_cursor).toBeNull();
  });

  it('walks every user exactly once, in the same order as one large page', async () => {
    const everyone = await listUsers('?limit=100');
    expect(everyone.status).toBe(200);
    const all = everyone.body.data.map((u: { email: string }) => u.email);
    expect(all.length).toBeGreaterThan(3);
    expect(all).toContain('admin@test.signalcast');
    const walked = await walk('', 3);
    expect(walked.emails).toEqual(all);
    expect(new Set(walked.emails).size).toBe(walked.emails.length);
    // A page that ends exactly on the last user carries no cursor: never an empty last page.
    expect(walked.pages).toBe(Math.ceil(all.length / 3));
  });

  it('answers 20 users by default', async () => {
    const tag = uniqueTag('many');
    await Promise.all(Array.from({ length: 21 }, (_, i) => createUser(`${tag}-${String(i).padStart(2, '0')}@example.com`)));
    const page = await listUsers(`?email=${tag}`);
    expect(page.status).toBe(200);
    expect(page.body.data).toHaveLength(20);
    expect(page.body.data.at(-1).email).toBe(`${tag}-19@example.com`);
    const rest = await listUsers(`?email=${tag}&cursor=${page.body.next_cursor}`);
    expect(rest.body.data.map((u: { email: string }) => u.email)).toEqual([`${tag}-20@example.com`]);
    expect(rest.body.next_cursor).toBeNull();
  });

  it('searches emails as a case-insensitive substring', async () => {
    const tag = uniqueTag('case');
    const target = await createUser(`${tag}-target@example.com`);
    await createUser(`${tag}-other@example.com`);
    const upper = await listUsers(`?email=${encodeURIComponent(`${tag}-TARGET@EXAMPLE`.toUpperCase())}`);
    expect(upper.status).toBe(200);
    expect(upper.body.data.map((u: { id: string }) => u.id)).toEqual([target.id]);
    const middle = await listUsers(`?email=${encodeURIComponent('ARGET@example.C')}`);
    expect(middle.body.data.map((u: { id: string }) => u.id)).toContain(target.id);
    const none = await listUsers(`?email=${tag}-nobody`);
    expect(none.body).toEqual({ data: [], next_cursor: null });
  });

  it('matches % and _ (and \\) literally, never as LIKE wildcards', async () => {
    const tag = uniqueTag('wild');
    const underscore = await createUser(`${tag}.u_s@example.com`);
    await createUser(`${tag}.uxs@example.com`);
    const literal = await listUsers(`?email=${encodeURIComponent(`${tag}.u_s`)}`);
    expect(literal.status).toBe(200);
    expect(literal.body.data.map((u: { id: string }) => u.id)).toEqual([underscore.id]);
    // No email holds `%` or `\`: read as wildcards, these would match every user.
    for (const search of ['%', '_%', `${tag}%`, `${tag}.u%s`, '\\', '\\%', '%\\']) {
      const result = await listUsers(`?email=${encodeURIComponent(search)}`);
      expect(result.status, search).toBe(200);
      expect(result.body.data, search).toEqual([]);
    }
    const onlyUnderscores = await listUsers(`?email=_&limit=100`);
    for (const user of onlyUnderscores.body.data) expect(user.email).toContain('_');
    expect(onlyUnderscores.body.data.map((u: { id: string }) => u.id)).toContain(underscore.id);
  });

  it('refuses a bad limit, a malformed cursor and unknown parameters with 400 naming the field', async () => {
    const refused = async (query: string, field: string, message?: RegExp) => {
      const result = await listUsers(query);
      expect(result.status, query).toBe(400);
      expect(result.body.code, query).toBe('validation_failed');
      expect(result.body.details, query).toEqual([expect.objectContaining({ field })]);
      if (message) expect(result.body.details[0].message, query).toMatch(message);
    };
    for (const limit of ['0', '101', 'abc', '', ' 5', '-1', '1.5', '1e1', '0x10', '+5'])
      await refused(`?limit=${encodeURIComponent(limit)}`, 'limit');
    expect((await listUsers('?limit=1')).body.data).toHaveLength(1);
    expect((await listUsers('?limit=100')).status).toBe(200);
    expect((await listUsers('?limit=007')).status).toBe(200);

    const b64 = (text: string) => Buffer.from(text).toString('base64url');
    const cursors = [
      '',
      'not a cursor!',
      'abc',
      b64('{"email":"a@b.io"}'),
      b64('["a@b.io"]'),
      b64('["a@b.io","not-a-uuid"]'),
      b64('[1,"00000000-0000-4000-8000-000000000000"]'),
      b64('["a\\u0000b@b.io","00000000-0000-4000-8000-000000000000"]'),
      'A'.repeat(5000),
    ];
    for (const cursor of cursors) await refused(`?cursor=${encodeURIComponent(cursor)}`, 'cursor');

    const unknown = await listUsers('?sort=email');
    expect(unknown.status).toBe(400);
    expect(unknown.body.details).toEqual([{ field: 'sort', message: 'unknown field' }]);
    await refused('?email=a&email=b', 'email');
    await refused(`?email=${encodeURIComponent('a\u0000b')}`, 'email');
    await refused(`?email=${'a'.repeat(255)}`, 'email');
  });

  it('resumes after a cursor even when the user it names is gone from the search', async () => {
    const tag = uniqueTag('resume');
    for (const letter of ['a', 'b', 'c']) await createUser(`${tag}-${letter}@example.com`);
    const first = await listUsers(`?email=${tag}&limit=1`);
    // The same cursor with another search: it is a position in email order, not a row to find.
    const other = await listUsers(`?email=${tag}-c&limit=5&cursor=${first.body.next_cursor}`);
    expect(other.status).toBe(200);
    expect(other.body.data.map((u: { email: string }) => u.email)).toEqual([`${tag}-c@example.com`]);
  });

  it("lists a user's API keys newest first, with revocation, never the key or its hash", async () => {
    const provider = await createUser(`${uniqueTag('keys')}@example.com`, 'provider');
    const keys = [];
    for (let i = 0; i < 3; i++) {
      if (i > 0) await sleep(5); // distinct created_at values, so "newest first" is observable
      const key = await context.api.request('POST', `/api/v1/admin/users/${provider.id}/api-keys`, { token: admin });
      expect(key.status).toBe(201);
      keys.push(key.body);
    }
    const revoke = await context.api.request('DELETE', `/api/v1/admin/api-keys/${keys[1].id}`, { token: admin });
    expect(revoke.status).toBe(204);

    const listed = await context.api.request('GET', `/api/v1/admin/users/${provider.id}/api-keys`, { token: admin });
    expect(listed.status).toBe(200);
    expect(Object.keys(listed.body)).toEqual(['data']);
    expect(listed.body.data.map((k: { id: string }) => k.id)).toEqual([keys[2].id, keys[1].id, keys[0].id]);
    for (const item of listed.body.data) expect(Object.keys(item).sort()).toEqual(API_KEY_VIEW_KEYS);
    expect(listed.body.data[2]).toEqual({ id: keys[0].id, prefix: keys[0].prefix, created_at: keys[0].created_at, revoked_at: null });
    expect(listed.body.data[0].revoked_at).toBeNull();
    const revoked = listed.body.data[1];
    expect(new Date(revoked.revoked_at).toISOString()).toBe(revoked.revoked_at);
    expect(Date.parse(revoked.revoked_at)).toBeGreaterThanOrEqual(Date.parse(revoked.created_at));
    const text = JSON.stringify(listed.body);
    for (const key of keys) expect(text).not.toContain(key.key);
    expect(text).not.toMatch(/hash/i);

    // The keys of the useTestApp provider are not mixed in.
    expect(listed.body.data.map((k: { id: string }) => k.id)).not.toContain(context.provider.keyId);
  });

  it('answers an empty list for a user without keys, 404 for an unknown user, 400 for a bad id', async () => {
    const none = await context.api.request('GET', `/api/v1/admin/users/${subscriber.id}/api-keys`, { token: admin });
    expect(none.status).toBe(200);
    expect(none.body).toEqual({ data: [] });
    const missing = await context.api.request('GET', '/api/v1/admin/users/00000000-0000-4000-8000-000000000000/api-keys', { token: admin });
    expect(missing.status).toBe(404);
    expect(missing.body.code).toBe('not_found');
    const bad = await context.api.request('GET', '/api/v1/admin/users/not-a-uuid/api-keys', { token: admin });
    expect(bad.status).toBe(400);
    expect(bad.body.details).toEqual([expect.objectContaining({ field: 'id' })]);
  });

  it('documents the new endpoints and the listing parameters in OpenAPI', async () => {
    const document = await (await fetch(`${context.app.baseUrl}/docs-json`)).json();
    const listing = document.paths['/api/v1/admin/users'].get;
    expect(listing.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`).sort()).toEqual([
      'query:cursor',
      'query:email',
      'query:limit',
    ]);
    expect(document.paths['/api/v1/admin/users/{id}/api-keys'].get).toBeDefined();
    expect(document.paths['/api/v1/demo'].get).toBeDefined();
  });

  it('answers the demo endpoint with 204 when the demo seed is off (SEED_DEMO=false)', async () => {
    const result = await context.api.request('GET', '/api/v1/demo');
    // 204, not 404: the sign-in page asks on every load, and a browser logs every 4xx as an error.
    expect(result.status).toBe(204);
    expect(result.body).toBeUndefined();
  });
});

const DEMO_ACCOUNTS = [
  { email: 'admin@demo.signalcast', role: 'admin', tier: 'elite' },
  { email: 'free@demo.signalcast', role: 'subscriber', tier: 'free' },
  { email: 'pro@demo.signalcast', role: 'subscriber', tier: 'pro' },
  { email: 'elite@demo.signalcast', role: 'subscriber', tier: 'elite' },
  { email: 'provider@demo.signalcast', role: 'provider', tier: 'free' },
];

/** Boots an app on a fresh database, with its own data directory for the demo credentials file. */
function useApp(overrides: Record<string, string>): { app: TestApp; api: Api } {
  const context = {} as { app: TestApp; api: Api };
  let database: TestDatabase;
  let dataDir: string;
  beforeAll(async () => {
    database = await createTestDatabase();
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'signalcast-demo-endpoint-'));
    // Where the seed writes demo-credentials.json (and, on the embedded database, the database).
    context.app = await startApp(database, { DATA_DIR: dataDir, ...overrides });
    context.api = new Api(context.app);
  });
  afterAll(async () => {
    await context.app?.close();
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return context;
}

describe('demo endpoint with SEED_DEMO=true', () => {
  const context = useApp({ SEED_DEMO: 'true' });

  it('answers the demo password and accounts, without auth, and every account signs in with them', async () => {
    const result = await context.api.request('GET', '/api/v1/demo');
    expect(result.status).toBe(200);
    expect(result.body).toEqual({ password: 'signalcast-demo', accounts: DEMO_ACCOUNTS });
    for (const account of result.body.accounts) {
      const token = await context.api.request('POST', '/api/auth/token', {
        body: { email: account.email, password: result.body.password },
      });
      expect(token.status, account.email).toBe(200);
    }
  });
});

describe('demo endpoint with NODE_ENV=production and SEED_DEMO=auto', () => {
  const context = useApp({ NODE_ENV: 'production', SEED_DEMO: 'auto' });

  it('answers 204: auto never seeds in production', async () => {
    const result = await context.api.request('GET', '/api/v1/demo');
    expect(result.status).toBe(204);
    expect(result.body).toBeUndefined();
    const login = await context.api.request('POST', '/api/auth/token', {
      body: { email: 'free@demo.signalcast', password: 'signalcast-demo' },
    });
    expect(login.status).toBe(401);
  });
});

describe('demo endpoint with SEED_DEMO=auto outside production', () => {
  const context = useApp({ SEED_DEMO: 'auto' });
  const embedded = process.env.TEST_DATABASE !== 'postgres';

  it(`answers ${embedded ? '200 on the embedded database' : '204 on PostgreSQL'}, as the seed decides`, async () => {
    const result = await context.api.request('GET', '/api/v1/demo');
    expect(result.status).toBe(embedded ? 200 : 204);
    if (embedded) expect(result.body).toEqual({ password: 'signalcast-demo', accounts: DEMO_ACCOUNTS });
    else expect(result.body).toBeUndefined();
    const login = await context.api.request('POST', '/api/auth/token', {
      body: { email: 'free@demo.signalcast', password: 'signalcast-demo' },
    });
    expect(login.status).toBe(embedded ? 200 : 401);
  });
});

describe('demo accounts left in a database that then runs in production', () => {
  it('refuse the start while they keep the published password, unless SEED_DEMO=true says the demo is wanted', async () => {
    const database = await createTestDatabase();
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'signalcast-demo-production-'));
    try {
      const development = await startApp(database, { DATA_DIR: dataDir, SEED_DEMO: 'true' });
      const api = new Api(development);
      const demoAdmin = (
        await api.request('POST', '/api/auth/token', { body: { email: 'admin@demo.signalcast', password: 'signalcast-demo' } })
      ).body.access_token as string;
      expect(demoAdmin).toBeTruthy();
      await development.close();

      const refused = await startApp(database, { DATA_DIR: dataDir, NODE_ENV: 'production', SEED_DEMO: 'auto' }).then(
        async (app) => (await app.close(), null),
        (error: Error) => error,
      );
      expect(refused?.message).toMatch(
        /Refusing to start in production: admin@demo\.signalcast, free@demo\.signalcast.*published demo password/,
      );

      const accepted = await startApp(database, { DATA_DIR: dataDir, NODE_ENV: 'production', SEED_DEMO: 'true' });
      await accepted.close();
    } finally {
      await database.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
