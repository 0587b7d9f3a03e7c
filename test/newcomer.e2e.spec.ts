import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api, signalBody, WsClient } from './support/clients.js';
import { createTestDatabase, startApp, type TestApp, type TestDatabase } from './support/test-app.js';

describe('newcomer path: demo accounts and API docs', () => {
  let database: TestDatabase;
  let app: TestApp;
  let dataDir: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'signalcast-demo-'));
    app = await startApp(database, { SEED_DEMO: 'true', DATA_DIR: dataDir });
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('creates demo accounts and a provider key that work end to end', async () => {
    const credentials = JSON.parse(readFileSync(path.join(dataDir, 'demo-credentials.json'), 'utf8'));
    const api = new Api(app);
    const free = await WsClient.connect(app.wsUrl, { token: await api.token('free@demo.signalcast', credentials.password) });
    const pro = await WsClient.connect(app.wsUrl, { token: await api.token('pro@demo.signalcast', credentials.password) });
    const premium = await api.sync(credentials.provider_api_key, signalBody({ premium: true }));
    const regular = await api.sync(credentials.provider_api_key, signalBody());
    await pro.next((m) => m.seq === regular.body.seq);
    await free.next((m) => m.seq === regular.body.seq);
    expect(pro.seqs()).toEqual([premium.body.seq, regular.body.seq]);
    expect(free.seqs()).toEqual([regular.body.seq]);
    await Promise.all([free.close(), pro.close()]);
  });

  it('serves the OpenAPI document', async () => {
    const response = await fetch(`${app.baseUrl}/docs-json`);
    expect(response.status).toBe(200);
    const document = await response.json();
    expect(Object.keys(document.paths)).toEqual(
      expect.arrayContaining(['/api/auth/token', '/api/v1/external-signals/sync/signal', '/api/v1/signals', '/ws/stats']),
    );
    const listing = document.paths['/api/v1/signals'].get.parameters.map((p: { name: string }) => p.name);
    expect(listing).toEqual(
      expect.arrayContaining(['after_seq', 'limit', 'symbols', 'markets', 'providers', 'sides', 'min_confidence', 'premium']),
    );
    expect((await fetch(`${app.baseUrl}/docs`)).status).toBe(200);
  });
});
