import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api, signalBody, UpgradeRefused, WsClient } from './support/clients.js';
import { ADMIN, createTestDatabase, startApp, type TestApp, type TestDatabase } from './support/test-app.js';

describe('logs', () => {
  let database: TestDatabase;
  let app: TestApp;
  const lines: string[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    const destination = new PassThrough();
    destination.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
    app = await startApp(database, { LOG_LEVEL: 'debug' }, { logDestination: destination });
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  it('never contain passwords, tokens or API keys', async () => {
    const api = new Api(app);
    const provider = await api.provider();
    const user = await api.user('pro');
    const secrets = [ADMIN.password, 'user-password-123', provider.apiKey, user.token, await api.admin()];

    await api.request('GET', `/api/v1/signals?token=${user.token}`, { token: user.token });
    await api.sync(provider.apiKey, signalBody());
    await api.sync(provider.apiKey, signalBody({ confidence: 'bad' }));
    await api.request('POST', '/api/auth/token', { body: { email: ADMIN.email, password: 'wrong-password' } });
    const socket = await WsClient.connect(app.wsUrl, { token: user.token });
    await socket.close();
    await WsClient.open(`${app.wsUrl}?token=${user.token}x`).catch((error) => expect(error).toBeInstanceOf(UpgradeRefused));

    await new Promise((resolve) => setTimeout(resolve, 100));
    const requestLines = lines.filter((line) => line.includes('"req"'));
    expect(requestLines.length).toBeGreaterThan(5);
    expect(lines.some((line) => line.includes('token=[REDACTED]'))).toBe(true);
    for (const secret of secrets) {
      expect(lines.filter((line) => line.includes(secret))).toEqual([]);
    }
  });
});
