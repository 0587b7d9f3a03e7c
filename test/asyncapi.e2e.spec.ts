import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';
// Draft-07, the JSON Schema draft AsyncAPI schemas extend.
import { Ajv } from 'ajv';
import ajvFormats from 'ajv-formats';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ASYNCAPI_FILE, ASYNCAPI_ROUTE } from '../src/common/asyncapi.js';
import { SignalSide, SignalStatus, Tier } from '../src/generated/prisma/enums.js';
import { WS_CLOSE } from '../src/gateway/ws-close-codes.js';
import { CLIENT_REQUEST_TYPES, clientRequestSchema, type ServerMessageMap, type WsErrorCode } from '../src/gateway/ws-messages.js';
import { SIGNAL_COLUMNS } from '../src/signals/signal-fields.js';
import { Api, signalBody, WsClient } from './support/clients.js';
import { createTestDatabase, signToken, startApp, useTestApp, type TestApp, type TestDatabase } from './support/test-app.js';

/**
 * docs/asyncapi.yaml against the code: valid AsyncAPI 3, exactly the messages of ws-messages.ts,
 * client payloads equal to the zod schemas the gateway validates with, and every server message a
 * live connection receives valid against its declared payload, with no undocumented field.
 */

/** Every key of ServerMessageMap, and no other (the compiler holds this list to the type). */
const SERVER_MESSAGE_TYPES = Object.keys({
  welcome: true,
  signal: true,
  signal_update: true,
  pong: true,
  ack: true,
  replay_complete: true,
  resync_required: true,
  token_expiring: true,
  reconnect: true,
  error: true,
} satisfies Record<keyof ServerMessageMap, true>);

const WS_ERROR_CODES = Object.keys({
  malformed_message: true,
  unknown_type: true,
  binary_not_supported: true,
  invalid_request: true,
  rate_limited: true,
  invalid_token: true,
  token_user_mismatch: true,
  replay_in_progress: true,
  internal_error: true,
} satisfies Record<WsErrorCode, true>);

type Json = Record<string, any>;

/** A schema without the parser's bookkeeping (`x-parser-*`) and without annotations, which do not validate. */
function bare(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(bare);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => !key.startsWith('x-parser-') && !['description', 'title', 'examples'].includes(key))
      .map(([key, inner]) => [key, bare(inner)]),
  );
}

/** The properties a payload schema names, its `allOf` parts included. */
function declaredKeys(schema: Json): string[] {
  return [...Object.keys(schema.properties ?? {}), ...(schema.allOf ?? []).flatMap(declaredKeys)];
}

const sorted = (values: Iterable<string>) => [...values].sort();

const source = readFileSync(ASYNCAPI_FILE, 'utf8');
/** The parsed document, references resolved. */
let document: Json;
/** Channel messages by name. */
let messages: Record<string, Json>;

beforeAll(async () => {
  const { document: parsed, diagnostics } = await new Parser().parse(source, { source: ASYNCAPI_FILE });
  const explain = (d: (typeof diagnostics)[number]) => `${d.code} at ${d.path.join('.')}: ${d.message}`;
  const warnings = diagnostics.filter((d) => d.severity !== 0);
  if (warnings.length > 0) console.warn(`docs/asyncapi.yaml: ${warnings.length} parser warning(s):\n${warnings.map(explain).join('\n')}`);
  const errors = diagnostics.filter((d) => d.severity === 0);
  expect(errors.map(explain), 'docs/asyncapi.yaml has errors').toEqual([]);
  expect(parsed).toBeDefined();
  document = parsed!.json() as Json;
  messages = document.channels.signals.messages;
});

