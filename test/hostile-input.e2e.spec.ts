import { createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import jwt from 'jsonwebtoken';
import type WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flush, markerBody, signalBody, WsClient } from './support/clients.js';
import { rawUpgrade, RecordingApi, tryUpgrade, utf8Header, withTimeout, type RawRequestOptions } from './support/hostile-http.js';
import { createTestDatabase, signToken, startApp, TEST_JWT_SECRET, type TestApp, type TestDatabase } from './support/test-app.js';

/**
 * A hostile-input corpus: one table of bad inputs per surface, each row with its documented answer
 * (docs/protocol.md: "HTTP API", "WebSocket /ws/signals", "Close codes"). Afterwards the service must be
 * unharmed: healthy, nothing stored by a bad input, sockets opened before the corpus got exactly
 * the valid signals, and no answer was a 5xx.
 */

const SYNC_BATCH_MAX_ITEMS = 5;
const SIGNALS_PAGE_MAX = 500;
const ALLOWED_ORIGIN = 'https://app.example.com';
const SYNC_ONE = '/api/v1/external-signals/sync/signal';
const SYNC_MANY = '/api/v1/external-signals/sync/signals';
const SIGNALS = '/api/v1/signals';
const TOKEN = '/api/auth/token';
const UNKNOWN_UUID = '6f1c2d3e-4b5a-4c6d-8e7f-901234567890';

type User = Awaited<ReturnType<RecordingApi['user']>>;

interface Ctx {
  database: TestDatabase;
  app: TestApp;
  api: RecordingApi;
  admin: string;
  provider: Awaited<ReturnType<RecordingApi['provider']>>;
  /** A key that was revoked before the corpus. */
  revokedKey: string;
  revokedKeyId: string;
  /** Pro subscriber behind `watcher`, never touched by the corpus. */
  watched: User;
  /** Elite subscriber: lists signals. */
  elite: User;
  /** Free subscriber: calls what it may not. */
  subscriber: User;
  /** Pro subscriber behind `frames`, the socket that receives every bad frame. */
  framer: User;
  /** Another user, whose token is not the framer's. */
  other: User;
  /** For upgrades that are accepted, and sockets that get closed. */
  opener: User;
  watcher: WsClient;
  frames: WsClient;
  /** The seq of every valid signal the file stored on purpose, in the order synced. */
  stored: number[];
}

const c = {} as Ctx;

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const claims = (overrides: Record<string, unknown> = {}) => ({
  sub: c.subscriber.id,
  role: 'subscriber',
  iss: 'signalcast',
  aud: 'signalcast-clients',
  exp: now() + 600,
  ...overrides,
});
/** A token signed with the service's secret (HS256), whatever the claims. */
const hs256 = (payload: object, header: object = { alg: 'HS256', typ: 'JWT' }) => {
  const signingInput = `${b64(header)}.${b64(payload)}`;
  return `${signingInput}.${createHmac('sha256', TEST_JWT_SECRET).update(signingInput).digest('base64url')}`;
};
const rsaKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });

/** A bad input answered over HTTP. */
interface HttpRow {
  name: string;
  request: () => { method: string; path: string; options?: RawRequestOptions };
  status: number;
  code: string;
  /** For `validation_failed`: a field `details` must name. */
  field?: string;
}

async function expectHttpAnswer(row: HttpRow): Promise<void> {
  const { method, path, options } = row.request();
  const response = await c.api.request(method, path, options);
  expect({ status: response.status, code: response.body?.code }, response.text.slice(0, 500)).toEqual({
    status: row.status,
    code: row.code,
  });
  // Every error is {code, message, details?}.
  expect(typeof response.body.message).toBe('string');
  expect(Object.keys(response.body).filter((key) => !['code', 'message', 'details'].includes(key))).toEqual([]);
  if (row.field !== undefined) {
    expect(
      response.body.details?.map((detail: { field: string }) => detail.field),
      JSON.stringify(response.body),
    ).toContain(row.field);
  }
}

const syncRow = (name: string, overrides: Record<string, unknown>, field: string): HttpRow => ({
  name,
  request: () => ({ method: 'POST', path: SYNC_ONE, options: { apiKey: c.provider.apiKey, body: signalBody(overrides) } }),
  status: 400,
  code: 'validation_failed',
  field,
});

const syncRaw = (name: string, options: Omit<RawRequestOptions, 'apiKey'>, status: number, code: string, field?: string): HttpRow => ({
  name,
  request: () => ({ method: 'POST', path: SYNC_ONE, options: { apiKey: c.provider.apiKey, ...options } }),
  status,
  code,
  field,
});

