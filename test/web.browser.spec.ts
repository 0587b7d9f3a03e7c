import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, openPage, signIn } from './support/browser.js';
import { formatMs, type Stats } from '../web/src/stats.js';
import { Api, signalBody, WsClient } from './support/clients.js';
import { startHttpGate } from './support/http-gate.js';
import { freePort, migrateOnce, REPO_ROOT, startService, stopAll, type ServiceProcess } from './support/processes.js';
import { ADMIN, createTestDatabase, signToken, useTestApp, type TestDatabase } from './support/test-app.js';

/**
 * The web page in a real browser (Debian's Chromium through playwright-core) against the real
 * service: tier gating on screen, a tier change from the dashboard, a server restart, polling
 * behind a proxy that refuses upgrades, the dashboard's counts. Every page must stay free of
 * console errors. Screenshots are taken at 1280×720; `UPDATE_SCREENSHOTS=1` copies them to docs/.
 */
const ctx = useTestApp();
const PASSWORD = 'user-password-123';
const SHOTS = mkdtempSync(path.join(tmpdir(), 'signalcast-shots-'));
let browser: Browser;
const opened: { problems: string[]; close(): Promise<void> }[] = [];

beforeAll(async () => {
  browser = await launchBrowser();
}, 60_000);
afterAll(async () => {
  await browser?.close();
});
afterEach(async () => {
  for (const page of opened.splice(0)) await page.close().catch(() => undefined);
});

async function pageFor(baseUrl = ctx.app.baseUrl) {
  const view = await openPage(browser, baseUrl, { width: 1280, height: 720 });
  opened.push({ problems: view.problems, close: () => view.context.close() });
  return view;
}

/**
 * What the page itself reported. A refused or unreachable connection is logged on the console by
 * Chromium itself ("WebSocket connection to ... failed", "net::ERR_CONNECTION_REFUSED"): that is
 * the network being down, which these tests cause on purpose, not an error of the page.
 */
const pageErrors = (problems: string[]) =>
  problems.filter((problem) => !/WebSocket connection to .* failed|net::ERR_CONNECTION_REFUSED|net::ERR_EMPTY_RESPONSE/.test(problem));

const rows = (page: Page, externalId: string) => page.locator(`tr[data-signal="${externalId}"]`);
const badge = (page: Page) => page.getByTestId('connection');

async function screenshot(page: Page, name: string): Promise<void> {
  const file = path.join(SHOTS, name);
  await page.screenshot({ path: file });
  if (process.env.UPDATE_SCREENSHOTS === '1') {
    mkdirSync(path.join(REPO_ROOT, 'docs', 'screenshots'), { recursive: true });
    copyFileSync(file, path.join(REPO_ROOT, 'docs', 'screenshots', name));
  }
}

