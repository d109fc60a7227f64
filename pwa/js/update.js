// The service worker, registered through workbox-window: a new version waits until the worker
// taps "reload", so a half-filled form is never lost to an update.

import { Workbox } from '/vendor/workbox-window.prod.mjs';

const CHECK_EVERY_MS = 30 * 60 * 1000;
let wb = null;
let checking = false;

/** Register (once); `onWaiting(activate)` runs when a new version is ready. */
export function registerServiceWorker(onWaiting) {
  if (wb || !('serviceWorker' in navigator)) return wb;
  wb = new Workbox('/app/sw.js', { scope: '/app/' });
  wb.addEventListener('waiting', () => onWaiting(() => {
    wb.addEventListener('controlling', () => window.location.reload());
    wb.messageSkipWaiting();
  }));
  // Without a worker (blocked, or a browser without support) the app still runs online.
  wb.register().catch(() => {});
  if (!checking) {
    checking = true;
    const check = () => navigator.onLine && wb?.update().catch(() => {});
    window.addEventListener('online', check);
    setInterval(check, CHECK_EVERY_MS);
  }
  return wb;
}

export async function checkForUpdate() {
  if (wb) await wb.update();
}

/** The version of the shell the active service worker serves, or '' without one. */
export async function appVersion() {
  if (!navigator.serviceWorker?.controller) return '';
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = (e) => resolve(e.data || '');
    navigator.serviceWorker.controller.postMessage({ type: 'GET_VERSION' }, [channel.port2]);
    setTimeout(() => resolve(''), 2000);
  });
}

/** After logout the registration is gone; the next login registers afresh. */
export function forgetServiceWorker() {
  wb = null;
}