// ---------------------------------------------------------------------------------------------
// Sync bodies: POST /api/v1/external-signals/sync/signal
// ---------------------------------------------------------------------------------------------
const syncBodyRows: HttpRow[] = [
  syncRow('an unknown field', { leverage: 10 }, 'leverage'),
  syncRow('a __proto__ key (prototype pollution)', { ['__proto__']: { premium: true } }, '__proto__'),
  syncRow('a float price', { entry: 64250.5 }, 'entry'),
  syncRow('a negative price', { stop_loss: '-1' }, 'stop_loss'),
  syncRow('a zero price', { entry: '0.000' }, 'entry'),
  syncRow('a price in exponent notation', { entry: '1e5' }, 'entry'),
  syncRow('a price with 21 integer digits', { entry: '1'.repeat(21) }, 'entry'),
  syncRow('a price with 19 decimals', { entry: `1.${'1'.repeat(19)}` }, 'entry'),
  syncRow('a non-numeric target', { take_profits: ['65000', 'moon'] }, 'take_profits[1]'),
  syncRow('11 targets', { take_profits: Array.from({ length: 11 }, (_, i) => String(65_000 + i)) }, 'take_profits'),
  syncRow('targets that are not an array', { take_profits: '65000' }, 'take_profits'),
  syncRow('confidence over 100', { confidence: 101 }, 'confidence'),
  syncRow('a negative confidence', { confidence: -1 }, 'confidence'),
  syncRow('a fractional confidence', { confidence: 50.5 }, 'confidence'),
  syncRow('confidence as a string', { confidence: '80' }, 'confidence'),
  syncRow('an unknown side', { side: 'hodl' }, 'side'),
  syncRow('an unknown status', { status: 'open' }, 'status'),
  syncRow('an upper-case market', { market: 'Crypto' }, 'market'),
  syncRow('a symbol with a space', { symbol: 'BTC USDT' }, 'symbol'),
  syncRow('a 33-character symbol', { symbol: 'X'.repeat(33) }, 'symbol'),
  syncRow('a missing symbol', { symbol: undefined }, 'symbol'),
  syncRow('an empty external_id', { external_id: '' }, 'external_id'),
  syncRow('a 129-character external_id', { external_id: 'e'.repeat(129) }, 'external_id'),
  syncRow('an external_id with SQL in it', { external_id: "x'; DROP TABLE signals; --" }, 'external_id'),
  syncRow('a numeric external_id', { external_id: 42 }, 'external_id'),
  syncRow('a NUL character in external_id', { external_id: 'ext\u0000id' }, 'external_id'),
  syncRow('a bad timeframe', { timeframe: 'forever' }, 'timeframe'),
  syncRow('a zero timeframe', { timeframe: '0m' }, 'timeframe'),
  syncRow('a non-boolean premium', { premium: 'yes' }, 'premium'),
  syncRow('a 2001-character note', { note: 'n'.repeat(2001) }, 'note'),
  syncRow('a NUL character in the note', { note: 'before\u0000after' }, 'note'),
  syncRow('a lone surrogate in the note', { note: 'broken \ud800 text' }, 'note'),
  syncRow('a bad issued_at', { issued_at: 'yesterday' }, 'issued_at'),
  syncRow('an issued_at without an offset', { issued_at: '2026-11-21T10:00:00' }, 'issued_at'),
  syncRow('a date-only issued_at', { issued_at: '2026-11-21' }, 'issued_at'),
  syncRow('an impossible calendar date', { issued_at: '2026-02-30T10:00:00Z' }, 'issued_at'),
  syncRow('an epoch-number issued_at', { issued_at: 1_790_000_000 }, 'issued_at'),
  // Dates outside 1970-01-01 .. 9999-12-31 (UTC).
  syncRow('issued_at in year 0', { issued_at: '0000-01-01T00:00:00Z' }, 'issued_at'),
  syncRow('issued_at in year 10000 (UTC)', { issued_at: '9999-12-31T23:59:59-23:59' }, 'issued_at'),
  syncRow('issued_at before 1970', { issued_at: '1969-12-31T23:59:59Z' }, 'issued_at'),
  syncRow('expires_at in year 10000 (UTC)', { expires_at: '9999-12-31T23:59:59-23:59' }, 'expires_at'),
  syncRow('expires_at before issued_at', { expires_at: '2026-11-20T00:00:00Z' }, 'expires_at'),
  syncRow('expires_at equal to issued_at', { expires_at: '2026-11-21T10:00:00.000Z' }, 'expires_at'),
  syncRaw('an empty JSON object', { rawBody: '{}' }, 400, 'validation_failed', 'external_id'),
  syncRaw('a JSON array body', { rawBody: '[]' }, 400, 'validation_failed', '(body)'),
  syncRaw('a JSON null body', { rawBody: 'null' }, 400, 'bad_request'),
  syncRaw('a JSON string body', { rawBody: '"signal"' }, 400, 'bad_request'),
  syncRaw('a body that is not JSON', { rawBody: 'hello' }, 400, 'bad_request'),
  syncRaw('truncated JSON', { rawBody: '{"external_id": "x", ' }, 400, 'bad_request'),
  syncRaw(
    'invalid UTF-8 bytes in a string',
    {
      rawBytes: Buffer.concat([Buffer.from('{"external_id":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}')]),
    },
    400,
    'validation_failed',
    'external_id',
  ),
  syncRaw('a body over HTTP_BODY_LIMIT_BYTES', { body: signalBody({ note: 'x'.repeat(300_000) }) }, 413, 'payload_too_large'),
  syncRaw(
    'deeply nested JSON (50,000 levels) in the note',
    {
      rawBody: JSON.stringify(signalBody({ note: null })).replace('"note":null', `"note":${'['.repeat(50_000)}${']'.repeat(50_000)}`),
    },
    400,
    'validation_failed',
    'note',
  ),
  syncRaw(
    'JSON in a charset the parser does not read (UTF-16)',
    {
      body: signalBody(),
      headers: { 'content-type': 'application/json; charset=utf-16' },
    },
    400,
    'bad_request',
  ),
  syncRaw(
    'Content-Encoding: gzip on a body that is not gzip',
    {
      body: signalBody(),
      headers: { 'content-encoding': 'gzip' },
    },
    400,
    'bad_request',
  ),
  syncRaw(
    'a gzip bomb (1 KB that inflates past HTTP_BODY_LIMIT_BYTES)',
    {
      rawBytes: gzipSync(Buffer.from(JSON.stringify(signalBody({ note: ' '.repeat(2_000_000) })))),
      headers: { 'content-encoding': 'gzip' },
    },
    413,
    'payload_too_large',
  ),
  syncRaw(
    'a JSON body sent as text/plain',
    { body: signalBody(), headers: { 'content-type': 'text/plain' } },
    400,
    'validation_failed',
    '(body)',
  ),
];

// ---------------------------------------------------------------------------------------------
// Batches: POST /api/v1/external-signals/sync/signals — the envelope
// ---------------------------------------------------------------------------------------------
const batchRaw = (name: string, options: Omit<RawRequestOptions, 'apiKey'>, status: number, code: string, field?: string): HttpRow => ({
  name,
  request: () => ({ method: 'POST', path: SYNC_MANY, options: { apiKey: c.provider.apiKey, ...options } }),
  status,
  code,
  field,
});

const batchEnvelopeRows: HttpRow[] = [
  batchRaw('no signals field', { body: {} }, 400, 'validation_failed', 'signals'),
  batchRaw('signals that is not an array', { body: { signals: 'all of them' } }, 400, 'validation_failed', 'signals'),
  batchRaw('signals as an object', { body: { signals: { 0: {} } } }, 400, 'validation_failed', 'signals'),
  batchRaw('an empty signals array', { body: { signals: [] } }, 400, 'validation_failed', 'signals'),
  batchRaw(
    `more than SYNC_BATCH_MAX_ITEMS (${SYNC_BATCH_MAX_ITEMS}) signals`,
    { body: { signals: Array.from({ length: SYNC_BATCH_MAX_ITEMS + 1 }, () => signalBody()) } },
    400,
    'validation_failed',
    'signals',
  ),
  batchRaw('an unknown envelope field', { body: { signals: [signalBody()], dry_run: true } }, 400, 'validation_failed', 'dry_run'),
  batchRaw('a bare array of signals', { body: [signalBody()] }, 400, 'validation_failed', '(body)'),
  batchRaw('a body that is not JSON', { rawBody: '{"signals": [' }, 400, 'bad_request'),
  {
    name: 'no API key',
    request: () => ({ method: 'POST', path: SYNC_MANY, options: { body: { signals: [signalBody()] } } }),
    status: 401,
    code: 'unauthorized',
  },
];

// ---------------------------------------------------------------------------------------------
// Batches: bad items, answered per item while their neighbours are stored
// ---------------------------------------------------------------------------------------------
interface BatchItemRow {
  name: string;
  item: () => unknown;
  /** The field the item's `details` must name (`signals[1]...`: the bad item sits at index 1). */
  field: string;
}

const badItem = (name: string, overrides: Record<string, unknown>, field: string): BatchItemRow => ({
  name,
  item: () => signalBody(overrides),
  field: `signals[1].${field}`,
});

const batchItemRows: BatchItemRow[] = [
  { name: 'a number instead of a signal', item: () => 42, field: 'signals[1].(body)' },
  { name: 'null instead of a signal', item: () => null, field: 'signals[1].(body)' },
  { name: 'an array instead of a signal', item: () => [signalBody()], field: 'signals[1].(body)' },
  badItem('an unknown side', { side: 'moon' }, 'side'),
  badItem('an unknown field', { leverage: 100 }, 'leverage'),
  badItem('a float price', { entry: 1.5 }, 'entry'),
  badItem('a NUL character in the note', { note: '\u0000' }, 'note'),
  badItem('issued_at in year 0', { issued_at: '0000-01-01T00:00:00Z' }, 'issued_at'),
  badItem('issued_at in year 10000 (UTC)', { issued_at: '9999-12-31T23:59:59-23:59' }, 'issued_at'),
  badItem('issued_at before 1970', { issued_at: '1969-12-31T23:59:59Z' }, 'issued_at'),
  badItem('expires_at in year 10000 (UTC)', { expires_at: '9999-12-31T23:59:59-23:59' }, 'expires_at'),
];