describe('the web page, in Chromium', () => {
  it('shows a pro user premium and regular signals, a free user only the regular ones; an amendment replaces its row', async () => {
    const pro = await ctx.api.user('pro');
    const free = await ctx.api.user('free');
    const proView = await pageFor();
    const freeView = await pageFor();
    await signIn(proView.page, pro.email, PASSWORD);
    await signIn(freeView.page, free.email, PASSWORD);

    const regular = signalBody({ symbol: 'ETHUSDT', side: 'short', entry: '3120.5', confidence: 71 });
    const premium = signalBody({ symbol: 'SOLUSDT', premium: true, entry: '182.25', confidence: 88 });
    await ctx.api.sync(ctx.provider.apiKey, regular);
    await ctx.api.sync(ctx.provider.apiKey, premium);
    await rows(proView.page, premium.external_id as string).waitFor();
    await rows(proView.page, regular.external_id as string).waitFor();
    await rows(freeView.page, regular.external_id as string).waitFor();
    await expect.poll(() => rows(freeView.page, premium.external_id as string).count(), { timeout: 1_500, interval: 500 }).toBe(0);
    await expect(freeView.page.locator('.premium').count()).resolves.toBe(0);
    await expect(
      freeView.page.getByText('Premium signals are published for pro and elite subscribers', { exact: false }).count(),
    ).resolves.toBe(1);

    await ctx.api.sync(ctx.provider.apiKey, { ...regular, note: 'stop moved to break-even', stop_loss: '3120.5' });
    for (const view of [proView, freeView]) {
      await view.page.locator(`tr[data-signal="${regular.external_id as string}"][data-version="2"]`).waitFor();
      expect(await rows(view.page, regular.external_id as string).count()).toBe(1);
      expect(await rows(view.page, regular.external_id as string).textContent()).toContain('amended v2');
    }
    await screenshot(proView.page, 'feed-pro.png');
    await screenshot(freeView.page, 'feed-free.png');
    expect([...proView.problems, ...freeView.problems]).toEqual([]);
  });

  it('a tier change made in the dashboard stops premium signals on the open page, without a reload', async () => {
    const pro = await ctx.api.user('pro');
    const proView = await pageFor();
    await signIn(proView.page, pro.email, PASSWORD);
    const adminView = await pageFor();
    await signIn(adminView.page, ADMIN.email, ADMIN.password);
    await adminView.page.getByRole('link', { name: 'Dashboard' }).click();
    await adminView.page.getByLabel('Email contains').fill(pro.email);
    await adminView.page.getByRole('button', { name: 'Search' }).click();
    await adminView.page.getByLabel(`Tier of ${pro.email}`, { exact: true }).selectOption('free');
    await adminView.page.getByRole('button', { name: `Save the tier of ${pro.email}` }).click();
    await adminView.page.getByText('Tier set to free').waitFor();

    const premium = signalBody({ premium: true });
    const marker = signalBody({ symbol: 'MARKUSD' });
    await ctx.api.sync(ctx.provider.apiKey, premium);
    await ctx.api.sync(ctx.provider.apiKey, marker);
    await rows(proView.page, marker.external_id as string).waitFor();
    expect(await rows(proView.page, premium.external_id as string).count()).toBe(0);
    expect([...proView.problems, ...adminView.problems]).toEqual([]);
  });

  it("the dashboard's counts follow /ws/stats as pages open and close", async () => {
    const adminView = await pageFor();
    await signIn(adminView.page, ADMIN.email, ADMIN.password); // the admin's own feed: one socket
    await adminView.page.getByRole('link', { name: 'Dashboard' }).click();
    const shown = async () => Number(await adminView.page.getByTestId('stat-connections').textContent());
    const actual = async () =>
      (await ctx.api.request('GET', '/ws/stats', { token: await ctx.api.admin() })).body.total_connections as number;

    const before = await actual();
    const subscribers = [];
    for (const tier of ['basic', 'elite']) {
      const user = await ctx.api.user(tier);
      const view = await pageFor();
      await signIn(view.page, user.email, PASSWORD);
      subscribers.push(view);
    }
    expect(await actual()).toBe(before + 2);
    await expect.poll(shown, { timeout: 12_000, interval: 500 }).toBe(before + 2);
    await expect.poll(() => adminView.page.getByTestId('stat-tier-elite').textContent(), { timeout: 1_000 }).not.toBe('0');
    await screenshot(adminView.page, 'dashboard.png');

    await subscribers[0]!.context.close();
    await expect.poll(actual, { timeout: 5_000 }).toBe(before + 1);
    await expect.poll(shown, { timeout: 12_000, interval: 500 }).toBe(before + 1);
    expect([...adminView.problems, ...subscribers[1]!.problems]).toEqual([]);
  });

  it('a subscriber who opens /admin reads "not allowed", and no request fails', async () => {
    const user = await ctx.api.user('elite');
    const view = await pageFor();
    const failed: string[] = [];
    view.page.on('response', (response) => response.status() >= 400 && failed.push(`${response.status()} ${response.url()}`));
    await signIn(view.page, user.email, PASSWORD);
    await view.page.goto('/admin');
    await view.page.getByRole('heading', { name: 'Not allowed' }).waitFor();
    expect(await view.page.getByRole('link', { name: 'Dashboard' }).count()).toBe(0);
    expect(failed).toEqual([]);
    expect(view.problems).toEqual([]);
  });

  it('when the session ends, asks for the password again and the feed carries on where it stopped', async () => {
    const user = await ctx.api.user('pro');
    const view = await pageFor();
    // A session whose token ends in 8 s, as the page would have stored it after signing in.
    const session = {
      token: signToken(user.id, 'subscriber', 8),
      email: user.email,
      userId: user.id,
      role: 'subscriber',
      expiresAt: Date.now() + 8_000,
    };
    await view.page.addInitScript((stored) => sessionStorage.setItem('signalcast.session', stored), JSON.stringify(session));
    await view.page.goto('/');
    await badge(view.page).getByText('Live').waitFor();
    const before = signalBody({ symbol: 'KEEPUSD' });
    await ctx.api.sync(ctx.provider.apiKey, before);
    await rows(view.page, before.external_id as string).waitFor();

    const dialog = view.page.getByRole('dialog', { name: 'Sign in again' });
    await dialog.waitFor({ timeout: 20_000 });
    const meanwhile = signalBody({ symbol: 'GAPUSD' });
    await ctx.api.sync(ctx.provider.apiKey, meanwhile);
    await dialog.getByLabel('Password').fill(PASSWORD);
    await dialog.getByRole('button', { name: 'Sign in', exact: true }).click();
    await badge(view.page).getByText('Live').waitFor();
    await rows(view.page, meanwhile.external_id as string).waitFor();
    expect(await rows(view.page, before.external_id as string).count()).toBe(1);
    expect(await dialog.count()).toBe(0);
    expect(pageErrors(view.problems)).toEqual([]);
  });

  it("another user signing in after a polled session ended sees none of the previous user's rows", async () => {
    const gate = await startHttpGate(Number(new URL(ctx.app.baseUrl).port));
    try {
      gate.refuseUpgrades(true); // polling: no welcome ever says who the user is
      const elite = await ctx.api.user('elite');
      const free = await ctx.api.user('free');
      const view = await openPage(browser, gate.baseUrl, { width: 1280, height: 720 });
      opened.push({ problems: view.problems, close: () => view.context.close() });
      const session = {
        token: signToken(elite.id, 'subscriber', 25),
        email: elite.email,
        userId: elite.id,
        role: 'subscriber',
        expiresAt: Date.now() + 25_000,
      };
      await view.page.addInitScript((stored) => sessionStorage.setItem('signalcast.session', stored), JSON.stringify(session));
      await view.page.goto('/');
      await badge(view.page).getByText('Polling').waitFor({ timeout: 20_000 });
      const premium = signalBody({ premium: true });
      await ctx.api.sync(ctx.provider.apiKey, premium);
      await rows(view.page, premium.external_id as string).waitFor({ timeout: 15_000 });

      const dialog = view.page.getByRole('dialog', { name: 'Sign in again' });
      await dialog.waitFor({ timeout: 30_000 });
      await dialog.getByLabel('Email').fill(free.email);
      await dialog.getByLabel('Password').fill(PASSWORD);
      await dialog.getByRole('button', { name: 'Sign in', exact: true }).click();
      await badge(view.page).getByText('Polling').waitFor({ timeout: 20_000 });
      expect(await view.page.locator('.premium').count()).toBe(0);
      expect(await rows(view.page, premium.external_id as string).count()).toBe(0);
      expect(pageErrors(view.problems)).toEqual([]);
    } finally {
      await gate.close();
    }
  }, 90_000);

  it('the dashboard asks to sign in again when the service refuses the session, and a damaged stored filter is ignored', async () => {
    const admin = (await ctx.api.request('POST', '/api/auth/token', { body: ADMIN })).body.access_token as string;
    const adminId = JSON.parse(Buffer.from(admin.split('.')[1]!, 'base64url').toString()).sub as string;
    const view = await pageFor();
    const session = {
      token: signToken(adminId, 'admin', 7),
      email: ADMIN.email,
      userId: adminId,
      role: 'admin',
      expiresAt: Date.now() + 7_000,
    };
    await view.page.addInitScript(
      ([stored, id]) => {
        sessionStorage.setItem('signalcast.session', stored!);
        localStorage.setItem(`signalcast.filters.${id}`, 'null');
      },
      [JSON.stringify(session), adminId],
    );
    await view.page.goto('/');
    await badge(view.page).getByText('Live').waitFor();
    await view.page.getByRole('link', { name: 'Dashboard' }).click();
    await view.page.getByTestId('stat-connections').waitFor();
    // The token ends; the next refresh is refused (401), and the page says so instead of retrying forever.
    await view.page.getByText('Your session has ended: sign in again.').waitFor({ timeout: 20_000 });
    expect(await view.page.getByLabel('Password').count()).toBe(1);
    expect(pageErrors(view.problems).filter((problem) => !problem.includes('401'))).toEqual([]);
  });

  it('keeps the filters across a reload, and the server applies them', async () => {
    const user = await ctx.api.user('elite');
    const view = await pageFor();
    await signIn(view.page, user.email, PASSWORD);
    await view.page.getByLabel('Symbols').fill('ethusdt');
    await view.page.getByLabel('Premium only').check();
    await view.page.getByRole('button', { name: 'Apply filters' }).click();
    await view.page.waitForFunction((id) => localStorage.getItem(`signalcast.filters.${id}`)?.includes('ETHUSDT'), user.id);
    await view.page.reload();
    await badge(view.page).getByText('Live').waitFor();
    expect(await view.page.getByLabel('Symbols').inputValue()).toBe('ETHUSDT');
    expect(await view.page.getByLabel('Premium only').isChecked()).toBe(true);

    const other = signalBody({ symbol: 'BTCUSDT', premium: true });
    const regular = signalBody({ symbol: 'ETHUSDT' });
    const wanted = signalBody({ symbol: 'ETHUSDT', premium: true });
    for (const signal of [other, regular, wanted]) await ctx.api.sync(ctx.provider.apiKey, signal);
    await rows(view.page, wanted.external_id as string).waitFor();
    expect(await rows(view.page, other.external_id as string).count()).toBe(0);
    expect(await rows(view.page, regular.external_id as string).count()).toBe(0);
    expect(view.problems).toEqual([]);
  });

  it("issues a provider's API key in the dashboard (shown once), which works until it is revoked there", async () => {
    const provider = await ctx.api.user('free', 'provider');
    const view = await pageFor();
    await signIn(view.page, ADMIN.email, ADMIN.password);
    await view.page.getByRole('link', { name: 'Dashboard' }).click();
    await view.page.getByLabel('Email contains').fill(provider.email);
    await view.page.getByRole('button', { name: 'Search' }).click();
    await view.page.locator(`tr[data-user="${provider.email}"]`).getByRole('button', { name: 'Keys' }).click();
    await view.page.getByRole('button', { name: 'Issue a new key' }).click();
    const key = (await view.page.getByTestId('new-key').textContent())!;
    expect((await ctx.api.sync(key, signalBody())).status).toBe(201);
    await view.page.getByRole('button', { name: 'Revoke', exact: true }).click();
    await view.page.getByRole('button', { name: /^Revoke .*now$/ }).click();
    await view.page.getByText('revoked', { exact: false }).waitFor();
    expect((await ctx.api.sync(key, signalBody())).status).toBe(401);
    expect(view.problems).toEqual([]);
  });

  it("works from the keyboard alone, and at a phone's width nothing but the table scrolls sideways", async () => {
    const user = await ctx.api.user('pro');
    const view = await openPage(browser, ctx.app.baseUrl, { width: 390, height: 844 });
    opened.push({ problems: view.problems, close: () => view.context.close() });
    await view.page.goto('/');
    await view.page.getByLabel('Email').focus();
    await view.page.keyboard.type(user.email);
    await view.page.keyboard.press('Tab');
    await view.page.keyboard.type(PASSWORD);
    await view.page.keyboard.press('Enter');
    await badge(view.page).getByText('Live').waitFor();
    const signal = signalBody({ symbol: 'PHONEUSD' });
    await ctx.api.sync(ctx.provider.apiKey, signal);
    await rows(view.page, signal.external_id as string).waitFor();
    const overflow = await view.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await screenshot(view.page, 'feed-phone.png');
    expect(view.problems).toEqual([]);
  });

  it('behind a proxy that refuses WebSocket upgrades, the page polls and signals still arrive', async () => {
    const gate = await startHttpGate(Number(new URL(ctx.app.baseUrl).port));
    try {
      gate.refuseUpgrades(true);
      const user = await ctx.api.user('pro');
      const view = await openPage(browser, gate.baseUrl, { width: 1280, height: 720 });
      opened.push({ problems: view.problems, close: () => view.context.close() });
      await view.page.goto('/');
      await view.page.getByLabel('Email').fill(user.email);
      await view.page.getByLabel('Password').fill(PASSWORD);
      await view.page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await badge(view.page).getByText('Polling').waitFor({ timeout: 30_000 });
      const signal = signalBody({ symbol: 'POLLUSD' });
      await ctx.api.sync(ctx.provider.apiKey, signal);
      await rows(view.page, signal.external_id as string).waitFor({ timeout: 20_000 });
      expect(gate.upgradesSeen).toBeGreaterThanOrEqual(3);
      expect(pageErrors(view.problems)).toEqual([]);
    } finally {
      await gate.close();
    }
  }, 60_000);
});

