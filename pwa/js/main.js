// The field app: opens from the service worker's cache, reads the grids from IndexedDB,
// paints the household list, then syncs in the background.

import * as api from './api.js';
import { h, replace } from './dom.js';
import { initI18n, t } from './i18n.js';
import { deviceId, saveProfile, savedProfile } from './profile.js';
import { followNotificationClicks, turnOff as turnOffPush } from '../push/push-client.js';
import { GridStore } from './store.js';
import { GridSync } from './sync.js';
import { forgetServiceWorker, registerServiceWorker } from './update.js';
import { renderHeader } from './views/header.js';
import { renderHousehold } from './views/household.js';
import { renderList } from './views/list.js';
import { renderLogin } from './views/login.js';
import { renderMe } from './views/me.js';
import { renderNewHousehold } from './views/new-household.js';
import { renderTasks } from './views/tasks.js';
import { renderVisitForm } from './views/visit-form.js';
import { wipeDevice } from './wipe.js';

const ROUTES = [
  // Links from notifications (server/push/messages.py) use these three.
  [/^#\/household\/([^/?]+)$/, (m) => renderHousehold(app, decodeURIComponent(m[1]))],
  [/^#\/assignment\/([^/?]+)$/, (m) => renderHousehold(app, app.findAssignment(decodeURIComponent(m[1]))?.household)],
  [/^#\/due$/, () => renderList(app, { filter: 'due' })],
  [/^#\/h\/([^/?]+)\/visit(?:\?(.*))?$/, (m) => renderVisitForm(app, { mode: 'new', householdId: decodeURIComponent(m[1]), query: new URLSearchParams(m[2] || '') })],
  [/^#\/h\/([^/?]+)$/, (m) => renderHousehold(app, decodeURIComponent(m[1]))],
  [/^#\/v\/([^/?]+)\/(correct|amend)$/, (m) => renderVisitForm(app, { mode: m[2], visitId: decodeURIComponent(m[1]) })],
  [/^#\/new(?:\?(.*))?$/, (m) => renderNewHousehold(app, { query: new URLSearchParams(m[1] || '') })],
  [/^#\/tasks$/, () => renderTasks(app)],
  [/^#\/me$/, () => renderMe(app)],
  [/^/, () => renderList(app)],
];

export const app = {
  profile: null,
  who: null,
  grids: [], // [{grid, store, sync}]
  activeIndex: 0,
  view: null, // {el, update?}
  els: {},
  sessionExpired: false,

  get active() {
    return this.grids[this.activeIndex] || null;
  },

  go(hash) {
    if (window.location.hash === hash) route();
    else window.location.hash = hash;
  },

  /** Where a household lives: {entry, summary} across the user's grids. */
  findHousehold(id) {
    for (const entry of this.grids) {
      const summary = entry.store.index.summaryById.get(id);
      if (summary) return { entry, summary };
    }
    return null;
  },

  findVisit(id) {
    for (const entry of this.grids) {
      const visit = entry.store.index.visits.get(id);
      if (visit) return { entry, visit };
    }
    return null;
  },

  findAssignment(id) {
    for (const entry of this.grids) {
      for (const list of entry.store.index.assignmentsByHousehold.values()) {
        const found = list.find((a) => a._id === id);
        if (found) return found;
      }
    }
    return null;
  },

  toast(message) {
    const el = h('div.toast', { role: 'status' }, message);
    document.body.append(el);
    setTimeout(() => el.remove(), 2600);
  },

  /** Sum of unsynced changes over every grid. */
  pending() {
    const out = { total: 0, visits: 0 };
    for (const { sync } of this.grids) {
      out.total += sync.state.pending.total;
      out.visits += sync.state.pending.visits;
    }
    return out;
  },

  syncAll() {
    return Promise.all(this.grids.map(({ sync }) => sync.syncNow()));
  },

  async afterLogin(profile) {
    saveProfile(profile);
    this.sessionExpired = false;
    if (this.grids.length && this.profile?.name === profile.name) {
      this.profile = profile;
      this.restoreChrome();
      this.grids.forEach(({ sync }) => sync.start());
      return;
    }
    await openGrids(profile);
  },

  /** Back from the login screen to the app as it was. */
  restoreChrome() {
    renderChrome();
    route();
  },

  async logout() {
    // Offline, the server drops the subscription at its next 404/410; without a service
    // worker, push-client waits for one forever: never let that hold up a logout.
    await Promise.race([turnOffPush().catch(() => {}), new Promise((r) => setTimeout(r, 3000))]);
    await api.logout().catch(() => {}); // offline: the server session simply expires
    await this.wipe();
    window.history.replaceState(null, '', '/app/');
    showLogin();
  },

  /** Erase every grid and everything else the phone holds (see wipe.js). */
  async wipe() {
    await wipeDevice(this.grids.map((g) => g.store), this.grids.map((g) => g.sync));
    forgetServiceWorker();
    this.grids = [];
    this.profile = null;
  },

  expired() {
    this.sessionExpired = true;
    refreshChrome();
  },
};

function route() {
  if (!app.profile) return;
  const hash = window.location.hash || '#/';
  for (const [pattern, render] of ROUTES) {
    const m = hash.match(pattern);
    if (m) {
      app.view = render(m);
      replace(app.els.main, app.view.el);
      break;
    }
  }
  refreshChrome();
  window.scrollTo(0, 0);
}

function refreshChrome() {
  renderHeader(app, app.els.header);
  const tasks = app.grids.reduce((n, g) => n + g.store.index.returned.length, 0);
  const hash = window.location.hash || '#/';
  for (const link of app.els.nav.querySelectorAll('a')) {
    const current = link.dataset.route === '#/' ? !/^#\/(tasks|me)/.test(hash) : hash.startsWith(link.dataset.route);
    link.classList.toggle('current', current);
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const badge = app.els.nav.querySelector('.badge');
  badge.textContent = tasks ? String(tasks) : '';
  badge.hidden = !tasks;
}

function renderChrome() {
  app.els.header = h('header.top');
  app.els.main = h('main#view');
  app.els.nav = h('nav.tabs', { 'aria-label': t('nav.label') },
    h('a', { href: '#/', dataset: { route: '#/' } }, h('span.icon', { 'aria-hidden': 'true' }, '⌂'), t('nav.households')),
    h('a', { href: '#/tasks', dataset: { route: '#/tasks' } }, h('span.icon', { 'aria-hidden': 'true' }, '✓'), t('nav.tasks'), h('span.badge', { hidden: true })),
    h('a', { href: '#/me', dataset: { route: '#/me' } }, h('span.icon', { 'aria-hidden': 'true' }, '☰'), t('nav.me')),
  );
  replace(document.body, app.els.header, app.els.main, app.els.nav);
}

/** The user's grids, with their local data being read already. */
function loadGrids(profile) {
  app.profile = profile;
  app.who = { user: profile.name, device: deviceId() };
  app.grids = profile.grids.map((grid) => {
    const store = new GridStore(grid, app.who);
    const sync = new GridSync(store.db, `${window.location.origin}/couch/${encodeURIComponent(grid.db)}`);
    store.sync = sync;
    return { grid, store, sync };
  });
  // The header's first paint already tells the truth about what is pending.
  return Promise.all(app.grids.map(({ store, sync }) => Promise.all([
    sync.readMeta().then(() => sync.refreshPending()),
    store.load(),
  ])));
}

async function openGrids(profile, loading = loadGrids(profile)) {
  registerServiceWorker(onUpdateWaiting);
  await loading;
  renderChrome(); // only now: the header never shows a pending count it has not read
  for (const entry of app.grids) {
    const { store, sync } = entry;
    store.addEventListener('change', () => {
      if (app.active === entry) app.view?.update?.();
      refreshChrome();
    });
    sync.addEventListener('state', () => {
      if (sync.state.error?.kind === 'auth' && !app.sessionExpired) app.expired();
      renderHeader(app, app.els.header);
      if (app.active === entry) app.view?.syncChanged?.();
    });
  }
  route();
  // Sync after the first paint: opening offline must not wait for the network.
  requestAnimationFrame(() => setTimeout(() => {
    for (const { store, sync } of app.grids) sync.start(() => store.load());
    if (navigator.onLine) checkSession();
  }, 0));
}

/** The cookie may have expired while the phone was away: say so, keep working offline. */
async function checkSession() {
  try {
    const profile = await api.me();
    saveProfile(profile);
    app.profile = profile;
  } catch (err) {
    if (err.status === 401) app.expired();
  }
}

function onUpdateWaiting(activate) {
  app.updateReady = activate;
  renderHeader(app, app.els.header);
}

function showLogin(options = {}) {
  const view = renderLogin(app, options);
  replace(document.body, view.el);
}

app.showLogin = showLogin;

window.addEventListener('hashchange', route);
// PouchDB's replicator asks the server for info() after each batch without handling its
// failure (a lost connection, an expired session). The replication itself reports the same
// failure to the sync state, which the header shows; the stray copy is not a crash.
window.addEventListener('unhandledrejection', (event) => {
  const reason = event.reason;
  const lostConnection = reason instanceof TypeError && /fetch/i.test(reason.message);
  const httpAnswer = typeof reason?.status === 'number';
  if (lostConnection || httpAnswer) event.preventDefault();
});
followNotificationClicks();
window.addEventListener('online', () => app.grids.forEach(({ sync }) => sync.setOnline(true)));
window.addEventListener('offline', () => app.grids.forEach(({ sync }) => sync.setOnline(false)));

async function boot() {
  const profile = savedProfile();
  // Reading IndexedDB and the catalogues at the same time is most of a cold start.
  const loading = profile ? loadGrids(profile) : null;
  await initI18n();
  if (!profile) {
    showLogin();
    return;
  }
  await openGrids(profile, loading);
}

boot();
