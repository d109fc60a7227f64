// The field app's service worker. The server puts two lines in front of this file:
// self.DOORSTEP_VERSION (a hash of the shell) and self.DOORSTEP_PRECACHE (every shell file with
// the hash of its bytes as its revision), see server/pwa_routes.py.
//
// Install: Workbox downloads every shell file whose revision it does not hold yet.
// Waiting: a new version never takes over by itself; the page shows "new version — reload"
// and sends SKIP_WAITING when the worker taps it. Activate: entries of the old manifest are
// deleted. Requests to /api and /couch are never cached here: data lives in IndexedDB.

importScripts('/vendor/workbox/workbox-sw.js');
workbox.setConfig({ modulePathPrefix: '/vendor/workbox/', debug: false });
workbox.core.setCacheNameDetails({ prefix: 'doorstep', precache: 'shell', suffix: 'v1' });

workbox.precaching.precacheAndRoute(self.DOORSTEP_PRECACHE, {
  // /app/?source=pwa and /app/#/household/x are the shell too.
  ignoreURLParametersMatching: [/.*/],
});
workbox.precaching.cleanupOutdatedCaches();

// Any navigation inside the app (a reload on #/household/…) gets the cached shell.
workbox.routing.registerRoute(new workbox.routing.NavigationRoute(
  workbox.precaching.createHandlerBoundToURL('/app/'), { allowlist: [/^\/app\//] },
));

// Web Push: notifications and taps on them (pwa/push/sw-push.js).
importScripts('/app/push/sw-push.js');

self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('message', (event) => {
  if (event.data?.type === 'SKIP_WAITING') self.skipWaiting();
  if (event.data?.type === 'GET_VERSION') event.ports[0]?.postMessage(self.DOORSTEP_VERSION);
});