describe('docs/asyncapi.yaml', () => {
  it('is AsyncAPI 3 with one server and one channel at /ws/signals, with bearer and query-token auth', () => {
    expect(document.asyncapi).toBe('3.0.0');
    expect(Object.keys(document.servers)).toEqual(['signalcast']);
    expect(document.servers.signalcast).toMatchObject({ protocol: 'ws', pathname: '/ws/signals' });
    expect(Object.keys(document.channels)).toEqual(['signals']);
    expect(document.channels.signals.address).toBe('/ws/signals');
    expect(Object.keys(document.channels.signals.bindings.ws.query.properties)).toEqual(
      expect.arrayContaining(['token', 'since', 'symbols', 'markets', 'providers', 'sides', 'min_confidence', 'premium']),
    );
    const schemes = document.servers.signalcast.security.map((scheme: Json) => scheme.type);
    expect(sorted(schemes)).toEqual(['http', 'httpApiKey']);
  });

  it('has a message for every client request and every server message, and no other', () => {
    expect(sorted(Object.keys(messages))).toEqual(sorted([...CLIENT_REQUEST_TYPES, ...SERVER_MESSAGE_TYPES]));
    for (const [name, message] of Object.entries(messages)) {
      expect(message.name, name).toBe(name);
      expect(message.payload.properties.type, name).toMatchObject({ type: 'string', const: name });
      expect(message.payload.required, name).toContain('type');
    }
  });

  it('receives the client requests and sends the server messages', () => {
    const byAction = (action: string) =>
      sorted(
        Object.values(document.operations as Record<string, Json>)
          .filter((operation) => operation.action === action)
          .flatMap((operation) => operation.messages.map((message: Json) => message.name as string)),
      );
    expect(byAction('receive')).toEqual(sorted(CLIENT_REQUEST_TYPES));
    expect(byAction('send')).toEqual(sorted(SERVER_MESSAGE_TYPES));
  });

  it('describes each client request with exactly the zod schema the gateway validates it with', () => {
    for (const option of clientRequestSchema.options) {
      const type = option.shape.type.value;
      const generated = z.toJSONSchema(option, { io: 'input', target: 'draft-7' }) as Json;
      delete generated.$schema;
      expect(
        bare(messages[type]!.payload),
        `components.messages.${type}.payload of docs/asyncapi.yaml differs from z.toJSONSchema() of its zod schema, which is:\n` +
          JSON.stringify(generated, null, 2),
      ).toEqual(generated);
    }
  });

  it('names the wire fields of a signal, the error codes, tiers, sides and statuses of the code', () => {
    const signal = document.components.schemas.Signal;
    const wireKeys = SIGNAL_COLUMNS.map((column) => ('wire' in column && column.wire) || column.name);
    expect(Object.keys(signal.properties)).toEqual(wireKeys);
    expect(sorted(signal.required)).toEqual(sorted(wireKeys));
    expect(signal.properties.side.enum).toEqual(Object.values(SignalSide));
    expect(signal.properties.status.enum).toEqual(Object.values(SignalStatus));
    expect(messages.welcome!.payload.properties.tier.enum).toEqual(Object.values(Tier));
    expect(messages.error!.payload.properties.code.enum).toEqual(WS_ERROR_CODES);
  });

  it('lists every close code the server uses in the close-code table', () => {
    const table = document.channels.signals.description as string;
    for (const [name, { code }] of Object.entries(WS_CLOSE)) expect(table, name).toContain(`| ${code} |`);
  });
});

