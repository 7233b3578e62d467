// Browser end-to-end: what a field employee and a supervisor do, in Debian's Chromium
// driven by playwright-core, against the release build served on 127.0.0.1.
//
// Run by scripts/test, which starts the server and sets MUSTER_BASE_URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ARTIFACTS, BACK_ONLINE_MS, BASE, DANA, NOT_CONNECTED, SAM, assertValue, backOnlineUntilSynced, browser,
  connectivity, fileReport, hydrated, serviceWorkerControls, signIn, syncBadge, useBrowser, watchErrors,
} from './support.mjs';

useBrowser();

test('a field report made offline syncs by itself and merges with a supervisor edit', { timeout: 180_000 }, async () => {
  const title = `Chemical smell in lab ${Date.now() % 1000}`;
  const field = await browser.newContext({
    viewport: { width: 360, height: 640 },
    permissions: ['geolocation'],
    geolocation: { latitude: 51.50135, longitude: -0.14189, accuracy: 9 },
  });
  const page = await field.newPage();
  const consoleErrors = [];
  watchErrors(page, consoleErrors);

  // (a) Online: sign in; the app loads, hydrates and installs its service worker.
  await signIn(page, DANA);
  await serviceWorkerControls(page);
  await connectivity(page, /^Online$/).waitFor();

  // (b) The browser says it is offline: so does the app. A reload still loads and
  // hydrates the app, which does not claim to be online (whatever the browser says).
  await field.setOffline(true);
  await connectivity(page, /^Offline$/).waitFor();
  await page.reload();
  await hydrated(page);
  await connectivity(page, NOT_CONNECTED).waitFor();
  // The API is never answered from the cache.
  const api = await page.evaluate(() =>
    fetch('/api/sync', { method: 'POST', body: '{}' }).then(() => 'answered', () => 'failed'));
  assert.equal(api, 'failed', 'an offline /api request must fail, not be served from cache');

  // (c) File a report offline.
  await page.getByRole('link', { name: 'Report an incident' }).click();
  await page.waitForURL(`${BASE}/report`);
  await page.getByLabel('Title').fill(title);
  await page.getByLabel('Category').selectOption('environmental_release');
  await page.getByLabel('Severity').selectOption('moderate');
  await page.getByRole('button', { name: 'Use my location' }).click();
  await page.getByTestId('gps-fix').waitFor();
  await page.getByLabel('Place (as people call it)').fill('Lab 3, north wing');
  await page.getByLabel('What happened?').fill('Sharp solvent smell near the fume cupboard after the extractor stopped.');
  await page.getByLabel('People involved (one per line)').fill('Rita Gomez\nSam Lee');
  await assertValue(page, '#reporter', DANA.name); // filed in the signed-in person's name
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: `${ARTIFACTS}/report-form-360x640.png` });
  await page.screenshot({ path: `${ARTIFACTS}/report-form-full.png`, fullPage: true });
  await page.getByRole('button', { name: 'Save report' }).click();
  await page.waitForURL(`${BASE}/`);
  await syncBadge(page, title).filter({ hasText: /^Not synced$/ }).waitFor();
  await page.getByTestId('unsynced').filter({ hasText: '1 unsynced report' }).waitFor();

  // ... and it survives an offline reload, still unsynced.
  await page.reload();
  await hydrated(page);
  await syncBadge(page, title).filter({ hasText: /^Not synced$/ }).waitFor();
  await page.screenshot({ path: `${ARTIFACTS}/outbox-360x640.png` });

  // (d) Back online: it syncs with no click.
  await backOnlineUntilSynced(field, page, title);
  await page.getByTestId('unsynced').filter({ hasText: '0 unsynced reports' }).waitFor();
  await connectivity(page, /^Online$/).waitFor();

  // (e) The supervisor's list shows it.
  const desk = await browser.newContext();
  const deskPage = await desk.newPage();
  watchErrors(deskPage, consoleErrors);
  await signIn(deskPage, SAM);
  await deskPage.goto(`${BASE}/incidents`);
  await deskPage.getByRole('link', { name: title }).waitFor();

  // (f) The field device goes offline and edits; meanwhile the supervisor edits too
  // (before triage: once triaged, the facts are the supervisor's, see SECURITY.md).
  await field.setOffline(true);
  await page.locator('.outbox-item', { hasText: title }).getByRole('link').click();
  await page.waitForURL(/\/report\?id=/);
  await assertValue(page, '#title', title);
  await page.getByLabel('Immediate actions taken').fill('Lab evacuated; extractor fan restarted by facilities.');
  await page.getByRole('button', { name: 'Save report' }).click();
  await page.waitForURL(`${BASE}/`);
  await syncBadge(page, title).filter({ hasText: /^Not synced$/ }).waitFor();

  await deskPage.getByRole('link', { name: title }).click();
  await deskPage.waitForURL(/\/incidents\//);
  await hydrated(deskPage);
  await deskPage.getByLabel('Severity').selectOption('major');
  await deskPage.getByRole('button', { name: 'Save changes' }).click();
  await deskPage.getByText('Saved.').waitFor();

  await backOnlineUntilSynced(field, page, title);

  // The detail page shows both edits merged.
  await deskPage.reload();
  await hydrated(deskPage);
  const fields = deskPage.getByTestId('incident-fields');
  await fields.getByText('Lab evacuated; extractor fan restarted by facilities.').waitFor();
  await fields.getByText('Major', { exact: true }).waitFor();

  // The supervisor triages it; the triage reaches the device.
  await deskPage.getByLabel('Status').selectOption('triaged');
  await deskPage.getByRole('button', { name: 'Save changes' }).click();
  await deskPage.getByText('Saved.').waitFor();
  await page.getByRole('button', { name: 'Sync now' }).click();
  await page.locator('.outbox-item', { hasText: title }).filter({ hasText: 'Triaged' }).waitFor({ timeout: 30_000 });
  await deskPage.reload();
  await hydrated(deskPage);
  await fields.getByText('Triaged', { exact: true }).waitFor();
  await fields.getByText('Rita Gomez, Sam Lee').waitFor();
  await deskPage.screenshot({ path: `${ARTIFACTS}/incident-detail.png`, fullPage: true });

  // A supervisor edit reaches a device that has nothing of its own to send: "Sync now".
  await deskPage.getByLabel('Status').selectOption('investigating');
  await deskPage.getByRole('button', { name: 'Save changes' }).click();
  await deskPage.getByText('Saved.').waitFor();
  await page.getByRole('button', { name: 'Sync now' }).click();
  await page.locator('.outbox-item', { hasText: title }).filter({ hasText: 'Investigating' }).waitFor({ timeout: 30_000 });

  // A supervisor edit made while the device is offline, with nothing of its own to send,
  // reaches its outbox through the feed as soon as it is back online, with no click.
  await field.setOffline(true);
  // Not every browser tells the page (no `offline` event after an offline reload): a try
  // of its own shows the device it cannot get through.
  await page.getByRole('button', { name: 'Sync now' }).click();
  await connectivity(page, NOT_CONNECTED).waitFor();
  await deskPage.reload();
  await hydrated(deskPage);
  await deskPage.getByLabel('Status').selectOption('resolved');
  await deskPage.getByRole('button', { name: 'Save changes' }).click();
  await deskPage.getByText('Saved.').waitFor();
  await deskPage.getByLabel('Update', { exact: true }).fill('Extractor fan serviced; lab reopened.');
  await deskPage.getByRole('button', { name: 'Add update' }).click();
  await deskPage.getByTestId('timeline').getByText('Extractor fan serviced; lab reopened.').waitFor();
  await page.waitForTimeout(500);
  assert.equal(await page.locator('.outbox-item', { hasText: title }).filter({ hasText: 'Resolved' }).count(), 0,
    'an offline device cannot have it yet');
  await field.setOffline(false);
  await page.locator('.outbox-item', { hasText: title }).filter({ hasText: 'Resolved' }).waitFor({ timeout: BACK_ONLINE_MS });
  await syncBadge(page, title).filter({ hasText: /^Synced$/ }).waitFor();

  assert.deepEqual(consoleErrors, [], 'no uncaught errors or CSP violations in the pages');
  await field.close();
  await desk.close();
});

