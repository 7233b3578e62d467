// Measures how fast a phone opens Muster: Lighthouse (mobile profile: simulated slow 4G,
// 4x CPU slowdown) on the field pages signed in as the demo field employee, and the offline
// repeat start (service worker installed, network off, 4x CPU slowdown, from navigation to
// the report form accepting input), and the outbox and a sync round with many reports on
// the device. Prints every figure; asserts none.
//
// Run by scripts/bench-web, which builds the site and starts the server (MUSTER_BASE_URL).
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import lighthouse from 'lighthouse';
import * as chromeLauncher from 'chrome-launcher';
import { chromium } from 'playwright-core';

const BASE = process.env.MUSTER_BASE_URL;
const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const FIELD = { login: 'dana', password: 'dana-field-demo' };
const PAGES = ['/report', '/'];
const REPEATS = Number(process.env.MUSTER_BENCH_REPEATS ?? 5);

const version = (name) => JSON.parse(
  readFileSync(createRequire(import.meta.url).resolve(`${name}/package.json`), 'utf8'),
).version;

// A session cookie for `who`, through the sign-in form's own endpoint.
async function sessionCookie(who) {
  const response = await fetch(`${BASE}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: BASE },
    body: new URLSearchParams(who).toString(),
  });
  const cookie = response.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  if (!cookie) throw new Error(`signing in as ${who.login} failed: ${response.status}`);
  return cookie;
}

const ms = (n) => `${Math.round(n)} ms`;
const kb = (n) => `${(n / 1000).toFixed(1)} KB`;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function lighthouseRuns(cookie) {
  const chrome = await chromeLauncher.launch({ chromePath: CHROMIUM, chromeFlags: FLAGS });
  try {
    for (const path of PAGES) {
      const result = await lighthouse(`${BASE}${path}`, {
        port: chrome.port,
        output: 'json',
        logLevel: 'error',
        onlyCategories: ['performance', 'accessibility'],
        extraHeaders: { Cookie: cookie },
      });
      const lhr = result.lhr;
      if (process.env.MUSTER_LIGHTHOUSE_JSON) {
        writeFileSync(`${process.env.MUSTER_LIGHTHOUSE_JSON}${path.replaceAll('/', '_')}.json`, result.report);
      }
      if (lhr.runtimeError) {
        // Lighthouse could not measure the page (it says why): print that, not figures.
        console.log(`\nLighthouse ${lhr.lighthouseVersion}, ${path}: no figures, ${lhr.runtimeError.code}: ${lhr.runtimeError.message}`);
        continue;
      }
      const audit = (id) => lhr.audits[id];
      const lcpElement = audit('largest-contentful-paint-element')?.details?.items?.[0]?.items?.[0]?.node?.snippet;
      const shifts = (audit('layout-shifts')?.details?.items ?? [])
        .map((item) => `${item.node?.snippet ?? '?'} (${item.score?.toFixed(3)})`);
      console.log(`\nLighthouse ${lhr.lighthouseVersion}, ${path} (mobile, simulated slow 4G, 4x CPU)`);
      console.log(`  performance score      ${Math.round(lhr.categories.performance.score * 100)}`);
      console.log(`  accessibility score    ${Math.round(lhr.categories.accessibility.score * 100)}`);
      console.log(`  first contentful paint ${ms(audit('first-contentful-paint').numericValue)}`);
      console.log(`  largest contentful p.  ${ms(audit('largest-contentful-paint').numericValue)}`);
      console.log(`  time to interactive    ${ms(audit('interactive').numericValue)}`);
      console.log(`  total blocking time    ${ms(audit('total-blocking-time').numericValue)}`);
      console.log(`  cumulative layout sh.  ${audit('cumulative-layout-shift').numericValue.toFixed(3)}`);
      console.log(`  bytes transferred      ${kb(audit('total-byte-weight').numericValue)}`);
      console.log(`  LCP element            ${lcpElement ?? '(none reported)'}`);
      if (shifts.length) console.log(`  layout shifts          ${shifts.join('; ')}`);
      for (const item of audit('network-requests').details.items) {
        console.log(`    ${String(item.transferSize).padStart(8)} B  ${item.url.replace(BASE, '')}`);
      }
    }
  } finally {
    await chrome.kill();
  }
}

// With the service worker installed and the network off, at 4x CPU slowdown: from
// navigation to the form accepting input (the frontend marks `muster-ready` once the page
// is hydrated, that is once its controls answer).
async function offlineRepeatStart(cookie) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS.slice(1) });
  try {
    const context = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
    const [name, value] = cookie.split('; ')[0].split('=');
    await context.addCookies([{ name, value, url: BASE }]);
    const page = await context.newPage();
    await page.goto(`${BASE}/report`);
    await page.waitForSelector('body[data-hydrated="true"]');
    await page.evaluate(() => navigator.serviceWorker.ready);
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
    await context.setOffline(true);
    const cdp = await context.newCDPSession(page);
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: 4 });
    const times = [];
    for (let i = 0; i < REPEATS; i += 1) {
      await page.goto(`${BASE}/report`);
      await page.waitForSelector('body[data-hydrated="true"]');
      times.push(await page.evaluate(() => performance.getEntriesByName('muster-ready')[0].startTime));
    }
    console.log(`\nOffline repeat start, /report, 4x CPU, ${REPEATS} runs: median ${ms(median(times))}`
      + ` (${times.map(ms).join(', ')})`);
  } finally {
    await browser.close();
  }
}

// With many reports on the device (written by `cargo bench -p app --bench device` with
// DEVICE_DUMP, all acknowledged by the server), at 4x CPU: from navigation to the outbox
// drawn with every report (the rows in the page, then the page ready: laid out, painted,
// listening), then an idle sync round ("Sync now" until it is done).
async function manyReports(cookie, dump) {
  const items = JSON.parse(readFileSync(dump, 'utf8'));
  const count = JSON.parse(items['muster.v1.index']).length;
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS.slice(1) });
  try {
    const context = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
    const [name, value] = cookie.split('; ')[0].split('=');
    await context.addCookies([{ name, value, url: BASE }]);
    await context.addInitScript((stored) => {
      if (localStorage.getItem('muster.v1.index') === null) {
        for (const [key, text] of Object.entries(stored)) localStorage.setItem(key, text);
      }
      // When the rows are first in the page (before the browser lays them out and paints).
      new MutationObserver((_, observer) => {
        if (!document.querySelector('.outbox-item')) return;
        window.musterRowsAt = performance.now();
        observer.disconnect();
      }).observe(document, { childList: true, subtree: true });
    }, items);
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: 4 });
    const starts = [];
    const inserted = [];
    for (let i = 0; i < REPEATS; i += 1) {
      await page.goto(`${BASE}/`);
      await page.waitForSelector('body[data-hydrated="true"]');
      const rows = await page.locator('.outbox-item').count();
      if (rows !== count) throw new Error(`the outbox shows ${rows} reports, not ${count}`);
      starts.push(await page.evaluate(() => performance.getEntriesByName('muster-ready')[0].startTime));
      inserted.push(await page.evaluate(() => window.musterRowsAt));
    }
    await page.getByTestId('sync-activity').filter({ hasText: 'Last synced' }).waitFor();
    const rounds = [];
    for (let i = 0; i < REPEATS; i += 1) {
      await page.waitForSelector('[data-testid=sync-now]:not([disabled])');
      rounds.push(await page.evaluate(() => new Promise((done) => {
        const button = document.querySelector('[data-testid=sync-now]');
        let started = false;
        const t0 = performance.now();
        const watch = new MutationObserver(() => {
          if (button.disabled) started = true;
          else if (started) { watch.disconnect(); done(performance.now() - t0); }
        });
        watch.observe(button, { attributes: true, attributeFilter: ['disabled'] });
        button.click();
      })));
    }
    console.log(`\n${count} reports on the device, 4x CPU, ${REPEATS} runs:`);
    console.log(`  navigation to the rows in page  median ${ms(median(inserted))} (${inserted.map(ms).join(', ')})`);
    console.log(`  navigation to the outbox drawn  median ${ms(median(starts))} (${starts.map(ms).join(', ')})`);
    console.log(`  idle sync round ("Sync now")    median ${ms(median(rounds))} (${rounds.map(ms).join(', ')})`);
  } finally {
    await browser.close();
  }
}

if (!BASE) throw new Error('MUSTER_BASE_URL must point at a running server');
console.log(`lighthouse ${version('lighthouse')}, playwright-core ${version('playwright-core')}, ${CHROMIUM}`);
const cookie = await sessionCookie(FIELD);
await lighthouseRuns(cookie);
await offlineRepeatStart(cookie);
if (process.env.MUSTER_DEVICE_DUMP) await manyReports(cookie, process.env.MUSTER_DEVICE_DUMP);
