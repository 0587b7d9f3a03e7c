import { describe, expect, it } from 'vitest';
import { signalBody, UpgradeRefused, WsClient } from './support/clients.js';
import { useTestApp } from './support/test-app.js';

/** Inputs that once reached the database or were read as something else: each is a 400 naming the field. */
describe('input bounds', () => {
  const t = useTestApp();

  it('refuses a NUL character in the token request email with 400, not a database error', async () => {
    const response = await t.api.request('POST', '/api/auth/token', { body: { email: 'a\u0000b@test.signalcast', password: 'x' } });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ code: 'validation_failed', details: [{ field: 'email' }] });
  });

  const outOfRange = ['0000-01-01T00:00:00Z', '9999-12-31T23:59:59-23:59', '1969-12-31T23:59:59Z'];

  it.each(outOfRange)('refuses issued_at %s with 400 naming the field', async (date) => {
    const response = await t.api.sync(t.provider.apiKey, signalBody({ issued_at: date }));
    expect(response.status).toBe(400);
    expect(response.body.details).toEqual([expect.objectContaining({ field: 'issued_at' })]);
  });

  it.each(outOfRange.slice(0, 2))('refuses expires_at %s with 400 naming the field', async (date) => {
    const response = await t.api.sync(t.provider.apiKey, signalBody({ issued_at: '1970-01-01T00:00:00Z', expires_at: date }));
    expect(response.status).toBe(400);
    expect(response.body.details).toContainEqual({ field: 'expires_at', message: 'must be between 1970-01-01 and 9999-12-31 (UTC)' });
  });

  it('accepts the bounds themselves', async () => {
    const response = await t.api.sync(
      t.provider.apiKey,
      signalBody({ issued_at: '1970-01-01T00:00:00Z', expires_at: '9999-12-31T23:59:59.999Z' }),
    );
    expect(response.status).toBe(201);
  });

  it('answers an out-of-range date in a batch item on its own, and stores its neighbours', async () => {
    const signals = [signalBody(), signalBody({ issued_at: '0000-01-01T00:00:00Z' }), signalBody()];
    const response = await t.api.request('POST', '/api/v1/external-signals/sync/signals', { apiKey: t.provider.apiKey, body: { signals } });
    expect(response.status).toBe(200);
    expect(response.body.results.map((r: { status: number }) => r.status)).toEqual([201, 400, 201]);
    expect(response.body.results[1].error).toMatchObject({
      code: 'validation_failed',
      details: [{ field: expect.stringContaining('issued_at') }],
    });
  });

  const badIntegers = ['', '%20', '0x10', '1e3', '-1', '1.5', '%2B5', '99999999999999999'];

  it.each(badIntegers)('refuses since=%s at the upgrade with 400', async (value) => {
    const user = await t.api.user('pro');
    const refused = await WsClient.open(`${t.app.wsUrl}?since=${value}&token=${user.token}`).catch((error) => error);
    expect(refused).toBeInstanceOf(UpgradeRefused);
    expect(refused.status).toBe(400);
  });

  it.each(badIntegers)('refuses min_confidence=%s at the upgrade with 400', async (value) => {
    const user = await t.api.user('pro');
    const refused = await WsClient.open(`${t.app.wsUrl}?min_confidence=${value}&token=${user.token}`).catch((error) => error);
    expect(refused).toBeInstanceOf(UpgradeRefused);
    expect(refused.status).toBe(400);
  });

  it.each(badIntegers.flatMap((value) => [['after_seq', value] as const, ['limit', value] as const]))(
    'refuses %s=%s on the listing with 400 naming the field',
    async (field, value) => {
      const user = await t.api.user('pro');
      const response = await t.api.request('GET', `/api/v1/signals?${field}=${value}`, { token: user.token });
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ code: 'validation_failed', details: [{ field }] });
    },
  );

  it('takes plain decimal integers on the listing and the upgrade', async () => {
    const user = await t.api.user('pro');
    const listed = await t.api.request('GET', '/api/v1/signals?after_seq=0&limit=007', { token: user.token });
    expect(listed.status).toBe(200);
    const socket = await WsClient.connect(`${t.app.wsUrl}?min_confidence=60`, { token: user.token, since: 0 });
    await socket.next((m) => m.type === 'replay_complete');
    await socket.close();
  });

  it('lets the Authorization header win over ?token= when both are given', async () => {
    const user = await t.api.user('pro');
    const headerWins = await WsClient.connect(`${t.app.wsUrl}?token=garbage`, { headers: { authorization: `Bearer ${user.token}` } });
    expect(headerWins.messages[0]).toMatchObject({ type: 'welcome', user_id: user.id });
    await headerWins.close();
    const refused = await WsClient.open(`${t.app.wsUrl}?token=${user.token}`, { headers: { authorization: 'Bearer garbage' } }).catch(
      (error) => error,
    );
    expect(refused).toBeInstanceOf(UpgradeRefused);
    expect(refused.status).toBe(401);
  });
});