describe('the web page across a server restart (separate processes on PostgreSQL)', () => {
  let database: TestDatabase;
  const services: ServiceProcess[] = [];
  beforeAll(async () => {
    database = await createTestDatabase();
    await migrateOnce(database.url!);
  }, 60_000);
  afterAll(async () => {
    for (const service of services) await service.stop('SIGKILL').catch(() => undefined);
    await stopAll();
    await database?.drop();
  });

  it('shows Reconnecting, then Live, and each signal synced meanwhile once', async () => {
    const port = await freePort();
    const start = async (name: string, at?: number) => {
      const service = await startService({ name, databaseUrl: database.url!, ...(at !== undefined && { port: at }) });
      services.push(service);
      return service;
    };
    let main = await start('web-a', port);
    // A second instance on the same database takes the syncs while the first one is down.
    const other = await start('web-b');
    const api = new Api(main.asTestApp());
    const otherApi = new Api(other.asTestApp());
    const provider = await api.provider();
    const user = await api.user('elite');
    const view = await pageFor(main.baseUrl);
    await signIn(view.page, user.email, PASSWORD);

    await main.stop('SIGTERM');
    await badge(view.page)
      .getByText(/Reconnecting in \d+ s/)
      .waitFor({ timeout: 10_000 });
    const whileDown = [
      signalBody({ symbol: 'DOWNUSD' }),
      signalBody({ symbol: 'DOWNUSD', premium: true }),
      signalBody({ symbol: 'DOWNUSD' }),
    ];
    for (const signal of whileDown) expect((await otherApi.sync(provider.apiKey, signal)).status).toBe(201);
    main = await start('web-a2', port);
    await badge(view.page).getByText('Live').waitFor({ timeout: 40_000 });
    for (const signal of whileDown) await rows(view.page, signal.external_id as string).waitFor({ timeout: 10_000 });
    for (const signal of whileDown) expect(await rows(view.page, signal.external_id as string).count()).toBe(1);
    const after = signalBody({ symbol: 'AFTERUSD' });
    await api.sync(provider.apiKey, after);
    await rows(view.page, after.external_id as string).waitFor();
    expect(pageErrors(view.problems)).toEqual([]);
  }, 90_000);
});

