// The static site's service worker (fer-web build fills in VERSION and FILES): every file of the site kept in
// one cache named after the build's hash, answered from there (so the site works offline after the first
// visit); a new build (another model, other files) has another hash, installs its own cache and deletes the
// old one. Every answer also gets the headers that make the page cross-origin isolated (COOP/COEP), which
// WebAssembly threads need, so a plain static host (python -m http.server, GitHub Pages) is enough.

const VERSION = '__VERSION__';
const FILES = __FILES__;
const CACHE = `fer-web-${VERSION}`;

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(FILES.map((file) => new Request(file, { cache: 'no-cache' })));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    const old = (await caches.keys()).filter((key) => key.startsWith('fer-web-') && key !== CACHE);
    await Promise.all(old.map((key) => caches.delete(key)));
    await self.clients.claim();
  })());
});

/** The response with the cross-origin isolation headers added. @param {Response} response @returns {Response} */
function isolated(response) {
  if (response.type === 'opaque' || response.type === 'opaqueredirect') return response;
  const headers = new Headers(response.headers);
  headers.set('Cross-Origin-Opener-Policy', 'same-origin');
  headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
  headers.set('Cross-Origin-Resource-Policy', 'same-origin');
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

async function answer(request) {
  const cache = await caches.open(CACHE);
  const kept = await cache.match(request, { ignoreSearch: true });
  return isolated(kept || await fetch(request));
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET' || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith(answer(request));
});