// ---------------------------------------------------------------------------------------------
// API keys on the sync endpoint (the body is valid: only the credentials are bad)
// ---------------------------------------------------------------------------------------------
const keyRow = (name: string, credentials: () => RawRequestOptions, status: number, code: string): HttpRow => ({
  name,
  request: () => ({ method: 'POST', path: SYNC_ONE, options: { ...credentials(), body: signalBody() } }),
  status,
  code,
});

const apiKeyRows: HttpRow[] = [
  keyRow('no X-Api-Key header', () => ({}), 401, 'unauthorized'),
  keyRow('an empty X-Api-Key', () => ({ apiKey: '' }), 401, 'unauthorized'),
  keyRow('a wrong key with the right prefix', () => ({ apiKey: `sc_live_${'A'.repeat(43)}` }), 401, 'unauthorized'),
  keyRow('the bare key prefix', () => ({ apiKey: 'sc_live_' }), 401, 'unauthorized'),
  keyRow(
    'two X-Api-Key headers (the valid one first)',
    () => ({ headers: { 'x-api-key': [c.provider.apiKey, 'sc_live_other'] } }),
    401,
    'unauthorized',
  ),
  keyRow('a revoked key', () => ({ apiKey: c.revokedKey }), 401, 'unauthorized'),
  keyRow('a very long key (12 KB)', () => ({ apiKey: 'k'.repeat(12_000) }), 401, 'unauthorized'),
  keyRow('a non-ASCII key (UTF-8 bytes)', () => ({ apiKey: utf8Header('sc_live_ключ-🔑') }), 401, 'unauthorized'),
  keyRow(
    'a valid key with one character changed',
    () => ({ apiKey: `${c.provider.apiKey.slice(0, -1)}${c.provider.apiKey.endsWith('A') ? 'B' : 'A'}` }),
    401,
    'unauthorized',
  ),
  keyRow(
    'the key in Authorization: Bearer instead of X-Api-Key',
    () => ({ headers: { authorization: `Bearer ${c.provider.apiKey}` } }),
    401,
    'unauthorized',
  ),
  keyRow("a subscriber's JWT instead of a key", () => ({ token: c.subscriber.token }), 403, 'forbidden'),
  keyRow("the provider's own JWT instead of its key", () => ({ token: c.provider.token }), 403, 'forbidden'),
];

// ---------------------------------------------------------------------------------------------
// JWTs, forged every known way: refused on HTTP (401) and on the WebSocket upgrade (401)
// ---------------------------------------------------------------------------------------------
interface JwtRow {
  name: string;
  /** The credentials: a token for `Authorization: Bearer <token>`, or a whole header. */
  token?: () => string;
  authorization?: string;
}

const jwtRows: JwtRow[] = [
  { name: 'alg: none (unsigned)', token: () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.` },
  { name: 'alg: None with a signature', token: () => `${b64({ alg: 'None', typ: 'JWT' })}.${b64(claims())}.${'x'.repeat(43)}` },
  { name: 'HS384', token: () => jwt.sign(claims(), TEST_JWT_SECRET, { algorithm: 'HS384' }) },
  { name: 'HS512', token: () => jwt.sign(claims(), TEST_JWT_SECRET, { algorithm: 'HS512' }) },
  { name: 'RS256 signed with an RSA key', token: () => jwt.sign(claims(), rsaKeys.privateKey, { algorithm: 'RS256' }) },
  { name: 'an RS256 header over an HMAC signature (alg confusion)', token: () => hs256(claims(), { alg: 'RS256', typ: 'JWT' }) },
  {
    name: 'signed with the wrong secret',
    token: () => jwt.sign(claims(), 'another-secret-that-is-also-long-enough-000', { algorithm: 'HS256' }),
  },
  { name: 'expired', token: () => hs256(claims({ exp: now() - 60 })) },
  { name: 'no exp', token: () => hs256(claims({ exp: undefined })) },
  { name: 'a string exp', token: () => hs256(claims({ exp: String(now() + 600) })) },
  { name: 'not valid yet (nbf in the future)', token: () => hs256(claims({ nbf: now() + 300 })) },
  { name: 'a wrong issuer', token: () => hs256(claims({ iss: 'someone-else' })) },
  { name: 'no issuer', token: () => hs256(claims({ iss: undefined })) },
  { name: 'a wrong audience', token: () => hs256(claims({ aud: 'other-clients' })) },
  { name: 'an unknown role claim', token: () => hs256(claims({ role: 'superuser' })) },
  { name: 'a numeric sub', token: () => hs256(claims({ sub: 12345 })) },
  { name: 'garbage', token: () => 'not-a-jwt' },
  { name: 'three empty segments', token: () => '..' },
  { name: 'a truncated signature', token: () => signToken(c.subscriber.id, 'subscriber', 600).slice(0, -6) },
  {
    name: 'a payload changed after signing',
    token: () => {
      const [header, , signature] = signToken(c.subscriber.id, 'subscriber', 600).split('.');
      return `${header}.${b64(claims({ role: 'admin' }))}.${signature}`;
    },
  },
  { name: 'a huge token (12 KB)', token: () => hs256(claims({ padding: 'p'.repeat(9_000) })).slice(0, -4) + 'AAAA' },
  { name: '"Bearer" with no token', authorization: 'Bearer' },
  { name: 'a Basic scheme', authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}` },
];

// ---------------------------------------------------------------------------------------------
// Admin routes and ids (as the admin unless said)
// ---------------------------------------------------------------------------------------------
/** `body`: the JSON body, or a function that makes it once the context exists. */
const asAdmin = (
  name: string,
  method: string,
  path: () => string,
  body: unknown,
  status: number,
  code: string,
  field?: string,
): HttpRow => ({
  name,
  request: () => {
    const json = typeof body === 'function' ? (body as () => unknown)() : body;
    return { method, path: path(), options: { token: c.admin, ...(json !== undefined && { body: json }) } };
  },
  status,
  code,
  field,
});
const userPath = (id: string) => `/api/v1/admin/users/${id}`;