describe("the dashboard's delivery latency and SLO", () => {
  async function dashboard() {
    const view = await pageFor();
    await signIn(view.page, ADMIN.email, ADMIN.password);
    await view.page.getByRole('link', { name: 'Dashboard' }).click();
    await view.page.getByTestId('latency').waitFor();
    return view;
  }
  const served = async () => (await ctx.api.request<Stats>('GET', '/ws/stats', { token: await ctx.api.admin() })).body;

  it("shows the latency of a real client's receipts for its tier, and the share within the SLO", async () => {
    // A hand-written client (raw `ws`) that acknowledges every signal as soon as it arrives, as the
    // protocol allows: {"type":"received","seq":N}. A basic user: the admin's own feed (elite) and the
    // other tests' pages never add basic receipts while this test runs.
    const user = await ctx.api.user('basic');
    const client = await WsClient.connect(ctx.app.wsUrl, { token: user.token });
    client.socket.on('message', (data) => {
      const message = JSON.parse(String(data));
      if (message.type === 'signal' || message.type === 'signal_update') client.send({ type: 'received', seq: message.seq });
    });
    try {
      const view = await dashboard();
      const sent = [signalBody({ symbol: 'RCPTUSD' }), signalBody({ symbol: 'RCPTUSD', side: 'short' }), signalBody({ symbol: 'RCPTUSD' })];
      for (const signal of sent) {
        expect((await ctx.api.sync(ctx.provider.apiKey, signal)).status).toBe(201);
        await client.next((m) => m.external_id === signal.external_id);
      }
      // The server counts the receipts (this and what follows need the server's receipts and /ws/stats fields).
      await expect
        .poll(async () => (await served()).delivery_latency_ms?.basic?.count ?? 0, {
          timeout: 10_000,
          interval: 250,
          message: 'GET /ws/stats counts the receipts of the basic user (delivery_latency_ms.basic.count)',
        })
        .toBeGreaterThanOrEqual(sent.length);

      // The page shows the server's numbers for that tier once its next refresh (every 5 s) reads them.
      const row = async () =>
        Object.fromEntries(
          await Promise.all(
            (['p50', 'p99', 'count'] as const).map(async (field) => [
              field,
              await view.page.getByTestId(`latency-basic-${field}`).textContent(),
            ]),
          ),
        );
      await expect.poll(async () => Number((await row()).count), { timeout: 12_000, interval: 500 }).toBeGreaterThanOrEqual(sent.length);
      const basic = (await served()).delivery_latency_ms!.basic!;
      await expect
        .poll(row, { timeout: 12_000, interval: 500 })
        .toEqual({ p50: formatMs(basic.p50), p99: formatMs(basic.p99), count: String(basic.count) });
      expect(basic.p50).toBeTypeOf('number');
      expect((await row()).p99).toMatch(/^\d+(\.\d)? ms$/);

      const slo = (await served()).slo!;
      expect(slo.count).toBeGreaterThanOrEqual(sent.length);
      expect(await view.page.getByTestId('slo').getAttribute('data-verdict')).toMatch(/^(met|missed)$/);
      expect(await view.page.getByTestId('slo-within').textContent()).toMatch(/^\d{1,3}\.\d %$/);
      expect(await view.page.getByTestId('slo').textContent()).toContain(`within ${slo.target_ms} ms`);
      await view.page.getByTestId('latency').screenshot({ path: path.join(SHOTS, 'dashboard-latency.png') });
      expect(view.problems).toEqual([]);
    } finally {
      await client.close();
    }
  });

  it('reads "no receipts yet" without receipts, judges the share against a 99 % objective, and copes with a server that predates receipts', async () => {
    // The real /ws/stats, with its latency fields replaced: each case the page must render, whatever
    // the receipts of this run.
    let shape: (stats: Stats) => Stats = (stats) => stats;
    const view = await dashboard();
    await view.page.route('**/ws/stats', async (route) => {
      const response = await route.fetch();
      await route.fulfill({ response, json: shape((await response.json()) as Stats) });
    });
    const show = async (next: typeof shape) => {
      shape = next;
      await view.page.goto('/admin'); // reads /ws/stats at once, rather than at the next 5 s refresh
      await view.page.getByTestId('stat-connections').waitFor();
    };
    const text = (testId: string) => view.page.getByTestId(testId).textContent();
    const none = { p50: null, p99: null, count: 0 };
    const target = { target_ms: 500, window_seconds: 300 };

    await show(({ delivery_latency_ms: _latency, slo: _slo, ...older }) => older);
    await view.page.getByTestId('latency-unavailable').waitFor();
    expect(await view.page.getByTestId('slo').count()).toBe(0);

    await show((stats) => ({
      ...stats,
      delivery_latency_ms: { free: none, basic: none, pro: none, elite: none },
      slo: { ...target, within: null, count: 0 },
    }));
    expect(await text('slo-verdict')).toBe('No receipts yet');
    expect(await view.page.getByTestId('slo').getAttribute('data-verdict')).toBe('no-receipts');
    expect(await text('latency-pro-p50')).toBe('—');
    expect(await text('latency-pro-p99')).toBe('—');
    expect(await text('latency-pro-count')).toBe('0');

    // A tier the server leaves out reads as one without receipts.
    await show((stats) => ({
      ...stats,
      delivery_latency_ms: { free: { p50: 4.26, p99: 480.4, count: 398 }, elite: { p50: 12.5, p99: 140, count: 2 } },
      slo: { ...target, within: 0.9925, count: 400 },
    }));
    expect(await text('slo-verdict')).toBe('SLO met');
    expect(await text('slo-within')).toBe('99.2 %');
    expect(await text('slo')).toContain('objective 99 %, 400 receipts');
    expect([await text('latency-free-p50'), await text('latency-free-p99'), await text('latency-free-count')]).toEqual([
      '4.3 ms',
      '480 ms',
      '398',
    ]);
    expect(await text('latency-elite-p50')).toBe('13 ms');
    expect([await text('latency-basic-p99'), await text('latency-basic-count')]).toEqual(['—', '0']);
    expect(await view.page.locator('.over').count()).toBe(0);
    await view.page.screenshot({ path: path.join(SHOTS, 'dashboard-latency-met.png'), fullPage: true });

    // Just under the objective: rounded down, so it never reads as 99.0 %; a p99 over the target is marked.
    await show((stats) => ({
      ...stats,
      delivery_latency_ms: { free: none, basic: none, pro: { p50: 80, p99: 612.5, count: 9999 }, elite: none },
      slo: { ...target, within: 0.98996, count: 9999 },
    }));
    expect(await text('slo-verdict')).toBe('SLO missed');
    expect(await text('slo-within')).toBe('98.9 %');
    expect(await view.page.getByTestId('latency-pro-p99').getAttribute('class')).toBe('over');
    expect(await text('latency-pro-p99')).toBe('613 ms');
    await view.page.getByTestId('latency').screenshot({ path: path.join(SHOTS, 'dashboard-latency-missed.png') });

    // At a phone's width the panel fits; only its table may scroll sideways.
    await view.page.setViewportSize({ width: 390, height: 844 });
    await show(shape);
    expect(await view.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
    await view.page.getByTestId('latency').screenshot({ path: path.join(SHOTS, 'dashboard-latency-phone.png') });
    expect(view.problems).toEqual([]);
  });
});
