// Notifications on this device, turned on only by an explicit tap (never a permission prompt
// on page load): permission → the server's VAPID key → subscribe → tell the server. The
// server keeps the subscription; turning off unsubscribes here and deletes it there.

const API = '/api/push';

export class PushError extends Error {
  constructor(code, detail = '') {
    super(detail || code);
    this.code = code; // unsupported | denied | network | server
  }
}

export function supported() {
  return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
}

async function registration() {
  return navigator.serviceWorker.ready;
}

async function call(method, path, body) {
  let res;
  try {
    res = await fetch(`${API}${path}`, {
      method,
      credentials: 'same-origin',
      headers: body ? { 'Content-Type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch {
    throw new PushError('network');
  }
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new PushError('server', data?.reason || `HTTP ${res.status}`);
  return data;
}

function keyBytes(base64url) {
  const b64 = base64url.replace(/-/g, '+').replace(/_/g, '/');
  const raw = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

/**
 * 'unsupported' | 'denied' | 'off' | 'on' (this device gets notifications: subscribed here
 * and known to the server) | 'unknown' (subscribed here, server unreachable: offline).
 */
export async function pushState() {
  if (!supported()) return 'unsupported';
  if (Notification.permission === 'denied') return 'denied';
  const sub = await (await registration()).pushManager.getSubscription();
  if (!sub) return 'off';
  try {
    const known = await call('GET', `/subscriptions?endpoint=${encodeURIComponent(sub.endpoint)}`);
    return known.subscribed ? 'on' : 'off';
  } catch {
    return 'unknown';
  }
}

/** Ask, subscribe and register this device with the server. */
export async function turnOn({ device, lang }) {
  if (!supported()) throw new PushError('unsupported');
  const permission = await Notification.requestPermission();
  if (permission !== 'granted') throw new PushError('denied');
  const { public_key: key } = await call('GET', '/vapid-public-key');
  const reg = await registration();
  let sub = await reg.pushManager.getSubscription();
  if (sub && sub.options?.applicationServerKey) {
    const current = new Uint8Array(sub.options.applicationServerKey);
    const wanted = keyBytes(key);
    if (current.length !== wanted.length || current.some((b, i) => b !== wanted[i])) {
      await sub.unsubscribe(); // made for another server key: useless now
      sub = null;
    }
  }
  if (!sub) {
    sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) });
  }
  await call('POST', '/subscriptions', { subscription: sub.toJSON(), device, lang });
  return 'on';
}

/** Stop notifications on this device, here and on the server. */
export async function turnOff() {
  if (!supported()) return 'unsupported';
  const sub = await (await registration()).pushManager.getSubscription();
  if (!sub) return 'off';
  await call('DELETE', '/subscriptions', { endpoint: sub.endpoint });
  await sub.unsubscribe();
  return 'off';
}

/** A tap on a notification while the app is open: follow its route without a reload. */
export function followNotificationClicks() {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.addEventListener('message', (event) => {
    if (event.data?.type !== 'doorstep-open') return;
    const url = new URL(event.data.url, window.location.origin);
    if (url.origin === window.location.origin && url.pathname === window.location.pathname) {
      window.location.hash = url.hash;
    } else if (url.origin === window.location.origin) {
      window.location.assign(url.href);
    }
  });
}

/**
 * The settings block: what this device does, and one button to change it.
 * `t` is the app's translate function; `h` its element builder.
 */
export function renderPushSettings({ h, t, device, lang }) {
  const status = h('p.push-status', { role: 'status', 'aria-live': 'polite' });
  const button = h('button.push-toggle', { type: 'button', disabled: true });
  const el = h('section.push-settings', {}, h('h2', {}, t('push.heading')), status, button);
  let state = 'unknown';

  function paint(next, problem = '') {
    state = next;
    status.textContent = problem || t(`push.state.${state}`);
    button.textContent = t(state === 'on' || state === 'unknown' ? 'push.turn_off' : 'push.turn_on');
    button.hidden = state === 'unsupported' || state === 'denied';
    button.disabled = false;
  }

  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      paint(state === 'on' || state === 'unknown' ? await turnOff() : await turnOn({ device, lang }));
    } catch (err) {
      const code = err instanceof PushError ? err.code : 'server';
      if (code === 'denied') paint('denied');
      else paint(state, t(`push.error.${code}`));
    }
  });
  pushState().then((s) => paint(s), () => paint('unsupported'));
  return { el };
}
