/// <reference lib="dom" />
// The admin dashboard in a real headless browser (Debian's chromium driven by playwright-core; .ci/run
// installs it): the page loads under its CSP, an admin signs in, and the health tiles, the charts, the
// security events and the logs show what this test made happen. A member is turned away.
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { call, ok, person } from '../conversations/fixtures.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, strongPassword } from '../identity/fixtures.js';
import { connect } from '../realtime/client.js';
import { useListeningApp } from '../realtime/fixtures.js';

const listening = useListeningApp();
let browser: Browser;

beforeAll(async () => {
  // Found (or installed) by test/global-setup.ts: CHROMIUM_PATH, else Debian's chromium.
  browser = await chromium.launch({ executablePath: inject('chromiumPath'), args: ['--no-sandbox'] });
});
afterAll(async () => {
  await browser?.close();
});

/** A page that records every console error and uncaught exception (a CSP violation is one). */
async function openPage(): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  await page.goto(`http://127.0.0.1:${listening().port}/admin`);
  return { page, problems };
}

async function signIn(page: Page, email: string, password: string): Promise<void> {
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
}

/** The sum of a chart's first data set, as Chart.js holds it. */
function chartTotal(page: Page, canvasId: string): Promise<number> {
  return page.evaluate((id) => {
    const chart = (
      window as unknown as {
        Chart: { getChart(id: string): { data: { datasets: { data: number[] }[] } } | undefined };
      }
    ).Chart.getChart(id);
    return chart ? chart.data.datasets[0]!.data.reduce((total, n) => total + n, 0) : -1;
  }, canvasId);
}

describe('the admin dashboard', () => {
  it('shows an admin health, charts of what happened, security events and the logs', async () => {
    const { app, port } = listening();
    // Things to see: messages from two people, an open socket, errors, a security event.
    const alice = await person(app);
    const bob = await person(app);
    const socket = await connect(port, bob);
    for (let i = 0; i < 3; i++)
      await ok(call(app, alice, 'POST', '/messages', { channel_id: 'general', content: `hello ${i}` }), 201);
    await ok(call(app, bob, 'POST', '/messages', { channel_id: 'general', content: 'hi all' }), 201);
    for (let i = 0; i < 2; i++)
      expect((await call(app, alice, 'GET', `/channels/missing-${i}`)).statusCode).toBe(404);
    await app.inject({ url: "/api/v2/users?department=' OR '1'='1", remoteAddress: '198.51.100.200' });
    await app.analytics!.flush();
    await app.detection!.settled();

    const { page, problems } = await openPage();
    await signIn(page, ADMIN_EMAIL, ADMIN_PASSWORD);
    await page.waitForSelector('#dashboard:not([hidden])');
    await page.waitForFunction(() => document.getElementById('health-status')?.textContent === 'ok');
    expect(Number(await page.textContent('#health-connections'))).toBeGreaterThanOrEqual(1);
    expect(Number(await page.textContent('#health-throughput'))).toBeGreaterThanOrEqual(4);

    await page.waitForFunction(() => typeof (window as unknown as { Chart?: unknown }).Chart === 'function');
    await expect.poll(() => chartTotal(page, 'chart-messages')).toBeGreaterThanOrEqual(4);
    await expect.poll(() => chartTotal(page, 'chart-active')).toBeGreaterThanOrEqual(2);
    await expect.poll(() => chartTotal(page, 'chart-errors')).toBeGreaterThanOrEqual(2);
    await expect.poll(() => chartTotal(page, 'chart-connections')).toBeGreaterThanOrEqual(1);
    // Each chart was drawn (its canvas has pixels), not only given data.
    const drawn = await page.evaluate(() =>
      ['chart-messages', 'chart-active', 'chart-errors', 'chart-connections'].map((id) => {
        const canvas = document.getElementById(id) as HTMLCanvasElement;
        return canvas.width > 0 && canvas.height > 0;
      }),
    );
    expect(drawn).toEqual([true, true, true, true]);

    const events = await page.textContent('#security-events');
    expect(events).toContain('ip:198.51.100.200');
    expect(events).toContain('injection.sql');

    await page.click('#log-files button[data-name^="main"]');
    await page.waitForFunction(() =>
      (document.getElementById('log-view')?.textContent ?? '').includes('request'),
    );

    if (process.env.DASHBOARD_SCREENSHOT)
      await page.screenshot({ path: process.env.DASHBOARD_SCREENSHOT, fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
    await socket.close();
  });

  it('turns a member away, and says why a bad password failed', async () => {
    const { app } = listening();
    const password = strongPassword();
    const member = await person(app, { password });
    const { page, problems } = await openPage();
    await signIn(page, member.email, password);
    await page.waitForFunction(() => (document.getElementById('sign-in-error')?.textContent ?? '') !== '');
    expect(await page.textContent('#sign-in-error')).toContain('administrators');
    expect(await page.isHidden('#dashboard')).toBe(true);

    await signIn(page, ADMIN_EMAIL, 'not the password');
    await page.waitForFunction(() =>
      (document.getElementById('sign-in-error')?.textContent ?? '').includes('incorrect'),
    );
    expect(problems.filter((problem) => !problem.includes('401'))).toEqual([]);
    await page.close();
  });

  it('is served with its own CSP and assets, and nothing else under /admin/assets', async () => {
    const { app } = listening();
    const page = await app.inject({ url: '/admin' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['content-security-policy']).toContain("connect-src 'self'");
    const chart = await app.inject({ url: '/admin/assets/chart.umd.min.js' });
    expect(chart.statusCode).toBe(200);
    expect(chart.headers['content-type']).toContain('javascript');
    for (const file of ['..%2Fpackage.json', 'index.html', 'constructor', '__proto__']) {
      const response = await app.inject({ url: `/admin/assets/${file}` });
      expect(response.statusCode, file).toBe(404);
    }
  });
});