const adminRows: HttpRow[] = [
  asAdmin('GET a user by a non-UUID id', 'GET', () => userPath('not-a-uuid'), undefined, 400, 'validation_failed', 'id'),
  asAdmin(
    'GET a user by an id with SQL in it',
    'GET',
    () => userPath(encodeURIComponent("1' OR '1'='1")),
    undefined,
    400,
    'validation_failed',
    'id',
  ),
  asAdmin(
    'GET a user by a UUID with trailing characters',
    'GET',
    () => userPath(`${UNKNOWN_UUID}0`),
    undefined,
    400,
    'validation_failed',
    'id',
  ),
  asAdmin('GET a user by a percent-encoded NUL', 'GET', () => userPath('%00'), undefined, 400, 'validation_failed', 'id'),
  asAdmin('GET a user by a malformed percent-encoding', 'GET', () => userPath('%E0%A4%A'), undefined, 400, 'bad_request'),
  asAdmin('GET an unknown UUID', 'GET', () => userPath(UNKNOWN_UUID), undefined, 404, 'not_found'),
  asAdmin('GET an unknown upper-case UUID', 'GET', () => userPath(UNKNOWN_UUID.toUpperCase()), undefined, 404, 'not_found'),
  asAdmin('GET the nil UUID', 'GET', () => userPath('00000000-0000-0000-0000-000000000000'), undefined, 404, 'not_found'),
  asAdmin('PATCH an unknown UUID', 'PATCH', () => userPath(UNKNOWN_UUID), { tier: 'pro' }, 404, 'not_found'),
  asAdmin('PATCH a non-UUID id', 'PATCH', () => userPath('42'), { tier: 'pro' }, 400, 'validation_failed', 'id'),
  asAdmin('PATCH with an empty body object', 'PATCH', () => userPath(c.subscriber.id), {}, 400, 'validation_failed'),
  asAdmin('PATCH an unknown tier', 'PATCH', () => userPath(c.subscriber.id), { tier: 'platinum' }, 400, 'validation_failed', 'tier'),
  asAdmin('PATCH a tier in upper case', 'PATCH', () => userPath(c.subscriber.id), { tier: 'PRO' }, 400, 'validation_failed', 'tier'),
  asAdmin('PATCH a null tier', 'PATCH', () => userPath(c.subscriber.id), { tier: null }, 400, 'validation_failed', 'tier'),
  asAdmin('PATCH an unknown role', 'PATCH', () => userPath(c.subscriber.id), { role: 'root' }, 400, 'validation_failed', 'role'),
  asAdmin(
    'PATCH an unknown field',
    'PATCH',
    () => userPath(c.subscriber.id),
    { tier: 'pro', credits: 1e9 },
    400,
    'validation_failed',
    'credits',
  ),
  asAdmin('PATCH with an array body', 'PATCH', () => userPath(c.subscriber.id), [{ tier: 'pro' }], 400, 'validation_failed', '(body)'),
  asAdmin(
    'POST a user with a bad email',
    'POST',
    () => '/api/v1/admin/users',
    { email: 'not-an-email', password: 'long-enough-password' },
    400,
    'validation_failed',
    'email',
  ),
  asAdmin(
    'POST a user with a NUL in the email',
    'POST',
    () => '/api/v1/admin/users',
    { email: 'a\u0000b@x.io', password: 'long-enough-password' },
    400,
    'validation_failed',
    'email',
  ),
  asAdmin(
    'POST a user with a short password',
    'POST',
    () => '/api/v1/admin/users',
    { email: 'short@x.io', password: 'short' },
    400,
    'validation_failed',
    'password',
  ),
  asAdmin(
    'POST a user with an unknown role',
    'POST',
    () => '/api/v1/admin/users',
    { email: 'role@x.io', password: 'long-enough-password', role: 'superadmin' },
    400,
    'validation_failed',
    'role',
  ),
  asAdmin(
    'POST a user with an unknown tier',
    'POST',
    () => '/api/v1/admin/users',
    { email: 'tier@x.io', password: 'long-enough-password', tier: 'gold' },
    400,
    'validation_failed',
    'tier',
  ),
  asAdmin(
    'POST a user whose email is taken (other case)',
    'POST',
    () => '/api/v1/admin/users',
    () => ({ email: c.elite.email.toUpperCase(), password: 'long-enough-password' }),
    409,
    'conflict',
  ),
  asAdmin('POST an API key for a subscriber', 'POST', () => `${userPath(c.subscriber.id)}/api-keys`, undefined, 409, 'conflict'),
  asAdmin('POST an API key for an unknown UUID', 'POST', () => `${userPath(UNKNOWN_UUID)}/api-keys`, undefined, 404, 'not_found'),
  asAdmin('DELETE an API key by a non-UUID id', 'DELETE', () => '/api/v1/admin/api-keys/key-1', undefined, 400, 'validation_failed', 'id'),
  asAdmin('DELETE an unknown API key', 'DELETE', () => `/api/v1/admin/api-keys/${UNKNOWN_UUID}`, undefined, 404, 'not_found'),
  asAdmin('DELETE an already revoked API key', 'DELETE', () => `/api/v1/admin/api-keys/${c.revokedKeyId}`, undefined, 404, 'not_found'),
  {
    name: 'a subscriber GETs a user',
    request: () => ({ method: 'GET', path: userPath(c.subscriber.id), options: { token: c.subscriber.token } }),
    status: 403,
    code: 'forbidden',
  },
  {
    name: 'a subscriber PATCHes its own tier',
    request: () => ({ method: 'PATCH', path: userPath(c.subscriber.id), options: { token: c.subscriber.token, body: { tier: 'elite' } } }),
    status: 403,
    code: 'forbidden',
  },
  {
    name: 'a subscriber creates an admin',
    request: () => ({
      method: 'POST',
      path: '/api/v1/admin/users',
      options: { token: c.subscriber.token, body: { email: 'evil@x.io', password: 'long-enough-password', role: 'admin' } },
    }),
    status: 403,
    code: 'forbidden',
  },
  {
    name: 'a subscriber revokes a key',
    request: () => ({ method: 'DELETE', path: `/api/v1/admin/api-keys/${c.provider.keyId}`, options: { token: c.subscriber.token } }),
    status: 403,
    code: 'forbidden',
  },
  {
    name: 'a subscriber reads /ws/stats',
    request: () => ({ method: 'GET', path: '/ws/stats', options: { token: c.subscriber.token } }),
    status: 403,
    code: 'forbidden',
  },
  {
    name: "a subscriber's token with a forged admin role claim",
    request: () => ({ method: 'GET', path: userPath(c.subscriber.id), options: { token: signToken(c.subscriber.id, 'admin', 600) } }),
    status: 403,
    code: 'forbidden',
  },
  {
    name: 'a provider API key on an admin route',
    request: () => ({ method: 'GET', path: userPath(c.subscriber.id), options: { apiKey: c.provider.apiKey } }),
    status: 401,
    code: 'unauthorized',
  },
  {
    name: 'no credentials on an admin route',
    request: () => ({ method: 'GET', path: userPath(c.subscriber.id) }),
    status: 401,
    code: 'unauthorized',
  },
];

// ---------------------------------------------------------------------------------------------
// Listing: GET /api/v1/signals (as the elite user)
// ---------------------------------------------------------------------------------------------
const listRow = (name: string, query: string, field: string): HttpRow => ({
  name: `${name} (?${query.length > 60 ? `${query.slice(0, 60)}…` : query})`,
  request: () => ({ method: 'GET', path: `${SIGNALS}?${query}`, options: { token: c.elite.token } }),
  status: 400,
  code: 'validation_failed',
  field,
});

// Integer parameters take plain decimal digits only: empty, blank, signed, hex, exponent → 400.
const listingRows: HttpRow[] = [
  listRow('a negative after_seq', 'after_seq=-1', 'after_seq'),
  listRow('a non-numeric after_seq', 'after_seq=abc', 'after_seq'),
  listRow('a fractional after_seq', 'after_seq=1.5', 'after_seq'),
  listRow('an empty after_seq', 'after_seq=', 'after_seq'),
  listRow('a blank after_seq', 'after_seq=%20', 'after_seq'),
  listRow('a hex after_seq', 'after_seq=0x10', 'after_seq'),
  listRow('an exponent after_seq', 'after_seq=1e3', 'after_seq'),
  listRow('a signed after_seq', 'after_seq=%2B5', 'after_seq'),
  listRow('an after_seq beyond 2^53', 'after_seq=99999999999999999999', 'after_seq'),
  listRow('after_seq given twice', 'after_seq=1&after_seq=2', 'after_seq'),
  listRow('a zero limit', 'limit=0', 'limit'),
  listRow(`a limit over SIGNALS_PAGE_MAX (${SIGNALS_PAGE_MAX})`, `limit=${SIGNALS_PAGE_MAX + 1}`, 'limit'),
  listRow('a negative limit', 'limit=-1', 'limit'),
  listRow('an empty limit', 'limit=', 'limit'),
  listRow('a hex limit', 'limit=0x10', 'limit'),
  listRow('an exponent limit', 'limit=1e2', 'limit'),
  listRow('a fractional limit', 'limit=1.5', 'limit'),
  listRow('a signed limit', 'limit=%2B5', 'limit'),
  listRow('a symbol with forbidden characters', `symbol=${encodeURIComponent("BTC' OR 1=1")}`, 'symbol'),
  listRow('an empty symbol', 'symbol=', 'symbol'),
  listRow('a 33-character symbol', `symbol=${'S'.repeat(33)}`, 'symbol'),
  listRow('a NUL in the symbol', 'symbol=BTC%00', 'symbol'),
  listRow('an unknown parameter', 'provider=me', 'provider'),
  listRow('a bracketed parameter name', 'symbol[]=BTCUSDT', 'symbol[]'),
  {
    name: 'no token',
    request: () => ({ method: 'GET', path: `${SIGNALS}?after_seq=0` }),
    status: 401,
    code: 'unauthorized',
  },
];

