import { randomUUID } from 'node:crypto';
import { Validator } from '@seriousme/openapi-schema-validator';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserSchema, tokenRequestSchema, updateUserSchema } from '../src/auth/auth.dto.js';
import { ERROR_STATUS, type ErrorCode } from '../src/common/app-error.js';
import { syncSignalSchema } from '../src/signals/signal.dto.js';
import { signalBody } from './support/clients.js';
import { RecordingApi } from './support/hostile-http.js';
import { createTestDatabase, signToken, startApp, useTestApp, type TestApp, type TestDatabase } from './support/test-app.js';

/**
 * The OpenAPI document against the code: valid OpenAPI 3.1, every operation with its answers, its
 * error codes and its security scheme; then every operation driven through real HTTP to each answer
 * it declares, each one held to its declared schema (test/support/openapi-contract.ts, which holds
 * every in-process e2e suite's answers the same way).
 */

type Json = Record<string, any>;
const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

/** Error codes this file cannot cause without a fault; the outage suites cause them, and hold them to the document. */
const CAUSED_ELSEWHERE = new Set<string>(['internal_error', 'database_unavailable', 'bus_unavailable']);
/** Answers other suites cause (and hold to the document), with where. */
const ANSWERS_CAUSED_ELSEWHERE: Record<string, string> = {
  'GET /api/v1/demo 200': 'admin-users.e2e.spec.ts, with SEED_DEMO=true and a data directory for the credentials file',
  'GET /health 503': 'database-outage.pg.e2e.spec.ts',
};

function operationsOf(document: Json): { name: string; path: string; method: string; operation: Json }[] {
  return Object.entries(document.paths as Json).flatMap(([path, item]) =>
    METHODS.filter((method) => item[method]).map((method) => ({
      name: `${method.toUpperCase()} ${path}`,
      path,
      method,
      operation: item[method] as Json,
    })),
  );
}

const inputSchema = (schema: z.ZodType) => {
  const { $schema: _, ...json } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Json;
  return json;
};

