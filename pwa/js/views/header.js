// The header tells the truth about sync: online or not, the last sync that really finished,
// what is still only on this phone, and the last error in plain words.

import { h, replace } from '../dom.js';
import { formatTime, t } from '../i18n.js';

/** One status for all of the user's grids: the oldest sync, the sum of pending, the first error. */
export function overallStatus(app) {
  const states = app.grids.map((g) => g.sync.state);
  const pending = { total: 0, visits: 0, households: 0, other: 0 };
  for (const s of states) for (const k of Object.keys(pending)) pending[k] += s.pending[k];
  const synced = states.map((s) => s.lastSync);
  const lastSync = synced.includes(null) ? null : synced.sort()[0] || null;
  const error = states.find((s) => s.error && s.error.kind !== 'network')?.error
    || states.find((s) => s.error)?.error || null;
  const progress = states.find((s) => s.phase === 'initial')?.progress || null;
  const syncing = states.some((s) => s.phase === 'syncing' || s.phase === 'initial');
  // The least settled phase of any grid: idle only when every grid finished a sync cleanly.
  const order = ['initial', 'error', 'offline', 'syncing', 'starting', 'idle'];
  const phase = order.find((p) => states.some((s) => s.phase === p)) || 'idle';
  return { online: navigator.onLine, pending, lastSync, error, progress, syncing, phase };
}

/** The error in words a grid worker can act on, mentioning what is safe on the phone. */
export function errorText(error, pending) {
  const safe = t('status.safe', { count: pending.visits });
  switch (error.kind) {
    case 'auth': return `${t('error.auth')} — ${safe}`;
    case 'forbidden': return t('error.forbidden');
    case 'refused': return t('error.refused', { count: error.count || 1 });
    case 'storage': return t('error.storage');
    case 'network': return navigator.onLine ? t('error.network_retry') : t('status.offline_note');
    default: return `${t('error.server')} — ${safe}`;
  }
}

function pendingText(pending) {
  if (!pending.total) return t('status.all_uploaded');
  const parts = [];
  if (pending.visits) parts.push(t('status.pending_visits', { count: pending.visits }));
  const rest = pending.total - pending.visits;
  if (rest) parts.push(t('status.pending_changes', { count: rest }));
  return parts.join(' · ');
}

export function renderHeader(app, el) {
  const s = overallStatus(app);
  const grid = app.active?.grid;
  const sessionError = app.sessionExpired ? { kind: 'auth' } : null;
  const error = sessionError || s.error;
  const syncButton = h('button.sync-now', {
    type: 'button', disabled: !s.online || s.syncing, 'aria-label': t('sync.now'),
    onclick: () => app.syncAll().catch(() => {}),
  }, s.syncing ? t('sync.syncing') : t('sync.now'));

  replace(el,
    h('div.title-row',
      h('h1', t('app.name')),
      grid ? h('span.grid-name', grid.name) : null,
      syncButton),
    h('div.status', { dataset: {
      online: String(s.online), phase: s.phase, lastSync: s.lastSync || '',
      pendingVisits: String(s.pending.visits), pendingTotal: String(s.pending.total),
    } },
      h('span.net', { class: s.online ? 'on' : 'off' }, s.online ? t('status.online') : t('status.offline')),
      h('span.last', s.lastSync ? t('status.last_sync', { time: formatTime(s.lastSync) }) : t('status.never_synced')),
      h('span.pending', { class: s.pending.total ? 'waiting' : '' }, pendingText(s.pending))),
    s.progress ? h('div.progress', { role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': String(s.progress.total), 'aria-valuenow': String(s.progress.done) },
      h('div.bar', { style: `width:${s.progress.total ? Math.round(100 * s.progress.done / s.progress.total) : 0}%` }),
      h('span', t('sync.progress', { done: s.progress.done, total: s.progress.total }))) : null,
    error ? h('div.error', { role: 'alert', dataset: { kind: error.kind } },
      h('span', errorText(error, s.pending)),
      error.kind === 'auth' ? h('button', { type: 'button', onclick: () => app.showLogin({ relogin: true }) }, t('login.again')) : null) : null,
    app.updateReady ? h('div.update', { role: 'status' },
      h('span', t('update.ready')),
      h('button', { type: 'button', onclick: () => app.updateReady() }, t('update.reload'))) : null,
  );
}
