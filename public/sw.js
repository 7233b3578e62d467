// Muster's service worker: keeps the app shell so field pages open with no network.
//
// * Install precaches the shell: the HTML of the field routes, the field bundle and the
//   stylesheet (content-hashed names), the manifest and icons, in a cache named after this
//   build. scripts/site-assets.mjs stamps the build and the list.
// * Activate deletes every other build's cache.
// * Navigations go to the network first, so an online device always gets the newest build
//   (whose HTML names its own assets); when the network fails they are answered from the
//   cache. Field routes fall back to their precached shell; other pages get a short offline
//   notice.
// * Hashed assets (/pkg/) never change under their name: the cache answers them first.
// * /api/ is never answered from the cache.
const BUILD = '__MUSTER_BUILD__';
const CACHE = `muster-shell-${BUILD}`;
const SHELL_PAGES = ['/', '/report', '/alerts', '/actions', '/drill'];
const PRECACHE = ['__MUSTER_PRECACHE__'];
const STYLESHEET = PRECACHE.find((url) => url.endsWith('.css'));
const NETWORK_TIMEOUT_MS = 5000;

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll([...SHELL_PAGES, ...PRECACHE].map((url) => new Request(url, { cache: 'reload' })));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith('muster-shell-') && key !== CACHE) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith('/api/')) return; // always the network, never a stale answer
  if (request.mode === 'navigate') {
    event.respondWith(page(request, url));
  } else if (url.pathname.startsWith('/pkg/')) {
    event.respondWith(hashedAsset(request));
  } else if (PRECACHE.includes(url.pathname)) {
    event.respondWith(asset(request, url));
  }
});

function fetchWithTimeout(request) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('network timeout')), NETWORK_TIMEOUT_MS);
    fetch(request).then(
      (response) => { clearTimeout(timer); resolve(response); },
      (error) => { clearTimeout(timer); reject(error); },
    );
  });
}

async function page(request, url) {
  try {
    return await fetchWithTimeout(request);
  } catch (_) {
    if (SHELL_PAGES.includes(url.pathname)) {
      const cached = await caches.match(url.pathname, { cacheName: CACHE });
      if (cached) return cached;
    }
    return offlineNotice();
  }
}

async function hashedAsset(request) {
  const cached = await caches.match(request, { cacheName: CACHE });
  return cached || fetch(request);
}

async function asset(request, url) {
  try {
    return await fetchWithTimeout(request);
  } catch (error) {
    const cached = await caches.match(url.pathname, { cacheName: CACHE });
    if (cached) return cached;
    throw error;
  }
}

function offlineNotice() {
  const html = `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Offline - Muster</title><link rel="stylesheet" href="${STYLESHEET}"></head>
<body><main id="main"><h1>You are offline</h1>
<p>This page needs a connection. Your reports and the report form work offline.</p>
<p><a class="button primary" href="/">Go to your reports</a></p></main></body></html>`;
  return new Response(html, { status: 503, headers: { 'Content-Type': 'text/html; charset=utf-8' } });
}