describe('the OpenAPI document', () => {
  const t = useTestApp();
  let document: Json;

  beforeAll(async () => {
    const response = await fetch(`${t.app.baseUrl}/docs-json`);
    expect(response.status).toBe(200);
    document = await response.json();
  });

  it('is valid OpenAPI 3.1', async () => {
    expect(document.openapi).toBe('3.1.0');
    const result = await new Validator().validate(structuredClone(document));
    expect(result.errors ?? [], JSON.stringify(result.errors, null, 2)).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('declares the bearer and X-Api-Key schemes, and each operation names the one it needs', () => {
    expect(document.components.securitySchemes).toEqual({
      bearer: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
      'api-key': expect.objectContaining({ type: 'apiKey', in: 'header', name: 'X-Api-Key' }),
    });
    const security = Object.fromEntries(operationsOf(document).map(({ name, operation }) => [name, operation.security ?? []]));
    for (const [name, required] of Object.entries(security)) {
      const expected = name.includes('/external-signals/')
        ? [{ 'api-key': [] }]
        : name.startsWith('GET /health') || name === 'GET /api/v1/demo' || name === 'POST /api/auth/token'
          ? []
          : [{ bearer: [] }];
      expect(required, name).toEqual(expected);
      // An operation that needs credentials says what happens without them.
      if (expected.length > 0)
        expect(document.paths[name.split(' ')[1]!][name.split(' ')[0]!.toLowerCase()].responses['401'], name).toBeDefined();
    }
  });

  it('gives every operation a success answer and its errors as { code, message, details? } with the codes of that status', () => {
    for (const { name, operation } of operationsOf(document)) {
      const statuses = Object.keys(operation.responses).map(Number);
      expect(
        statuses.some((status) => status >= 200 && status < 300),
        `${name} has no success answer`,
      ).toBe(true);
      for (const [status, response] of Object.entries(operation.responses as Json)) {
        if (Number(status) !== 204) expect(response.content?.['application/json']?.schema, `${name} ${status} has no schema`).toBeDefined();
      }
      // Whatever the operation, a body that is not JSON, one too large, and a fault.
      for (const code of ['bad_request', 'payload_too_large', 'internal_error'] as ErrorCode[]) {
        expect(codesOf(operation, ERROR_STATUS[code]), `${name} does not list ${code}`).toContain(code);
      }
      for (const status of statuses.filter((s) => s >= 400)) {
        if (name === 'GET /health' && status === 503) continue; // readiness answers its own shape
        const schema = operation.responses[status].content['application/json'].schema;
        expect(schema.required, `${name} ${status}`).toEqual(['code', 'message']);
        expect(Object.keys(schema.properties).sort(), `${name} ${status}`).toEqual(['code', 'details', 'message']);
        for (const code of schema.properties.code.enum as ErrorCode[]) expect(ERROR_STATUS[code], `${name}: ${code}`).toBe(status);
      }
    }
  });

  it('describes request bodies with the zod schemas that validate them', () => {
    const body = (path: string, method: string) => document.paths[path][method].requestBody.content['application/json'].schema;
    expect(body('/api/auth/token', 'post')).toEqual(inputSchema(tokenRequestSchema));
    expect(body('/api/v1/admin/users', 'post')).toEqual(inputSchema(createUserSchema));
    expect(body('/api/v1/admin/users/{id}', 'patch')).toEqual(inputSchema(updateUserSchema));
    expect(body('/api/v1/external-signals/sync/signal', 'post')).toEqual(inputSchema(syncSignalSchema));
  });

  it('names the answers a generated client types: Signal, User, ApiKey, WsStats and the pages', () => {
    expect(Object.keys(document.components.schemas)).toEqual(
      expect.arrayContaining(['Signal', 'SyncResponse', 'SyncBatchResponse', 'SignalsPage', 'User', 'UsersPage', 'ApiKey', 'WsStats']),
    );
    const page = document.paths['/api/v1/signals'].get.responses['200'].content['application/json'].schema;
    expect(page).toEqual({ $ref: '#/components/schemas/SignalsPage' });
  });
});

function codesOf(operation: Json, status: number): string[] {
  return operation.responses[status]?.content?.['application/json']?.schema?.properties?.code?.enum ?? [];
}

describe('every declared answer, caused through real HTTP and held to its schema', () => {
  let database: TestDatabase;
  let limitedDatabase: TestDatabase;
  let app: TestApp;
  let limitedApp: TestApp;
  let document: Json;

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await startApp(database);
    // A token limit of 2 (its answer is 429) and the smallest body limit.
    limitedDatabase = await createTestDatabase();
    limitedApp = await startApp(limitedDatabase, { AUTH_RATE_LIMIT_MAX: '2', HTTP_BODY_LIMIT_BYTES: '1024' });
    document = await (await fetch(`${app.baseUrl}/docs-json`)).json();
  });
  afterAll(async () => {
    await limitedApp?.close();
    await app?.close();
    await Promise.all([database?.drop(), limitedDatabase?.drop()]);
  });

  it('answers each operation with each status and code it declares', async () => {
    // Over node:http: a GET may carry a body (fetch refuses to send one).
    const api = new RecordingApi(app);
    const admin = await api.admin();
    const provider = await api.provider();
    const subscriber = await api.user('pro');
    const unknownId = randomUUID();
    const ghost = signToken(randomUUID(), 'subscriber', 300);
    const sync = '/api/v1/external-signals/sync/signal';
    const batch = '/api/v1/external-signals/sync/signals';

    // Token.
    await api.request('POST', '/api/auth/token', { body: { email: 'admin@test.signalcast', password: 'admin-password-123' } });
    await api.request('POST', '/api/auth/token', { body: { email: 'admin@test.signalcast', password: 'wrong-password-1' } });
    await api.request('POST', '/api/auth/token', { body: { email: '' } });
    const limited = new RecordingApi(limitedApp);
    for (let i = 0; i < 3; i++) await limited.request('POST', '/api/auth/token', { body: { email: 'x@y.z', password: 'p' } });

    // Sync, one and many.
    const signal = signalBody();
    const stored = await api.sync(provider.apiKey, signal);
    await api.sync(provider.apiKey, signal);
    await api.sync(provider.apiKey, { ...signal, confidence: 12 });
    await api.sync(provider.apiKey, { ...signal, entry: 'cheap' });
    await api.request('POST', sync, { body: signalBody() });
    await api.request('POST', sync, { token: subscriber.token, body: signalBody() });
    await api.request('POST', sync, { apiKey: 'sk_not_a_key', body: signalBody() });
    await api.request('POST', batch, {
      apiKey: provider.apiKey,
      body: { signals: [signalBody(), { ...signalBody(), side: 'up' }, signal] },
    });
    await api.request('POST', batch, { apiKey: provider.apiKey, body: { signals: [] } });
    await api.request('POST', batch, { body: { signals: [signalBody()] } });
    await api.request('POST', batch, { token: subscriber.token, body: { signals: [signalBody()] } });

    // A provider's key whose user is no longer a provider: 403.
    const former = await api.provider();
    await api.request('PATCH', `/api/v1/admin/users/${former.id}`, { token: admin, body: { role: 'subscriber' } });
    await api.sync(former.apiKey, signalBody());
    await api.request('POST', batch, { apiKey: former.apiKey, body: { signals: [signalBody()] } });

    // The listing.
    await api.request('GET', '/api/v1/signals?limit=2', { token: subscriber.token });
    await api.request('GET', '/api/v1/signals?limit=0', { token: subscriber.token });
    await api.request('GET', '/api/v1/signals');
    await api.request('GET', '/api/v1/signals', { token: ghost });

    // Admin: users and keys.
    const email = `contract-${Date.now()}@test.signalcast`;
    const created = await api.request('POST', '/api/v1/admin/users', { token: admin, body: { email, password: 'a-long-password-1' } });
    await api.request('POST', '/api/v1/admin/users', { token: admin, body: { email, password: 'a-long-password-1' } });
    await api.request('POST', '/api/v1/admin/users', { token: admin, body: { email: 'nope', password: 'short' } });
    await api.request('GET', '/api/v1/admin/users?limit=1', { token: admin });
    await api.request('GET', '/api/v1/admin/users?limit=x', { token: admin });
    await api.request('GET', `/api/v1/admin/users/${created.body.id}`, { token: admin });
    await api.request('GET', `/api/v1/admin/users/${unknownId}`, { token: admin });
    await api.request('GET', '/api/v1/admin/users/not-a-uuid', { token: admin });
    await api.request('PATCH', `/api/v1/admin/users/${created.body.id}`, { token: admin, body: { tier: 'elite' } });
    await api.request('PATCH', `/api/v1/admin/users/${unknownId}`, { token: admin, body: { tier: 'elite' } });
    await api.request('PATCH', `/api/v1/admin/users/${created.body.id}`, { token: admin, body: {} });
    const key = await api.request('POST', `/api/v1/admin/users/${provider.id}/api-keys`, { token: admin });
    await api.request('POST', `/api/v1/admin/users/${created.body.id}/api-keys`, { token: admin });
    await api.request('POST', `/api/v1/admin/users/${unknownId}/api-keys`, { token: admin });
    await api.request('POST', '/api/v1/admin/users/1/api-keys', { token: admin });
    await api.request('GET', `/api/v1/admin/users/${provider.id}/api-keys`, { token: admin });
    await api.request('GET', `/api/v1/admin/users/${unknownId}/api-keys`, { token: admin });
    await api.request('GET', '/api/v1/admin/users/1/api-keys', { token: admin });
    const receipts = (userId: string, query: string) =>
      api.request('GET', `/api/v1/admin/users/${userId}/receipts${query}`, { token: admin });
    await receipts(created.body.id, `?signal=${stored.body.signal.id}`);
    await receipts(created.body.id, `?signal=${unknownId}`);
    await receipts(created.body.id, '?signal=1');
    await api.request('DELETE', `/api/v1/admin/api-keys/${key.body.id}`, { token: admin });
    await api.request('DELETE', `/api/v1/admin/api-keys/${key.body.id}`, { token: admin });
    await api.request('DELETE', '/api/v1/admin/api-keys/1', { token: admin });
    await api.request('GET', '/ws/stats', { token: admin });

    // Every operation: without credentials, with a user's token where an admin's is needed, with a
    // body that is not JSON, and with one larger than HTTP_BODY_LIMIT_BYTES (1 KiB on the demo app).
    for (const { path, method } of operationsOf(document)) {
      const concrete = path.replace('{id}', unknownId);
      const verb = method.toUpperCase();
      await api.request(verb, concrete);
      if (path.includes('/admin/') || path === '/ws/stats') await api.request(verb, concrete, { token: subscriber.token });
      await api.request(verb, concrete, { rawBody: '{"oops', token: admin });
      await limited.request(verb, concrete, { rawBody: JSON.stringify({ padding: 'x'.repeat(4096) }) });
    }

    // Public ones.
    await api.request('GET', '/health');
    await api.request('GET', '/health/live');
    await api.request('GET', '/api/v1/demo');

    const observed = new Set(
      [...app.contract.observed, ...limitedApp.contract.observed].map((a) => `${a.operation} ${a.status}${a.code ? ` ${a.code}` : ''}`),
    );
    const missing = operationsOf(document).flatMap(({ name, operation }) =>
      Object.keys(operation.responses).flatMap((status) => {
        const codes = codesOf(operation, Number(status));
        if (codes.length === 0) return `${name} ${status}` in ANSWERS_CAUSED_ELSEWHERE ? [] : [`${name} ${status}`];
        return codes.filter((code) => !CAUSED_ELSEWHERE.has(code)).map((code) => `${name} ${status} ${code}`);
      }),
    );
    expect(
      missing.filter((answer) => !observed.has(answer)),
      'declared answers this walk did not cause',
    ).toEqual([]);
    expect(app.contract.violations).toEqual([]);
    expect(limitedApp.contract.violations).toEqual([]);
  });
});