// ---------------------------------------------------------------------------------------------
// The token endpoint: POST /api/auth/token
// ---------------------------------------------------------------------------------------------
const tokenRow = (name: string, options: RawRequestOptions, status: number, code: string, field?: string): HttpRow => ({
  name,
  request: () => ({ method: 'POST', path: TOKEN, options }),
  status,
  code,
  field,
});

const tokenRows: HttpRow[] = [
  tokenRow('an empty object', { body: {} }, 400, 'validation_failed', 'email'),
  tokenRow('a missing password', { body: { email: 'a@b.io' } }, 400, 'validation_failed', 'password'),
  tokenRow('a missing email', { body: { password: 'whatever-password' } }, 400, 'validation_failed', 'email'),
  tokenRow('a numeric email', { body: { email: 42, password: 'whatever-password' } }, 400, 'validation_failed', 'email'),
  tokenRow(
    'an operator object as email',
    { body: { email: { $ne: null }, password: 'whatever-password' } },
    400,
    'validation_failed',
    'email',
  ),
  tokenRow('a null password', { body: { email: 'a@b.io', password: null } }, 400, 'validation_failed', 'password'),
  tokenRow('a boolean password', { body: { email: 'a@b.io', password: true } }, 400, 'validation_failed', 'password'),
  tokenRow('an empty email', { body: { email: '', password: 'whatever-password' } }, 400, 'validation_failed', 'email'),
  tokenRow('a blank email', { body: { email: '   ', password: 'whatever-password' } }, 400, 'validation_failed', 'email'),
  tokenRow(
    'a 255-character email',
    { body: { email: `${'e'.repeat(250)}@x.io`, password: 'whatever-password' } },
    400,
    'validation_failed',
    'email',
  ),
  tokenRow('an empty password', { body: { email: 'a@b.io', password: '' } }, 400, 'validation_failed', 'password'),
  tokenRow(
    'a NUL character in the email',
    { body: { email: 'admin@test.signalcast\u0000', password: 'whatever-password' } },
    400,
    'validation_failed',
    'email',
  ),
  tokenRow(
    'a lone surrogate in the email',
    { body: { email: 'admin\ud800@test.signalcast', password: 'whatever-password' } },
    400,
    'validation_failed',
    'email',
  ),
  tokenRow('a NUL character in the password', { body: { email: 'a@b.io', password: 'pass\u0000word' } }, 401, 'invalid_credentials'),
  tokenRow('a 1025-character password', { body: { email: 'a@b.io', password: 'p'.repeat(1025) } }, 400, 'validation_failed', 'password'),
  tokenRow('a 300 KB password', { body: { email: 'a@b.io', password: 'p'.repeat(300_000) } }, 413, 'payload_too_large'),
  tokenRow('an email with SQL in it', { body: { email: "' OR 1=1 --", password: 'whatever-password' } }, 401, 'invalid_credentials'),
  tokenRow(
    'an unknown field',
    { body: { email: 'a@b.io', password: 'whatever-password', role: 'admin' } },
    400,
    'validation_failed',
    'role',
  ),
  tokenRow('a JSON array', { body: [{ email: 'a@b.io', password: 'whatever-password' }] }, 400, 'validation_failed', '(body)'),
  tokenRow(
    'a body that is not JSON',
    { rawBody: 'email=a@b.io&password=x', headers: { 'content-type': 'application/json' } },
    400,
    'bad_request',
  ),
  tokenRow(
    'a form-encoded body',
    { rawBody: 'email=a%40b.io&password=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
    400,
    'validation_failed',
    '(body)',
  ),
  tokenRow(
    'JSON sent as text/plain',
    { rawBody: '{"email":"a@b.io","password":"x"}', headers: { 'content-type': 'text/plain' } },
    400,
    'validation_failed',
    '(body)',
  ),
  tokenRow('no body at all', {}, 400, 'validation_failed', '(body)'),
  {
    name: 'GET instead of POST',
    request: () => ({ method: 'GET', path: TOKEN }),
    status: 404,
    code: 'not_found',
  },
];

// ---------------------------------------------------------------------------------------------
// Upgrades of /ws/signals refused with an HTTP status before any socket exists
// ---------------------------------------------------------------------------------------------
interface UpgradeRow {
  name: string;
  /** The query string (written raw); `TOKEN` stands for a valid token of the opener. */
  query: string;
  headers?: () => Record<string, string>;
  status: number;
}

// `since` and `min_confidence` take plain decimal digits only; the Authorization header wins over ?token=.
const upgradeRows: UpgradeRow[] = [
  { name: 'no token at all', query: '', status: 401 },
  { name: 'an empty ?token=', query: 'token=', status: 401 },
  { name: 'a garbage ?token=', query: 'token=garbage', status: 401 },
  { name: '"Authorization: Bearer" with no token', query: '', headers: () => ({ authorization: 'Bearer' }), status: 401 },
  { name: 'a Basic Authorization header', query: '', headers: () => ({ authorization: 'Basic YTpi' }), status: 401 },
  {
    name: 'a garbage Bearer header with a valid ?token= (the header wins)',
    query: 'token=TOKEN',
    headers: () => ({ authorization: 'Bearer garbage' }),
    status: 401,
  },
  { name: 'a negative since', query: 'token=TOKEN&since=-1', status: 400 },
  { name: 'a non-numeric since', query: 'token=TOKEN&since=abc', status: 400 },
  { name: 'a fractional since', query: 'token=TOKEN&since=1.5', status: 400 },
  { name: 'an empty since', query: 'token=TOKEN&since=', status: 400 },
  { name: 'a blank since', query: 'token=TOKEN&since=%20', status: 400 },
  { name: 'a hex since', query: 'token=TOKEN&since=0x10', status: 400 },
  { name: 'an exponent since', query: 'token=TOKEN&since=1e3', status: 400 },
  { name: 'a signed since', query: 'token=TOKEN&since=%2B5', status: 400 },
  { name: 'a since beyond 2^53', query: 'token=TOKEN&since=99999999999999999999', status: 400 },
  { name: 'an infinite since', query: 'token=TOKEN&since=Infinity', status: 400 },
  { name: 'an empty min_confidence', query: 'token=TOKEN&min_confidence=', status: 400 },
  { name: 'a min_confidence over 100', query: 'token=TOKEN&min_confidence=101', status: 400 },
  { name: 'a non-numeric min_confidence', query: 'token=TOKEN&min_confidence=high', status: 400 },
  { name: 'a hex min_confidence', query: 'token=TOKEN&min_confidence=0x10', status: 400 },
  { name: 'a symbol with forbidden characters', query: `token=TOKEN&symbols=${encodeURIComponent('BTC$,ETH')}`, status: 400 },
  { name: 'an empty symbols list', query: 'token=TOKEN&symbols=,,', status: 400 },
  { name: '101 symbols', query: `token=TOKEN&symbols=${Array.from({ length: 101 }, (_, i) => `S${i}`).join(',')}`, status: 400 },
  { name: 'an upper-case market', query: 'token=TOKEN&markets=Crypto', status: 400 },
  { name: 'a provider that is not a UUID', query: 'token=TOKEN&providers=me', status: 400 },
  { name: 'an unknown side', query: 'token=TOKEN&sides=up', status: 400 },
  { name: 'an Origin not in CORS_ORIGINS', query: 'token=TOKEN', headers: () => ({ origin: 'https://evil.example' }), status: 403 },
];

/** Handshake headers that a WebSocket client always writes itself, sent by hand (valid token). */
interface HandshakeRow {
  name: string;
  path?: string;
  headers: Record<string, string>;
  /** The HTTP status, or 0: the connection is dropped without an HTTP answer. */
  status: number;
}

const handshakeRows: HandshakeRow[] = [
  { name: 'an unsupported Sec-WebSocket-Version', headers: { 'sec-websocket-version': '12' }, status: 400 },
  { name: 'a malformed Sec-WebSocket-Key', headers: { 'sec-websocket-key': 'short' }, status: 400 },
  { name: 'a malformed Sec-WebSocket-Protocol', headers: { 'sec-websocket-protocol': 'a,,b' }, status: 400 },
  { name: 'an Upgrade header that is not websocket', headers: { upgrade: 'h2c' }, status: 400 },
  { name: 'an unknown path next to /ws/signals', path: '/ws/signalz', headers: {}, status: 0 },
];

// ---------------------------------------------------------------------------------------------
// WebSocket frames, all on one socket (which must keep working, and keep its subscription)
// ---------------------------------------------------------------------------------------------
interface FrameRow {
  name: string;
  frame: () => string | Buffer;
  code: string;
  field?: string;
  /** The request id the error must echo. */
  id?: string | number;
}

const json = (value: unknown) => () => JSON.stringify(value);

const frameRows: FrameRow[] = [
  { name: 'not JSON', frame: () => '{not json', code: 'malformed_message' },
  { name: 'an empty text frame', frame: () => '', code: 'malformed_message' },
  { name: 'a JSON array', frame: json([{ type: 'ping' }]), code: 'malformed_message' },
  { name: 'a JSON string', frame: json('ping'), code: 'malformed_message' },
  { name: 'JSON null', frame: json(null), code: 'malformed_message' },
  { name: 'deeply nested arrays', frame: () => `${'['.repeat(5000)}${']'.repeat(5000)}`, code: 'malformed_message' },
  { name: 'no type', frame: json({ id: 'no-type', since: 0 }), code: 'malformed_message', id: 'no-type' },
  { name: 'a numeric type', frame: json({ type: 1, id: 'num-type' }), code: 'malformed_message', id: 'num-type' },
  { name: 'an unknown type', frame: json({ type: 'launch_rockets', id: 7 }), code: 'unknown_type', id: 7 },
  { name: 'a type that is an Object.prototype key', frame: json({ type: 'constructor', id: 'proto' }), code: 'unknown_type', id: 'proto' },
  { name: 'a binary frame', frame: () => Buffer.from(JSON.stringify({ type: 'ping' })), code: 'binary_not_supported' },
  { name: 'an unknown field on ping', frame: json({ type: 'ping', id: 'p', extra: 1 }), code: 'invalid_request', field: 'extra', id: 'p' },
  { name: 'an id that is an object', frame: json({ type: 'ping', id: { nested: true } }), code: 'invalid_request', field: 'id' },
  {
    name: 'a 129-character id',
    frame: json({ type: 'ping', id: 'i'.repeat(129) }),
    code: 'invalid_request',
    field: 'id',
    id: 'i'.repeat(129),
  },
  {
    name: 'subscribe with null filters',
    frame: json({ type: 'subscribe', id: 's1', filters: null }),
    code: 'invalid_request',
    field: 'filters',
    id: 's1',
  },
  {
    name: 'subscribe with symbols that is a string',
    frame: json({ type: 'subscribe', id: 's2', filters: { symbols: 'BTCUSDT' } }),
    code: 'invalid_request',
    field: 'filters.symbols',
    id: 's2',
  },
  {
    name: 'subscribe with an empty symbols list',
    frame: json({ type: 'subscribe', id: 's3', filters: { symbols: [] } }),
    code: 'invalid_request',
    field: 'filters.symbols',
    id: 's3',
  },
  {
    name: 'subscribe with a bad symbol',
    frame: json({ type: 'subscribe', id: 's4', filters: { symbols: ['BTC USDT'] } }),
    code: 'invalid_request',
    field: 'filters.symbols.0',
    id: 's4',
  },
  {
    name: 'subscribe with 101 symbols',
    frame: json({ type: 'subscribe', id: 's5', filters: { symbols: Array.from({ length: 101 }, (_, i) => `S${i}`) } }),
    code: 'invalid_request',
    field: 'filters.symbols',
    id: 's5',
  },
  {
    name: 'subscribe with a provider that is not a UUID',
    frame: json({ type: 'subscribe', id: 's6', filters: { providers: ['me'] } }),
    code: 'invalid_request',
    field: 'filters.providers.0',
    id: 's6',
  },
  {
    name: 'subscribe with an unknown side',
    frame: json({ type: 'subscribe', id: 's7', filters: { sides: ['up'] } }),
    code: 'invalid_request',
    field: 'filters.sides.0',
    id: 's7',
  },
  {
    name: 'subscribe with min_confidence over 100',
    frame: json({ type: 'subscribe', id: 's8', filters: { min_confidence: 101 } }),
    code: 'invalid_request',
    field: 'filters.min_confidence',
    id: 's8',
  },
  {
    name: 'subscribe with min_confidence as a string',
    frame: json({ type: 'subscribe', id: 's9', filters: { min_confidence: '60' } }),
    code: 'invalid_request',
    field: 'filters.min_confidence',
    id: 's9',
  },
  {
    name: 'subscribe with an unknown filter',
    frame: json({ type: 'subscribe', id: 's10', filters: { colour: 'red' } }),
    code: 'invalid_request',
    field: 'filters.colour',
    id: 's10',
  },
  {
    name: 'resume without since',
    frame: json({ type: 'resume', id: 'resume-1' }),
    code: 'invalid_request',
    field: 'since',
    id: 'resume-1',
  },
  {
    name: 'resume with a negative since',
    frame: json({ type: 'resume', id: 'resume-2', since: -1 }),
    code: 'invalid_request',
    field: 'since',
    id: 'resume-2',
  },
  {
    name: 'resume with since as a string',
    frame: json({ type: 'resume', id: 'resume-3', since: '5' }),
    code: 'invalid_request',
    field: 'since',
    id: 'resume-3',
  },
  {
    name: 'resume with a fractional since',
    frame: json({ type: 'resume', id: 'resume-4', since: 1.5 }),
    code: 'invalid_request',
    field: 'since',
    id: 'resume-4',
  },
  {
    name: 'resume with a since beyond 2^53',
    frame: json({ type: 'resume', id: 'resume-5', since: 1e20 }),
    code: 'invalid_request',
    field: 'since',
    id: 'resume-5',
  },
  { name: 'auth without a token', frame: json({ type: 'auth', id: 'a1' }), code: 'invalid_request', field: 'token', id: 'a1' },
  {
    name: 'auth with an empty token',
    frame: json({ type: 'auth', id: 'a2', token: '' }),
    code: 'invalid_request',
    field: 'token',
    id: 'a2',
  },
  {
    name: 'auth with a numeric token',
    frame: json({ type: 'auth', id: 'a3', token: 42 }),
    code: 'invalid_request',
    field: 'token',
    id: 'a3',
  },
  {
    name: 'auth with a token over 8192 characters',
    frame: json({ type: 'auth', id: 'a4', token: 't'.repeat(8193) }),
    code: 'invalid_request',
    field: 'token',
    id: 'a4',
  },
  {
    name: 'auth with a garbage token',
    frame: json({ type: 'auth', id: 'a5', token: 'garbage' }),
    code: 'invalid_token',
    field: 'token',
    id: 'a5',
  },
  {
    name: 'auth with an alg: none token',
    frame: () => JSON.stringify({ type: 'auth', id: 'a6', token: `${b64({ alg: 'none' })}.${b64(claims({ sub: c.framer.id }))}.` }),
    code: 'invalid_token',
    field: 'token',
    id: 'a6',
  },
  {
    name: 'auth with an expired token',
    frame: () => JSON.stringify({ type: 'auth', id: 'a7', token: hs256(claims({ sub: c.framer.id, exp: now() - 1 })) }),
    code: 'invalid_token',
    field: 'token',
    id: 'a7',
  },
  {
    name: "auth with another user's token",
    frame: () => JSON.stringify({ type: 'auth', id: 'a8', token: c.other.token }),
    code: 'token_user_mismatch',
    field: 'token',
    id: 'a8',
  },
];

/** Frames that end the socket, each on a socket of its own. */
interface CloseRow {
  name: string;
  send: (socket: WebSocket) => void;
  code: number;
}

const closeRows: CloseRow[] = [
  {
    name: 'a frame over WS_MAX_PAYLOAD_BYTES (16 KB)',
    send: (socket) => socket.send(JSON.stringify({ type: 'ping', id: 'x'.repeat(17_000) })),
    code: 1009,
  },
  { name: 'a binary frame over WS_MAX_PAYLOAD_BYTES', send: (socket) => socket.send(Buffer.alloc(20_000), { binary: true }), code: 1009 },
  {
    name: 'a text frame that is not valid UTF-8',
    send: (socket) => socket.send(Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0xff, 0xfe, 0x7d]), { binary: false }),
    code: 1007,
  },
];