describe('the live service: real server messages against their declared payloads, and the route', () => {
  const t = useTestApp({ WS_REPLAY_MAX: '3', WS_TOKEN_EXPIRY_WARNING_MS: '1500' });
  const captured: Json[] = [];
  // Not strict: AsyncAPI's schema keywords beyond JSON Schema (e.g. `discriminator`) are annotations here.
  const ajv = new Ajv({ allErrors: true, strict: false });
  ajvFormats.default(ajv);

  /** Validates a message against its declared payload; a field the document does not name fails too. */
  function check(message: Json): void {
    const declared = messages[message.type];
    expect(declared, `no message "${message.type}" in docs/asyncapi.yaml`).toBeDefined();
    const payload = declared!.payload as Json;
    const valid = ajv.validate(payload, message);
    expect(valid, `${JSON.stringify(message)}: ${ajv.errorsText(ajv.errors)}`).toBe(true);
    const undocumented = Object.keys(message).filter((key) => !declaredKeys(payload).includes(key));
    expect(undocumented, `${message.type} carries fields docs/asyncapi.yaml does not name`).toEqual([]);
  }

  it('on one connection: welcome, signal, signal_update, pong, ack, error, replay_complete, resync_required', async () => {
    const user = await t.api.user('pro');
    const client = await WsClient.connect(t.app.wsUrl, { token: user.token });
    const { latest_seq: start } = client.messages[0];

    const body = signalBody({ symbol: 'ethusdt', expires_at: '2099-11-22T10:00:00.000Z' });
    const created = await t.api.sync(t.provider.apiKey, body);
    expect(created.status).toBe(201);
    await client.next((m) => m.type === 'signal' && m.seq === created.body.seq);
    const amended = await t.api.sync(t.provider.apiKey, { ...body, note: 'moved the stop', stop_loss: null, take_profits: [] });
    expect(amended.status).toBe(200);
    await client.next((m) => m.type === 'signal_update' && m.seq === amended.body.seq);

    expect(await client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    client.send({ type: 'ping' }); // a pong without an id
    await client.next((m) => m.type === 'pong' && m.id === undefined);
    const filters = {
      symbols: ['ethusdt'],
      markets: ['crypto'],
      providers: [t.provider.id],
      sides: ['long'],
      min_confidence: 10,
      premium: false,
    };
    expect(await client.request({ type: 'subscribe', filters })).toMatchObject({ type: 'ack', subscribed: true });
    expect(await client.request({ type: 'unsubscribe' })).toMatchObject({ type: 'ack', subscribed: false });
    expect(await client.request({ type: 'auth', token: await t.api.token(user.email, 'user-password-123') })).toMatchObject({
      type: 'ack',
      token_expires_at: expect.any(String),
    });
    expect(await client.request({ type: 'launch_rockets' })).toMatchObject({ type: 'error', code: 'unknown_type' });
    expect(await client.request({ type: 'resume', since: -1 })).toMatchObject({ type: 'error', code: 'invalid_request', field: 'since' });
    client.send('{not json');
    await client.next((m) => m.type === 'error' && m.code === 'malformed_message');

    expect(await client.request({ type: 'resume', since: start })).toMatchObject({ type: 'replay_complete', count: 1 });
    await client.close();

    // Connections that resume from the URL: more signals due than WS_REPLAY_MAX, then one.
    let last = 0;
    for (let i = 0; i < 3; i++) {
      const synced = await t.api.sync(t.provider.apiKey, signalBody());
      expect(synced.status).toBe(201);
      last = synced.body.seq;
    }
    const behind = await WsClient.connect(t.app.wsUrl, { token: user.token, since: start });
    expect(await behind.next((m) => m.type === 'resync_required')).toMatchObject({ since: start, max_replay: 3 });
    await behind.close();
    const resumed = await WsClient.connect(t.app.wsUrl, { token: user.token, since: last - 1 });
    expect(await resumed.next((m) => m.type === 'replay_complete')).toMatchObject({ last_seq: last, count: 1 });
    await resumed.close();
    captured.push(...client.messages, ...behind.messages, ...resumed.messages);
  });

  it('token_expiring, before the token runs out', async () => {
    const user = await t.api.user('free');
    const client = await WsClient.connect(t.app.wsUrl, { token: signToken(user.id, 'subscriber', 2) });
    await client.next((m) => m.type === 'token_expiring', 3_000);
    captured.push(...client.messages);
    await client.close();
  });

  describe('reconnect, at the maximum connection lifetime', () => {
    let database: TestDatabase;
    let app: TestApp;
    beforeAll(async () => {
      database = await createTestDatabase();
      app = await startApp(database, { WS_MAX_CONNECTION_LIFETIME_MS: '600' });
    });
    afterAll(async () => {
      await app?.close();
      await database?.drop();
    });

    it('is sent before the close', async () => {
      const user = await new Api(app).user('free');
      const client = await WsClient.connect(app.wsUrl, { token: user.token });
      await client.next((m) => m.type === 'reconnect', 3_000);
      captured.push(...client.messages);
      await client.waitClose();
    });
  });

  it('every message type was seen, and each validates against docs/asyncapi.yaml', () => {
    expect(sorted(new Set(captured.map((message) => message.type)))).toEqual(sorted(SERVER_MESSAGE_TYPES));
    for (const message of captured) check(message);
  });
  it(`serves the document at ${ASYNCAPI_ROUTE} as YAML, revalidated on every load, and the OpenAPI description points to it`, async () => {
    const response = await fetch(`${t.app.baseUrl}${ASYNCAPI_ROUTE}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/yaml/);
    expect(response.headers.get('cache-control')).toBe('no-cache');
    expect(await response.text()).toBe(source);
    expect((await fetch(`${t.app.baseUrl}${ASYNCAPI_ROUTE}`, { method: 'HEAD' })).status).toBe(200);

    const openapi = await fetch(`${t.app.baseUrl}/docs-json`);
    expect(openapi.status).toBe(200);
    expect((await openapi.json()).info.description).toContain(ASYNCAPI_ROUTE);
  });
});