test('lie-fi: requests fail while the browser claims a connection; the app says so, retries, and syncs once they get through', { timeout: 240_000 }, async () => {
  const phone = await browser.newContext({ viewport: { width: 360, height: 640 } });
  const page = await phone.newPage();
  const errors = [];
  watchErrors(page, errors);
  await signIn(page, DANA);
  await connectivity(page, /^Online$/).waitFor();

  // Every API request now fails at the network level, as behind a captive portal or on a
  // dead Wi-Fi, while the browser still says it is online.
  const unreachable = (route) => route.abort('internetdisconnected');
  await page.route('**/api/**', unreachable);
  const title = `Valve leaking in pump room ${Date.now() % 1000}`;
  await fileReport(page, { title, place: 'Pump room B', what: 'Drip from the inlet valve, pooling under pump 2.' });
  await connectivity(page, /^Can't reach the server$/).waitFor();
  assert.equal(await page.evaluate(() => navigator.onLine), true, 'the browser still claims a connection');
  await syncBadge(page, title).filter({ hasText: /^Not synced$/ }).waitFor();
  await page.getByTestId('unsynced').filter({ hasText: '1 unsynced report' }).waitFor();
  await page.getByTestId('sync-activity').filter({ hasText: 'Last sync failed: the server could not be reached' }).waitFor();
  // The bar says when the next try is, and the engine makes it by itself: the attempts
  // the route refuses keep coming with no click and no browser event.
  await page.getByTestId('next-try').filter({ hasText: /^Next try in \d+ s$/ }).waitFor();
  const attempts = [];
  let twoRetries;
  const retried = new Promise((resolve) => { twoRetries = resolve; });
  const counting = (route) => {
    attempts.push(Date.now());
    if (attempts.length === 2) twoRetries();
    return unreachable(route);
  };
  // The route registered last is asked first, so no request slips through in between.
  await page.route('**/api/**', counting);
  await page.unroute('**/api/**', unreachable);
  let deadline;
  await Promise.race([retried, new Promise((_, reject) => {
    deadline = setTimeout(() => reject(new Error(`${attempts.length} retries within ${BACK_ONLINE_MS} ms`)), BACK_ONLINE_MS);
  })]);
  clearTimeout(deadline);
  // The backoff never waits less than a second between tries.
  assert.ok(attempts[1] - attempts[0] >= 900, `retries are spaced out (${attempts[1] - attempts[0]} ms apart)`);
  await page.screenshot({ path: `${ARTIFACTS}/lie-fi-360x640.png` });

  // A request that hangs is abandoned after its deadline (30 s, plus the time its small
  // body would take on a very slow link) and counts as not reached.
  let hung = 0;
  const hang = () => { hung += 1; }; // never answered
  await page.route('**/api/sync', hang);
  await page.unroute('**/api/**', counting);
  await page.getByRole('button', { name: 'Sync now' }).click();
  await page.getByTestId('sync-activity').filter({ hasText: 'Syncing' }).waitFor();
  await page.getByTestId('sync-activity')
    .filter({ hasText: /^Last sync failed: the server did not answer within 3\d s$/ }).waitFor({ timeout: 45_000 });
  assert.ok(hung >= 1, 'the sync request was held');
  await connectivity(page, /^Can't reach the server$/).waitFor();
  await syncBadge(page, title).filter({ hasText: /^Not synced$/ }).waitFor();

  // Requests get through again: the next retry syncs it, with no click and no event.
  const back = Date.now();
  await page.unroute('**/api/sync', hang);
  await syncBadge(page, title).filter({ hasText: /^Synced$/ }).waitFor({ timeout: BACK_ONLINE_MS });
  console.log(`# lie-fi: requests through again -> "${title}" synced in ${((Date.now() - back) / 1000).toFixed(1)} s`);
  await connectivity(page, /^Online$/).waitFor();
  await page.getByTestId('next-try').waitFor({ state: 'detached' });
  await page.getByTestId('sync-activity').filter({ hasText: 'Last synced' }).waitFor();
  assert.deepEqual(errors, [], 'no uncaught errors or CSP violations');
  await phone.close();
});

test('the app is installable by Chromium\'s criteria', { timeout: 60_000 }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${BASE}/`);
  await hydrated(page);
  await serviceWorkerControls(page);
  // Chromium finds nothing stopping installation (manifest, icons, service worker).
  const cdp = await context.newCDPSession(page);
  const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
  // Playwright's contexts are incognito, which Chromium reports on its own; anything else
  // (manifest, icons, service worker) would be the app's fault.
  const blocking = installabilityErrors.filter((e) => e.errorId !== 'in-incognito');
  assert.deepEqual(blocking, [], 'installable as an app');
  const manifest = await (await page.request.get(`${BASE}/manifest.webmanifest`)).json();
  assert.equal(manifest.display, 'standalone');
  assert.ok(manifest.icons.some((i) => i.purpose === 'maskable'));
  await context.close();
});

test('a phone loads the field bundle only, compressed; a desk page loads the desk bundle', { timeout: 120_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 360, height: 640 } });
  const page = await context.newPage();
  // The WASM modules this page fetched: name, bytes on the wire, bytes decoded.
  const modules = () => page.evaluate(() => performance.getEntriesByType('resource')
    .filter((e) => e.name.endsWith('.wasm'))
    .map((e) => ({ name: new URL(e.name).pathname, wire: e.encodedBodySize, decoded: e.decodedBodySize })));
  // A first visit, before any service worker: the sign-in page is a field page.
  await page.goto(`${BASE}/login`);
  await hydrated(page);
  const field = await modules();
  assert.equal(field.length, 1, JSON.stringify(field));
  assert.match(field[0].name, /^\/pkg\/field_bg-[0-9a-f]{16}\.wasm$/);
  // Served from its brotli copy: far fewer bytes on the wire than in the module.
  assert.ok(field[0].wire > 0 && field[0].wire < field[0].decoded / 2, JSON.stringify(field));
  await signIn(page, SAM);
  await page.goto(`${BASE}/report`);
  await hydrated(page);
  assert.match((await modules())[0].name, /^\/pkg\/field_bg-/);
  // The form is in the server's HTML, before any WASM runs.
  const html = await (await page.request.get(`${BASE}/report`)).text();
  assert.match(html, /<form[^>]*class="report-form"/);
  // The field bundle has no desk pages: following a link to one loads it from the server
  // (a real navigation, not the router's).
  const loaded = page.waitForResponse((r) => r.url() === `${BASE}/incidents` && r.request().isNavigationRequest());
  await page.getByRole('link', { name: 'Incidents', exact: true }).click();
  await loaded;
  await page.waitForLoadState('load');
  await hydrated(page);
  const desk = await modules();
  assert.equal(desk.length, 1, JSON.stringify(desk));
  assert.match(desk[0].name, /^\/pkg\/desk_bg-[0-9a-f]{16}\.wasm$/);
  await page.getByRole('heading', { name: 'Incidents' }).waitFor();
  await context.close();
});

test('script injected into a page does not run, and the page says why', { timeout: 60_000 }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const violations = [];
  watchErrors(page, violations);
  await signIn(page, SAM);
  await page.goto(`${BASE}/incidents`);
  await hydrated(page);
  assert.deepEqual(violations, [], 'the app itself runs within its policy');
  // What an HTML injection would do: an inline script, an inline event handler.
  await page.evaluate(() => {
    const script = document.createElement('script');
    script.textContent = 'window.__injected = "inline";';
    document.body.append(script);
    const img = document.createElement('img');
    img.setAttribute('src', 'data:,');
    img.setAttribute('onerror', 'window.__injected = "handler"');
    document.body.append(img);
  });
  await page.waitForTimeout(200);
  assert.equal(await page.evaluate(() => window.__injected), undefined, 'injected code did not run');
  assert.ok(violations.some((v) => /Content Security Policy/i.test(v)), 'the browser reported the violations');
  await context.close();
});

test('hostile text in every field is shown as plain text on every page', { timeout: 120_000 }, async () => {
  // The policy is bypassed here, so this checks that pages escape text, not only that the
  // browser would refuse to run it.
  const hostile = (name) =>
    `<script>window.__xss='${name}'</script><img src=x onerror="window.__xss='${name}'"> =cmd|' /C calc'!A0 ${name}`;
  const title = hostile(`title${Date.now() % 1000}`);
  const field = await browser.newContext({ bypassCSP: true, viewport: { width: 360, height: 640 } });
  const page = await field.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const inert = async (p, where) => {
    assert.equal(await p.evaluate(() => window.__xss), undefined, `no injected code ran on ${where}`);
    assert.equal(await p.locator('img[src="x"]').count(), 0, `no injected element on ${where}`);
  };

  // A supervisor may file a report on someone else's behalf, so every field is free text.
  await signIn(page, SAM);
  await page.goto(`${BASE}/report`);
  await hydrated(page);
  await page.getByLabel('Title').fill(title);
  await page.getByLabel('Place (as people call it)').fill(hostile('place'));
  await page.getByLabel('What happened?').fill(hostile('what'));
  await page.getByLabel('People involved (one per line)').fill(`${hostile('person')}\n=HYPERLINK("http://evil.example")`);
  await page.getByLabel('Immediate actions taken').fill(hostile('actions'));
  await page.getByLabel('Your name').fill(hostile('reporter'));
  await page.getByRole('button', { name: 'Save report' }).click();
  await page.waitForURL(`${BASE}/`);
  await page.locator('.outbox-item', { hasText: title }).waitFor();
  await syncBadge(page, title).filter({ hasText: /^Synced$/ }).waitFor({ timeout: 30_000 });
  await inert(page, 'the outbox');

  // Server-rendered HTML holds the text escaped, never as markup.
  const escapedOnly = async (path) => {
    const html = await (await page.request.get(`${BASE}${path}`)).text();
    assert.ok(html.includes('&lt;script&gt;window.__xss='), `${path} shows the text escaped`);
    assert.ok(!html.includes('<script>window.__xss'), `${path} holds no injected script`);
    assert.ok(!html.includes('<img src=x'), `${path} holds no injected element`);
  };
  await escapedOnly('/incidents');
  const deskLive = await browser.newContext({ bypassCSP: true });
  const deskPage = await deskLive.newPage();
  deskPage.on('pageerror', (e) => errors.push(String(e)));
  await signIn(deskPage, SAM);
  await deskPage.goto(`${BASE}/incidents`);
  await hydrated(deskPage);
  await deskPage.getByRole('link', { name: title }).click();
  await deskPage.waitForURL(/\/incidents\//);
  await hydrated(deskPage);
  const fields = deskPage.getByTestId('incident-fields');
  for (const name of ['what', 'actions', 'place']) {
    await fields.getByText(hostile(name)).first().waitFor();
  }
  await fields.getByText(hostile('person')).first().waitFor();
  await deskPage.getByLabel('Update', { exact: true }).fill(hostile('update'));
  await deskPage.getByRole('button', { name: 'Add update' }).click();
  await deskPage.getByTestId('timeline').getByText(hostile('update')).first().waitFor();
  await inert(deskPage, 'the incident page');
  await escapedOnly(new URL(deskPage.url()).pathname);
  // Back on the device, the edit form holds the text as values.
  await page.locator('.outbox-item', { hasText: title }).getByRole('link').click();
  await page.waitForURL(/\/report\?id=/);
  await assertValue(page, '#title', title);
  await inert(page, 'the edit form');
  assert.deepEqual(errors, [], 'no uncaught errors');
  await field.close();
  await deskLive.close();
});

test('signed in once, a field employee works offline, syncs as themselves, and signing out wipes the device', { timeout: 180_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 360, height: 640 } });
  const page = await context.newPage();
  const errors = [];
  watchErrors(page, errors);
  await signIn(page, DANA);
  await serviceWorkerControls(page);

  // Offline, a reload: still signed in, and a report can be filed.
  await context.setOffline(true);
  await page.reload();
  await hydrated(page);
  await page.getByTestId('signed-in-as').filter({ hasText: DANA.name }).waitFor();
  const fileUnsynced = async (title) => {
    await fileReport(page, { title, place: 'Loading dock', what: 'Cable run across the walkway.' });
    await syncBadge(page, title).filter({ hasText: /^Not synced$/ }).waitFor();
  };
  const synced = `Trip hazard ${Date.now() % 1000}`;
  await fileUnsynced(synced);

  // Online: it syncs by itself, filed under Dana on the server.
  await backOnlineUntilSynced(context, page, synced);
  const list = await (await page.request.get(`${BASE}/incidents`)).text();
  assert.ok(list.includes(synced), 'her report is on the server');
  assert.ok(list.includes(DANA.name), 'filed under her name');
  // The report's history names her and her phone, from the document's own changes.
  await page.goto(`${BASE}/incidents`);
  await page.getByRole('link', { name: synced }).click();
  await page.waitForURL(/\/incidents\//);
  await hydrated(page);
  const history = page.getByTestId('history');
  await history.getByText(new RegExp(`${DANA.name} · Chrom`)).waitFor();
  await history.getByText('filed the report').waitFor();
  await page.goto(`${BASE}/`);
  await hydrated(page);

  // A report that cannot reach the server yet; then sign out: asked first.
  await page.route('**/api/sync', (route) => route.abort());
  const unsynced = `Unsynced note ${Date.now() % 1000}`;
  await fileUnsynced(unsynced);
  await page.getByTestId('sign-out').click();
  const confirm = page.getByTestId('sign-out-confirm');
  await confirm.waitFor();
  await confirm.getByText('1 report(s) on this device have not reached the server').waitFor();
  assert.ok(await page.getByTestId('sign-out-discard').isDisabled(), 'not without typing DELETE');
  await page.getByLabel('To sign out anyway and delete them, type DELETE').fill('DELETE');
  await page.getByTestId('sign-out-discard').click();
  await page.waitForURL(`${BASE}/login?signed_out=1`);
  await page.getByTestId('signed-out').waitFor();

  // Nothing of hers is left: no local storage, no cached page holding report text, no session.
  assert.equal(await page.evaluate(() => localStorage.length), 0, 'local storage is empty');
  const cachedHits = await page.evaluate(async (titles) => {
    const hits = [];
    for (const key of await caches.keys()) {
      const cache = await caches.open(key);
      for (const request of await cache.keys()) {
        const text = await (await cache.match(request)).text();
        if (titles.some((t) => text.includes(t))) hits.push(request.url);
      }
    }
    return hits;
  }, [synced, unsynced]);
  assert.deepEqual(cachedHits, [], 'no cached page holds report text');
  const me = await page.request.get(`${BASE}/api/me`);
  assert.equal(me.status(), 401, 'the session is over');
  const incidents = await page.request.get(`${BASE}/incidents`, { maxRedirects: 0 });
  assert.equal(incidents.status(), 303, 'desk pages send her to sign in');
  assert.deepEqual(errors, [], 'no uncaught errors or CSP violations');
  await context.close();
});

test('an injury with a hospital stay is P1 with its 24-hour clock, on the phone and at the desk', { timeout: 120_000 }, async () => {
  const phone = await browser.newContext({ viewport: { width: 360, height: 640 } });
  const page = await phone.newPage();
  const errors = [];
  watchErrors(page, errors);
  await signIn(page, DANA);
  await page.getByRole('link', { name: 'Report an incident' }).click();
  await page.waitForURL(`${BASE}/report`);
  await hydrated(page);
  const title = `Hand caught in press ${Date.now() % 1000}`;
  await page.getByLabel('Title').fill(title);
  await page.getByLabel('Place (as people call it)').fill('Press line 2');
  await page.getByLabel('What happened?').fill('Glove pulled into the rollers; hand crushed.');
  const preview = page.getByTestId('priority-preview');
  await preview.filter({ hasText: 'Priority P1' }).waitFor(); // not judged yet: counts as high
  await page.getByLabel('Impact').selectOption('low');
  await page.getByLabel('Urgency').selectOption('low');
  await preview.filter({ hasText: /^Priority P5$/ }).waitFor();
  await page.getByLabel('Category').selectOption('injury_illness');
  await page.getByLabel('Did anyone die, lose an eye, lose a limb or stay in hospital?').selectOption('hospitalised');
  await preview.filter({ hasText: /Priority P1 — must be reported to the authority within 24 hours/ }).waitFor();
  await page.getByRole('button', { name: 'Save report' }).click();
  await page.waitForURL(`${BASE}/`);
  await syncBadge(page, title).filter({ hasText: /^Synced$/ }).waitFor({ timeout: 30_000 });
  // The phone shows it too, and keeps showing it offline.
  await phone.setOffline(true);
  await page.reload();
  await hydrated(page);
  const item = page.locator('.outbox-item', { hasText: title });
  await item.locator('.prio').filter({ hasText: 'P1' }).waitFor();
  await item.getByTestId('report-clock').filter({ hasText: /Report to the authority by .*\((24 h|23 h \d+ min) left\)/ }).waitFor();
  await phone.setOffline(false);

  const desk = await browser.newContext();
  const sam = await desk.newPage();
  watchErrors(sam, errors);
  await signIn(sam, SAM);
  await sam.goto(`${BASE}/incidents`);
  await hydrated(sam);
  const row = sam.locator('tr', { hasText: title });
  await row.locator('.prio').filter({ hasText: 'P1' }).waitFor();
  await row.getByText('Report to the authority by').waitFor();
  await row.getByRole('link', { name: title }).click();
  await sam.waitForURL(/\/incidents\//);
  await hydrated(sam);
  await sam.getByTestId('regulatory-clock').filter({ hasText: /Admitted to hospital .*report this to the authority by .*left/ }).waitFor();
  await sam.getByTestId('incident-fields').getByText('Low: one person or item, little or no harm').waitFor();
  await sam.screenshot({ path: `${ARTIFACTS}/regulatory-clock.png`, fullPage: true });
  assert.deepEqual(errors, []);
  await phone.close();
  await desk.close();
});

test('two people set the same field while one is offline: the supervisor sees both, with who, and keeps one', { timeout: 180_000 }, async () => {
  const phone = await browser.newContext({ viewport: { width: 360, height: 640 } });
  const page = await phone.newPage();
  const errors = [];
  watchErrors(page, errors);
  await signIn(page, DANA);
  await serviceWorkerControls(page);
  const title = `Pallet on fire exit ${Date.now() % 1000}`;
  await page.getByRole('link', { name: 'Report an incident' }).click();
  await page.waitForURL(`${BASE}/report`);
  await hydrated(page);
  await page.getByLabel('Title').fill(title);
  await page.getByLabel('Place (as people call it)').fill('Fire exit 4');
  await page.getByLabel('What happened?').fill('A pallet of boxes blocks the fire exit.');
  await page.getByRole('button', { name: 'Save report' }).click();
  await page.waitForURL(`${BASE}/`);
  await syncBadge(page, title).filter({ hasText: /^Synced$/ }).waitFor({ timeout: 30_000 });

  // Offline, Dana renames it; meanwhile Sam renames it at the desk.
  await phone.setOffline(true);
  await page.locator('.outbox-item', { hasText: title }).getByRole('link').click();
  await page.waitForURL(/\/report\?id=/);
  await hydrated(page);
  const fromPhone = `${title}, cleared by Dana`;
  const fromDesk = `${title}, cleared by stores`;
  await page.getByLabel('Title').fill(fromPhone);
  await page.getByRole('button', { name: 'Save report' }).click();
  await page.waitForURL(`${BASE}/`);

  const desk = await browser.newContext();
  const sam = await desk.newPage();
  watchErrors(sam, errors);
  await signIn(sam, SAM);
  await sam.goto(`${BASE}/incidents`);
  await sam.getByRole('link', { name: title }).click();
  await sam.waitForURL(/\/incidents\//);
  await hydrated(sam);
  await sam.locator('#sup-title').fill(fromDesk);
  await sam.getByRole('button', { name: 'Save changes' }).click();
  await sam.getByText('Saved.').waitFor();

  // Synced; which title the outbox shows until someone chooses is Automerge's pick.
  await backOnlineUntilSynced(phone, page, title);

  // Both values, each with who set it; Sam keeps Dana's.
  await sam.reload();
  await hydrated(sam);
  const conflict = sam.getByTestId('conflict-title');
  await conflict.getByText('2 concurrent values').waitFor();
  await conflict.locator('li', { hasText: fromPhone }).getByText(DANA.name).waitFor();
  await conflict.locator('li', { hasText: fromDesk }).getByText(SAM.name).waitFor();
  await sam.screenshot({ path: `${ARTIFACTS}/conflict.png`, fullPage: true });
  await conflict.getByRole('button', { name: `Keep “${fromPhone}” for Title` }).click();
  await sam.getByTestId('conflict-title').waitFor({ state: 'detached' });
  await sam.getByTestId('incident-fields').getByText(fromPhone, { exact: true }).waitFor();

  // The choice reaches the phone.
  await page.getByRole('button', { name: 'Sync now' }).click();
  await page.locator('.outbox-item', { hasText: fromPhone }).waitFor({ timeout: 30_000 });
  assert.deepEqual(errors, []);
  await phone.close();
  await desk.close();
});

test('from a report made offline to lessons learned: the supervisor responds, the reporter sees the outcome, also offline', { timeout: 300_000 }, async () => {
  const phone = await browser.newContext({ viewport: { width: 360, height: 640 } });
  const page = await phone.newPage();
  const errors = [];
  watchErrors(page, errors);
  await signIn(page, DANA);
  await serviceWorkerControls(page);
  const title = `Pallet fell from top shelf ${Date.now() % 1000}`;

  // The device has synced once, so it holds the response plans.
  await page.getByTestId('sync-activity').filter({ hasText: 'Last synced' }).waitFor({ timeout: 30_000 });

  // Offline, Dana files the report, ticking the injury plan's first steps as she does
  // them; it waits in the outbox, then syncs by itself.
  await phone.setOffline(true);
  await page.getByRole('link', { name: 'Report an incident' }).click();
  await page.waitForURL(`${BASE}/report`);
  await hydrated(page);
  await page.getByLabel('Title').fill(title);
  await page.getByLabel('Category').selectOption('injury_illness');
  const plan = page.getByTestId('plan');
  await plan.getByLabel('Whoever reports: Make the area safe before helping').check();
  await plan.getByLabel('Whoever reports: Call a first aider (ext. 2222)').check();
  await plan.getByText(/done \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/).first().waitFor();
  await page.screenshot({ path: `${ARTIFACTS}/plan-offline.png`, fullPage: true });
  await page.getByLabel('Place (as people call it)').fill('Racking row C');
  await page.getByLabel('What happened?').fill('A pallet of tins fell from the top shelf into the aisle and grazed a picker.');
  // The OSHA 301 details, marked private, and a witness.
  const injury = page.getByTestId('injury-fields');
  await injury.getByText('Private').waitFor();
  await injury.getByLabel("Employee's full name").fill('Jo Picker');
  await injury.getByLabel('Time the employee began work').fill('06:30');
  await injury.getByLabel('Part of the body affected').fill('Right forearm');
  await injury.getByLabel('Treatment').selectOption('first_aid');
  await page.getByRole('button', { name: 'Add a witness' }).click();
  await page.getByLabel("Witness's name").fill('Kim Driver');
  await page.getByLabel('What they saw').fill('The pallet tipped when the shelf flexed.');
  // A photo, as a phone camera gives it: larger than kept (2400×1800), so the device
  // makes it smaller; noisy, so it uploads in several chunks.
  const camera = await page.evaluate(() => {
    const canvas = document.createElement('canvas');
    canvas.width = 2400;
    canvas.height = 1800;
    const ctx = canvas.getContext('2d');
    const pixels = ctx.createImageData(2400, 1800);
    for (let i = 0; i < pixels.data.length; i += 1) pixels.data[i] = (i % 4 === 3) ? 255 : Math.floor(Math.random() * 256);
    ctx.putImageData(pixels, 0, 0);
    return canvas.toDataURL('image/jpeg', 0.9).split(',')[1];
  });
  await page.getByLabel(/Take or add photos/).setInputFiles({ name: 'camera.jpg', mimeType: 'image/jpeg', buffer: Buffer.from(camera, 'base64') });
  await page.getByTestId('photo-message').filter({ hasText: '1 photo added' }).waitFor({ timeout: 30_000 });
  const taken = page.getByTestId('photos').getByTestId('photo');
  await taken.getByTestId('photo-state').filter({ hasText: 'On this device, waiting to upload' }).waitFor();
  const thumb = taken.getByRole('img', { name: 'Photo 1, 1600×1200 pixels' });
  await thumb.waitFor();
  assert.deepEqual(await thumb.evaluate((img) => [img.naturalWidth, img.naturalHeight]), [1600, 1200]);
  await taken.screenshot({ path: `${ARTIFACTS}/photo-offline.png` });
  await page.getByRole('button', { name: 'Save report' }).click();
  await page.waitForURL(`${BASE}/`);
  await syncBadge(page, title).filter({ hasText: /^Not synced$/ }).waitFor();
  await page.getByTestId('unsynced').filter({ hasText: '1 photo to upload' }).waitFor();
  // Kept in IndexedDB, not in local storage.
  const photosOnDevice = () => page.evaluate(() => new Promise((resolve, reject) => {
    const open = indexedDB.open('muster-photos');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      if (!db.objectStoreNames.contains('photos')) { db.close(); resolve(0); return; }
      const count = db.transaction('photos').objectStore('photos').count();
      count.onsuccess = () => { db.close(); resolve(count.result); };
      count.onerror = () => reject(count.error);
    };
  }));
  assert.equal(await photosOnDevice(), 1);
  const localBytes = await page.evaluate(() => Object.keys(localStorage).reduce((n, k) => n + localStorage.getItem(k).length, 0));
  assert.ok(localBytes < 200_000, `local storage holds ${localBytes} characters: the photo is not there`);
  await backOnlineUntilSynced(phone, page, title);
  // The photo follows the text; once on the server it leaves the device.
  await page.getByTestId('unsynced').filter({ hasText: /^0 unsynced reports$/ }).waitFor({ timeout: 60_000 });
  assert.equal(await photosOnDevice(), 0);

  // Sam triages (assigned to himself), investigates, adds an action.
  const desk = await browser.newContext();
  const sam = await desk.newPage();
  watchErrors(sam, errors);
  await signIn(sam, SAM);
  // Not judged yet, so P1: Sam (the site's supervisor) has an alert for it.
  await sam.getByTestId('alerts-link').waitFor({ timeout: 30_000 });
  await sam.getByTestId('alerts-link').click();
  await sam.waitForURL(`${BASE}/alerts`);
  await hydrated(sam);
  await sam.getByTestId('alerts').getByRole('link', { name: title }).click();
  await sam.waitForURL(/\/incidents\//);
  await hydrated(sam);
  const details = sam.getByTestId('injury-details');
  await details.getByText('Right forearm').waitFor();
  await details.getByText('First aid only').waitFor();
  await details.getByText('06:30').waitFor();
  await sam.getByTestId('witnesses').getByText('Kim Driver').waitFor();
  const photo = sam.getByTestId('photos').getByRole('img', { name: /^Photo 1 of 1/ });
  await photo.scrollIntoViewIfNeeded(); // loaded lazily, when it comes into view
  await sam.waitForFunction((img) => img.complete && img.naturalWidth > 0, await photo.elementHandle());
  assert.deepEqual(await photo.evaluate((img) => [img.naturalWidth, img.naturalHeight]), [1600, 1200]);
  const ticked = sam.getByTestId('plan-ticks');
  await ticked.getByText('Whoever reports: Make the area safe before helping').waitFor();
  await ticked.getByText('Whoever reports: Call a first aider (ext. 2222)').waitFor();
  const update = sam.getByRole('region', { name: 'Update this incident' });
  const saveUpdate = async (status) => {
    await update.getByLabel('Status', { exact: true }).selectOption(status);
    await update.getByRole('button', { name: 'Save changes' }).click();
    await sam.getByTestId('incident-fields').locator('.field-view', { hasText: 'Status' })
      .getByText(status.charAt(0).toUpperCase() + status.slice(1), { exact: true }).waitFor();
    await hydrated(sam);
  };
  await update.getByLabel('Assigned to').selectOption({ label: SAM.name });
  await update.getByLabel('Response due by').fill('2030-01-31');
  await saveUpdate('triaged');
  await sam.getByTestId('incident-fields').locator('.field-view', { hasText: 'Assigned to' }).getByText(SAM.name).waitFor();
  await saveUpdate('investigating');
  // The timeline shows the moves and the assignment by itself, from the history.
  const timeline = sam.getByTestId('timeline');
  await timeline.getByText('moved it from Reported to Triaged; assigned the response to Sam Okafor').waitFor();
  await timeline.getByText('moved it from Triaged to Investigating').waitFor();
  // An update for the reporter too.
  const forDana = 'We are checking every bay in row C today.';
  await sam.getByLabel('Update', { exact: true }).fill(forDana);
  await sam.getByLabel('For', { exact: true }).selectOption('reporter');
  await sam.getByRole('button', { name: 'Add update' }).click();
  await timeline.locator('li', { hasText: forDana }).getByText('also for the reporter').waitFor();
  await hydrated(sam);

  const investigation = sam.getByTestId('investigation');
  await investigation.getByLabel('Why 1?').fill('The pallet fell');
  await investigation.getByLabel('Why 2?').fill('It was stacked above the top beam');
  await investigation.getByLabel('Why 3?').fill('Nobody marks the highest safe level');
  await investigation.getByLabel('Contributing factors (one per line)').fill('Night shift\nNew starter');
  await investigation.getByRole('button', { name: 'Save investigation' }).click();
  await sam.getByText('Root cause: Nobody marks the highest safe level').waitFor();
  await hydrated(sam);

  const actionText = 'Paint the highest safe level on every upright';
  const actions = sam.getByRole('region', { name: 'Corrective and preventive actions' });
  await actions.getByLabel('What is to be done').fill(actionText);
  await actions.getByLabel('Owner').selectOption({ label: SAM.name });
  await actions.getByLabel('Due by').fill('2020-01-31'); // already past: overdue
  await actions.getByRole('button', { name: 'Add action' }).click();
  const item = sam.locator('.action', { hasText: actionText });
  await item.getByTestId('overdue').waitFor();
  await sam.getByTestId('overdue-summary').waitFor();
  await hydrated(sam);
  await sam.screenshot({ path: `${ARTIFACTS}/response-overdue.png`, fullPage: true });

  // It is in Sam's own list, marked overdue, as the sync brought it; and it still is offline.
  const list = await desk.newPage();
  watchErrors(list, errors);
  await list.goto(`${BASE}/actions`);
  await hydrated(list);
  const overdueAction = list.getByTestId('my-actions').locator('.action.overdue', { hasText: actionText });
  await overdueAction.waitFor();
  await serviceWorkerControls(list);
  await desk.setOffline(true);
  await list.reload();
  await hydrated(list);
  await overdueAction.waitFor();
  // Offline too, Sam marks the report's alert read: off the list at once; the server is
  // told once the device is back online (the device's queue of marks empties).
  await list.goto(`${BASE}/alerts`);
  await hydrated(list);
  const alert = list.getByTestId('alerts').locator('li', { hasText: title });
  await alert.getByRole('button', { name: `Mark “${title}” as read` }).click();
  await alert.waitFor({ state: 'detached' });
  const marksWaiting = () => JSON.parse(localStorage.getItem('muster.v1.notices_read') || '[]').length;
  assert.equal(await list.evaluate(marksWaiting), 1);
  await desk.setOffline(false);
  await list.waitForFunction(() => JSON.parse(localStorage.getItem('muster.v1.notices_read') || '[]').length === 0, null, { timeout: 30_000 });
  await list.close();

  // Done and checked, resolved; the review; reviewed.
  await item.getByLabel('State').selectOption('done');
  await item.getByLabel('Effectiveness check').selectOption('effective');
  await item.getByRole('button', { name: `Save action “${actionText}”` }).click();
  await sam.locator('.action', { hasText: actionText }).locator('p .sub').filter({ hasText: /· Effective$/ }).waitFor();
  await sam.getByTestId('overdue-summary').waitFor({ state: 'detached' });
  await hydrated(sam);
  await saveUpdate('resolved');
  const lessons = 'Know the highest safe level before you stack, and ask when it is not marked.';
  const review = sam.getByTestId('review');
  await review.getByLabel('Summary').fill('A pallet stacked above the top beam fell into the aisle; nobody was hurt.');
  await review.getByLabel('Lessons learned').fill(lessons);
  await review.getByRole('button', { name: 'Save review' }).click();
  await review.getByText('Review saved.').waitFor();
  await hydrated(sam);
  await saveUpdate('reviewed');
  await sam.screenshot({ path: `${ARTIFACTS}/response-reviewed.png`, fullPage: true });

  // Dana's phone: after a sync her report says what came of it, and still does offline.
  await page.getByRole('button', { name: 'Sync now' }).click();
  const mine = page.locator('.outbox-item', { hasText: title });
  await mine.getByText('Reviewed').waitFor({ timeout: 30_000 });
  await mine.getByRole('link').click();
  await page.waitForURL(/\/report\?id=/);
  await hydrated(page);
  const outcome = page.getByTestId('report-outcome');
  await outcome.getByTestId('lessons').filter({ hasText: lessons }).waitFor();
  await outcome.getByText('Nobody marks the highest safe level').waitFor();
  await outcome.getByTestId('updates-for-reporter').getByText(forDana).waitFor();
  await page.getByTestId('photos').getByTestId('photo-state').filter({ hasText: 'Uploaded' }).waitFor();
  await phone.setOffline(true);
  await page.reload();
  await hydrated(page);
  await page.getByTestId('report-outcome').getByTestId('lessons').filter({ hasText: lessons }).waitFor();
  await page.getByTestId('report-status').filter({ hasText: 'Status: Reviewed' }).waitFor();
  await page.screenshot({ path: `${ARTIFACTS}/lessons-on-phone.png`, fullPage: true });
  assert.deepEqual(errors, []);
  await phone.close();
  await desk.close();
});

test('wrong passwords are refused with a reason, then throttled', { timeout: 60_000 }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const who = { ...SAM, password: 'not-the-password' };
  await page.goto(`${BASE}/login`);
  await hydrated(page);
  for (let attempt = 0; attempt < 6; attempt += 1) {
    await page.getByLabel('Login').fill('kelly');
    await page.getByLabel('Password').fill(who.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/login\?/);
    await hydrated(page);
  }
  await page.getByTestId('signin-error').filter({ hasText: 'Too many failed attempts' }).waitFor();
  await context.close();
});