// ---------------------------------------------------------------------------------------------

describe('hostile-input corpus', () => {
  beforeAll(async () => {
    c.stored = [];
    c.database = await createTestDatabase();
    c.app = await startApp(c.database, {
      SYNC_BATCH_MAX_ITEMS: String(SYNC_BATCH_MAX_ITEMS),
      SIGNALS_PAGE_MAX: String(SIGNALS_PAGE_MAX),
      CORS_ORIGINS: ALLOWED_ORIGIN,
      WS_RATE_LIMIT_BURST: '200',
    });
    c.api = new RecordingApi(c.app);
    c.admin = await c.api.admin();
    const revoked = await c.api.provider();
    [c.provider, c.watched, c.elite, c.subscriber, c.framer, c.other, c.opener] = await Promise.all([
      c.api.provider(),
      c.api.user('pro'),
      c.api.user('elite'),
      c.api.user('free'),
      c.api.user('pro'),
      c.api.user('free'),
      c.api.user('free'),
    ]);
    expect((await c.api.request('DELETE', `/api/v1/admin/api-keys/${revoked.keyId}`, { token: c.admin })).status).toBe(204);
    c.revokedKey = revoked.apiKey;
    c.revokedKeyId = revoked.keyId;
    c.watcher = await WsClient.connect(c.app.wsUrl, { token: c.watched.token });
    c.frames = await WsClient.connect(c.app.wsUrl, { token: c.framer.token });
  }, 60_000);

  afterAll(async () => {
    await c.watcher?.close().catch(() => undefined);
    await c.frames?.close().catch(() => undefined);
    await c.app?.close();
    await c.database?.drop();
  });

  /** A valid signal the test stores on purpose (the corpus's neighbours), remembered by seq. */
  const remember = (seq: number) => c.stored.push(seq);

  describe(`sync bodies (${syncBodyRows.length} classes)`, () => {
    for (const row of syncBodyRows) {
      it(`${row.name} → ${row.status} ${row.code}${row.field ? ` naming ${row.field}` : ''}`, () => expectHttpAnswer(row));
    }
  });

  describe(`batch envelopes (${batchEnvelopeRows.length} classes)`, () => {
    for (const row of batchEnvelopeRows) {
      it(`${row.name} → ${row.status} ${row.code}${row.field ? ` naming ${row.field}` : ''}`, () => expectHttpAnswer(row));
    }
  });

  describe(`batch items (${batchItemRows.length} classes): answered alone, neighbours stored`, () => {
    for (const row of batchItemRows) {
      it(`${row.name} → item 400 validation_failed naming ${row.field}`, async () => {
        const before = signalBody();
        const after = signalBody({ premium: true });
        const response = await c.api.request('POST', SYNC_MANY, {
          apiKey: c.provider.apiKey,
          body: { signals: [before, row.item(), after] },
        });
        expect(response.status, response.text.slice(0, 500)).toBe(200);
        const [first, bad, last] = response.body.results;
        for (const [neighbour, body] of [
          [first, before],
          [last, after],
        ] as const) {
          if (neighbour?.status === 201) remember(neighbour.seq);
          expect(neighbour).toMatchObject({ status: 201, result: 'created', signal: { external_id: body.external_id } });
        }
        expect(bad).toMatchObject({ index: 1, status: 400, error: { code: 'validation_failed' } });
        expect(bad.error.details.map((detail: { field: string }) => detail.field)).toContain(row.field);
        expect(response.body.results).toHaveLength(3);
      });
    }
  });

  describe(`API keys (${apiKeyRows.length} classes)`, () => {
    for (const row of apiKeyRows) {
      it(`${row.name} → ${row.status} ${row.code}`, () => expectHttpAnswer(row));
    }
  });

  describe(`forged JWTs (${jwtRows.length} classes + 2): 401 on HTTP and on the upgrade`, () => {
    for (const row of jwtRows) {
      it(`${row.name} → 401 unauthorized on GET /api/v1/signals, upgrade refused 401`, async () => {
        const authorization = row.authorization ?? `Bearer ${row.token!()}`;
        await expectHttpAnswer({
          name: row.name,
          request: () => ({ method: 'GET', path: SIGNALS, options: { headers: { authorization } } }),
          status: 401,
          code: 'unauthorized',
        });
        const viaHeader = await tryUpgrade(c.api, c.app.wsUrl, { headers: { authorization } });
        if ('opened' in viaHeader) await viaHeader.opened.close();
        expect(viaHeader).toEqual({ refused: 401 });
        if (row.token) {
          const viaQuery = await tryUpgrade(c.api, `${c.app.wsUrl}?token=${encodeURIComponent(row.token())}`);
          if ('opened' in viaQuery) await viaQuery.opened.close();
          expect(viaQuery).toEqual({ refused: 401 });
        }
      });
    }

    // Tokens signed with the service's own secret, for users that do not exist.
    const ghosts: { name: string; sub: () => string }[] = [{ name: 'an unknown (or deleted) user id', sub: () => randomUUID() }];
    for (const ghost of ghosts) {
      it(`a well-signed token for ${ghost.name} → 401 unauthorized on HTTP (admin claim too); the socket is closed 4501 unauthorized`, async () => {
        const token = signToken(ghost.sub(), 'subscriber', 600);
        const http = await c.api.request('GET', SIGNALS, { token });
        const admin = await c.api.request('GET', '/ws/stats', { token: signToken(ghost.sub(), 'admin', 600) });
        const outcome = await tryUpgrade(c.api, `${c.app.wsUrl}?token=${encodeURIComponent(token)}`);
        const ws = 'opened' in outcome ? { close: await outcome.opened.waitClose(), messages: outcome.opened.messages } : outcome;
        expect({
          http: { status: http.status, code: http.body?.code },
          admin: { status: admin.status, code: admin.body?.code },
          ws,
        }).toEqual({
          http: { status: 401, code: 'unauthorized' },
          admin: { status: 401, code: 'unauthorized' },
          ws: { close: { code: 4501, reason: 'unauthorized' }, messages: [] },
        });
      });
    }
    it('a well-signed token whose sub is not a user id (UUID) → 401 on HTTP (admin claim too) and on the upgrade, before any socket', async () => {
      const token = signToken('not-a-uuid', 'subscriber', 600);
      const http = await c.api.request('GET', SIGNALS, { token });
      const admin = await c.api.request('GET', '/ws/stats', { token: signToken('not-a-uuid', 'admin', 600) });
      const outcome = await tryUpgrade(c.api, `${c.app.wsUrl}?token=${encodeURIComponent(token)}`);
      expect({
        http: { status: http.status, code: http.body?.code },
        admin: { status: admin.status, code: admin.body?.code },
        ws: outcome,
      }).toEqual({
        http: { status: 401, code: 'unauthorized' },
        admin: { status: 401, code: 'unauthorized' },
        ws: { refused: 401 },
      });
    });
  });

  describe(`admin routes and ids (${adminRows.length} classes)`, () => {
    for (const row of adminRows) {
      it(`${row.name} → ${row.status} ${row.code}${row.field ? ` naming ${row.field}` : ''}`, () => expectHttpAnswer(row));
    }
  });

  describe(`listing queries (${listingRows.length} classes)`, () => {
    for (const row of listingRows) {
      it(`${row.name} → ${row.status} ${row.code}${row.field ? ` naming ${row.field}` : ''}`, () => expectHttpAnswer(row));
    }
  });

  describe(`token endpoint (${tokenRows.length} classes)`, () => {
    for (const row of tokenRows) {
      it(`${row.name} → ${row.status} ${row.code}${row.field ? ` naming ${row.field}` : ''}`, () => expectHttpAnswer(row));
    }
  });

  describe(`upgrade parameters and headers (${upgradeRows.length + handshakeRows.length} classes + 1)`, () => {
    for (const row of upgradeRows) {
      it(`${row.name} → refused ${row.status}`, async () => {
        const query = row.query.replace('TOKEN', c.opener.token);
        const outcome = await tryUpgrade(c.api, query ? `${c.app.wsUrl}?${query}` : c.app.wsUrl, { headers: row.headers?.() });
        if ('opened' in outcome) await outcome.opened.close();
        expect(outcome).toEqual({ refused: row.status });
      });
    }

    for (const row of handshakeRows) {
      it(`${row.name} (by hand) → ${row.status === 0 ? 'dropped without an HTTP answer' : `refused ${row.status}`}`, async () => {
        const path = `${row.path ?? '/ws/signals'}?token=${c.opener.token}`;
        expect(await rawUpgrade(c.api, c.app.baseUrl, path, row.headers)).toBe(row.status);
      });
    }

    it('a valid Bearer header with a garbage ?token= → accepted (the header wins)', async () => {
      const outcome = await tryUpgrade(c.api, `${c.app.wsUrl}?token=garbage`, { headers: { authorization: `Bearer ${c.opener.token}` } });
      expect('opened' in outcome, JSON.stringify(outcome)).toBe(true);
      if (!('opened' in outcome)) return;
      expect(await outcome.opened.next((m) => m.type === 'welcome')).toMatchObject({ user_id: c.opener.id });
      await outcome.opened.close();
    });
  });

  describe(`WebSocket frames (${frameRows.length} classes on one socket, ${closeRows.length} that close it)`, () => {
    for (const row of frameRows) {
      it(`${row.name} → error ${row.code}${row.field ? ` (field ${row.field})` : ''}, socket kept`, async () => {
        const start = c.frames.messages.length;
        const frame = row.frame();
        if (typeof frame === 'string') c.frames.socket.send(frame);
        else c.frames.socket.send(frame, { binary: true });
        const answer = await c.frames.next(
          (m) => c.frames.messages.indexOf(m) >= start && m.type !== 'signal' && m.type !== 'signal_update',
          3_000,
        );
        expect(answer).toMatchObject({ type: 'error', code: row.code });
        expect(answer.field).toBe(row.field);
        expect(answer.id).toEqual(row.id);
        expect(c.frames.closeEvent).toBeUndefined();
      });
    }

    for (const row of closeRows) {
      it(`${row.name} → close ${row.code}`, async () => {
        const socket = await WsClient.connect(c.app.wsUrl, { token: c.opener.token });
        row.send(socket.socket);
        expect((await socket.waitClose()).code).toBe(row.code);
      });
    }
  });

  it('leaves the service unharmed', async () => {
    // Soft assertions: every way the service was harmed is reported, not only the first.
    const health = await c.api.request('GET', '/health');
    expect.soft({ status: health.status, body: health.body }).toMatchObject({ status: 200, body: { status: 'ok', database: 'up' } });

    // The socket that received every bad frame still answers, and still has no filter.
    expect.soft(await withTimeout(c.frames.request({ type: 'ping' }), 3_000, 'ping')).toMatchObject({ type: 'pong' });

    const marker = markerBody();
    await flush(c.api, c.provider.apiKey, [c.watcher, c.frames], marker);
    const expected = [...c.stored].sort((a, b) => a - b);
    expect(expected.length).toBeGreaterThan(0);
    expect.soft(c.watcher.seqs(), 'the untouched pro socket').toEqual(expected);
    expect.soft(c.frames.seqs(), 'the socket that took the bad frames').toEqual(expected);
    expect.soft(c.watcher.messages.filter((m) => !['welcome', 'signal', 'signal_update'].includes(m.type))).toEqual([]);
    expect.soft(c.watcher.closeEvent).toBeUndefined();

    const listed = await c.api.request('GET', `${SIGNALS}?after_seq=0&limit=${SIGNALS_PAGE_MAX}`, { token: c.elite.token });
    expect(listed.status).toBe(200);
    expect.soft(listed.body.has_more).toBe(false);
    const data = listed.body.data as { seq: number; external_id: string }[];
    expect
      .soft(
        data.filter((s) => s.external_id !== marker.external_id).map((s) => s.seq),
        'stored signals',
      )
      .toEqual(expected);
    expect.soft(data.filter((s) => s.external_id === marker.external_id)).toHaveLength(1);

    expect
      .soft(
        c.api.seen.filter((seen) => seen.status >= 500),
        'answers with a 5xx status',
      )
      .toEqual([]);
    expect(c.api.seen.length).toBeGreaterThan(200);
  });
});
