import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/processes.js';
import { useTestApp } from './support/test-app.js';

/** How the app serves the page (web/dist, built by `npm run build`): routes, caching, CSP. */
const ctx = useTestApp();
const get = (route: string, init?: RequestInit) => fetch(`${ctx.app.baseUrl}${route}`, init);

describe('the web page, as HTTP', () => {
  it('answers / and /admin with the page, revalidated on every load, under a CSP of its own origin only', async () => {
    for (const route of ['/', '/admin']) {
      const response = await get(route);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
      expect(response.headers.get('cache-control')).toBe('no-cache');
      const policy = response.headers.get('content-security-policy')!;
      expect(policy).toContain("default-src 'self'");
      expect(policy).toContain("script-src 'self'");
      const host = new URL(ctx.app.baseUrl).host;
      expect(policy).toContain(`connect-src 'self' ws://${host} wss://${host}`);
      const html = await response.text();
      expect(html).toContain('<div id="root"></div>');
      // Scripts from files only: nothing inline that the CSP would have to allow.
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    }
  });

  it('serves the hashed assets for a year, and a missing asset is a JSON 404', async () => {
    const assets = readdirSync(path.join(REPO_ROOT, 'web', 'dist', 'assets'));
    const script = assets.find((file) => file.endsWith('.js'))!;
    const response = await get(`/assets/${script}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/javascript/);
    expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const missing = await get('/assets/index-nothere.js');
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'not_found' });
  });

  it('answers a conditional or partial request of an asset that cannot be met with its own status, never cached', async () => {
    const script = readdirSync(path.join(REPO_ROOT, 'web', 'dist', 'assets')).find((file) => file.endsWith('.js'))!;
    const partial = await get(`/assets/${script}`, { headers: { range: 'bytes=999999999-' } });
    expect(partial.status).toBe(416);
    expect(partial.headers.get('cache-control')).toBe('no-store');
    const conditional = await get(`/assets/${script}`, { headers: { 'if-match': '"nope"' } });
    expect(conditional.status).toBe(412);
    expect(conditional.headers.get('cache-control')).toBe('no-store');
  });

  it('serves /admin/ as /admin', async () => {
    const response = await get('/admin/');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
  });

  it('leaves every other route to the API: unknown paths and other methods stay JSON 404s', async () => {
    for (const [method, route] of [
      ['GET', '/no-such-page'],
      ['GET', '/admin/users'],
      ['POST', '/'],
    ] as const) {
      const response = await get(route, { method });
      expect(response.status, `${method} ${route}`).toBe(404);
      expect(await response.json()).toMatchObject({ code: 'not_found' });
    }
    expect((await get('/health')).status).toBe(200);
  });
});
