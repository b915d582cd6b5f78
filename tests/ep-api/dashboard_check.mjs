// Drives the dashboard in headless Chromium (Debian's /usr/bin/chromium through
// playwright-core): a wrong key is refused, the right one signs in, the overview lists
// the seeded metrics, the metric with the injected spike shows a shaded window labelled
// "spike" at the right time whose explanation appears on hover and click, the alerts and
// models pages render, and nothing logs an error or violates the CSP. Saves screenshots
// into EP_WORK_DIR.
//   EP_API_BASE=… EP_FIXTURE='{…}' EP_NODE_MODULES=tests/node EP_WORK_DIR=dir
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';

const require = createRequire(process.env.EP_NODE_MODULES.replace(/\/?$/, '/'));
const { chromium } = require('playwright-core');

const base = process.env.EP_API_BASE;
const f = JSON.parse(process.env.EP_FIXTURE);
const work = process.env.EP_WORK_DIR;
mkdirSync(work, { recursive: true });
const fail = (msg) => { throw new Error(msg); };

const browser = await chromium.launch({
  executablePath: process.env.EP_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const problems = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // Only this server is contacted: no CDN, works offline.
  page.on('request', (r) => { if (!r.url().startsWith(base) && !r.url().startsWith('data:')) problems.push(`external request: ${r.url()}`); });

  await page.goto(base + '/');
  await page.waitForSelector('#api-key', { state: 'visible' });
  await page.fill('#api-key', 'ep_AAAAAAAA_' + 'B'.repeat(32));
  await page.click('#signin-button');
  await page.waitForFunction(() => document.querySelector('#signin-error').textContent.includes('not accepted'));
  // The rejected 401 is logged by Chromium as a failed resource; that one is expected.
  problems.length = 0;

  await page.fill('#api-key', f.acme_key);
  await page.click('#signin-button');
  await page.waitForSelector('#view[data-rendered="overview"]');
  if ((await page.textContent('#who')) !== 'acme') fail('tenant name not shown after sign-in');
  if ((await page.evaluate(() => sessionStorage.getItem('edgepulse.api_key'))) !== f.acme_key) fail('key not kept in sessionStorage');
  const rows = await page.$$('#metrics tr[data-metric]');
  if (rows.length !== 2) fail(`overview lists ${rows.length} metrics, want 2`);
  if (!(await page.textContent('#recent-anomalies')).includes('spike')) fail('recent anomalies lack the spike');
  await page.screenshot({ path: `${work}/dashboard-overview.png`, fullPage: true });

  // Open the metric with the injected spike from the overview.
  const started = Date.now();
  await page.click(`#metrics tr[data-metric="${f.acme_voltage}"] a`);
  await page.waitForSelector('#view[data-rendered="metric"]');
  const flag = await page.waitForSelector('#chart rect.flag[data-label="spike"]');
  const renderMs = Date.now() - started;
  const flags = await page.$$('#chart rect.flag');
  if (flags.length !== 1) fail(`${flags.length} shaded windows, want 1`);
  if ((await flag.getAttribute('data-start')) !== f.spike_start) fail(`shaded window starts ${await flag.getAttribute('data-start')}, want ${f.spike_start}`);
  const box = await flag.boundingBox();
  if (!box || box.width < 2 || box.height < 50) fail(`shaded window is not visible: ${JSON.stringify(box)}`);
  const labels = await page.$$eval('#chart .flag-label', (els) => els.map((e) => e.textContent));
  if (!labels.includes('spike')) fail('shaded window is not labelled');
  await flag.hover();
  await page.waitForSelector('#tip:not([hidden])');
  if (!(await page.textContent('#tip')).includes('max')) fail('hover tooltip lacks the explanation');
  await page.screenshot({ path: `${work}/dashboard-metric.png`, fullPage: true });
  await flag.click();
  await page.waitForFunction(() => document.querySelector('#explanation').textContent.includes('max'));
  if (!(await page.textContent('#metric-alerts')).includes('delivered')) fail('metric page lacks its delivered alert');

  await page.goto(base + '/#/alerts');
  await page.waitForSelector('#view[data-rendered="alerts"]');
  const alertRows = await page.$$('tr[data-alert]');
  if (alertRows.length !== 2) fail(`alerts page shows ${alertRows.length} alerts, want 2`);
  if (!(await page.textContent('#view')).includes('HTTP 500')) fail('alerts page lacks the failed delivery error');
  await page.goto(base + '/#/models');
  await page.waitForSelector('#view[data-rendered="models"]');
  if (!(await page.textContent('#view')).includes('meter-1/voltage')) fail('models page lacks the model');

  await page.click('#signout');
  await page.waitForSelector('#signin:not([hidden])');
  if (await page.evaluate(() => sessionStorage.getItem('edgepulse.api_key'))) fail('sign out kept the key');
  if (problems.length) fail(problems.join('\n'));
  console.log(`dashboard_check: ok; metric page rendered in ${renderMs} ms; screenshots in ${work}`);
} finally {
  await browser.close();
}
