// Web Push in the service worker (loaded by pwa/sw.js with importScripts).
//
// `push`: the server sends {kind, title, body, url, tag, lang}; we show it, one notification
// per tag (a newer digest replaces the last), and tell open pages so they can refresh.
// `notificationclick`: open the app at the household or assignment. The click logic lives in
// `openFromNotification` so that it can be called directly: headless Chromium cannot click a
// notification, and in a synthetic event waitUntil, openWindow and focus throw. It opens the
// shell route (/app/#/h/<id> …), which the precache serves offline too.

const APP_ROOT = '/app/';
const OPENABLE = [APP_ROOT, '/console/']; // a supervisor's urgent-need alert opens the console

/** Only a page of this site's app or console may be opened; else the app's start. */
function appUrl(url) {
  try {
    const u = new URL(url || APP_ROOT, self.location.origin);
    if (u.origin === self.location.origin && OPENABLE.some((p) => u.pathname.startsWith(p))) {
      return u.href;
    }
  } catch {
    // not a URL at all
  }
  return new URL(APP_ROOT, self.location.origin).href;
}

function pushData(event) {
  if (!event.data) return {};
  try {
    return event.data.json();
  } catch {
    return { body: event.data.text() };
  }
}

async function showPush(data) {
  await self.registration.showNotification(data.title || 'Doorstep', {
    body: data.body || '',
    tag: data.tag || undefined,
    lang: data.lang || undefined,
    data: { url: appUrl(data.url), kind: data.kind || '' },
  });
  const pages = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  pages.forEach((page) => page.postMessage({ type: 'doorstep-push', payload: data }));
}

/**
 * A tap on a notification: reuse an open app window (its router follows the new hash, so a
 * half-filled form elsewhere is not reloaded away) or open a new one. `clients` is
 * self.clients, or a stand-in when a test calls this outside a real click.
 * Returns what it did: {action: 'focused' | 'opened', url}.
 */
async function openFromNotification(notification, clients = self.clients) {
  const url = appUrl(notification.data?.url);
  notification.close();
  const windows = await clients.matchAll({ type: 'window', includeUncontrolled: true });
  const page = windows.find((w) => new URL(w.url).pathname.startsWith(APP_ROOT));
  if (page) {
    page.postMessage({ type: 'doorstep-open', url });
    await page.focus();
    return { action: 'focused', url };
  }
  await clients.openWindow(url);
  return { action: 'opened', url };
}

self.addEventListener('push', (event) => event.waitUntil(showPush(pushData(event))));
self.addEventListener('notificationclick', (event) => {
  event.waitUntil(openFromNotification(event.notification));
});
