// The worker's own page: sync in detail, language, version, logout.

import { h, replace } from '../dom.js';
import { LANGUAGES, formatTime, language, setLanguage, t } from '../i18n.js';
import { renderPushSettings } from '../../push/push-client.js';
import { appVersion, checkForUpdate } from '../update.js';
import { ask } from './common.js';
import { errorText } from './header.js';

function gridSync(entry) {
  const s = entry.sync.state;
  return h('div.card.grid-sync', { dataset: { grid: entry.grid.id, phase: s.phase } },
    h('strong', entry.grid.name),
    h('p', s.lastSync ? t('status.last_sync', { time: formatTime(s.lastSync) }) : t('status.never_synced')),
    h('p', t('sync.pending_detail', { visits: s.pending.visits, households: s.pending.households, other: s.pending.other })),
    s.error ? h('p.error-text', errorText(s.error, s.pending)) : null,
    s.denied.length ? h('ul.denied', s.denied.map((d) => h('li', t('sync.denied_item', { id: d.id, reason: d.reason })))) : null);
}

async function confirmLogout(app) {
  const pending = app.pending();
  if (pending.total === 0) {
    const ok = await ask({
      title: t('logout.title'), message: t('logout.clean'),
      buttons: [{ label: t('logout.confirm'), value: true, kind: 'danger' }, { label: t('form.cancel'), value: false }],
    });
    if (ok) await app.logout();
    return;
  }
  const choice = await ask({
    title: t('logout.title'),
    message: t('logout.pending', { count: pending.visits, total: pending.total }),
    buttons: [
      { label: t('logout.sync_first'), value: 'sync', kind: 'primary' },
      { label: t('logout.discard'), value: 'discard', kind: 'danger' },
      { label: t('form.cancel'), value: null },
    ],
  });
  if (choice === 'sync') {
    try {
      await app.syncAll();
    } catch {
      app.toast(t('logout.sync_failed'));
      return;
    }
    if (app.pending().total === 0) await app.logout();
    else app.toast(t('logout.sync_failed'));
  } else if (choice === 'discard') {
    const sure = await ask({
      title: t('logout.discard_title'),
      message: t('logout.discard_message', { count: pending.visits, total: pending.total }),
      buttons: [{ label: t('logout.discard_confirm'), value: true, kind: 'danger' }, { label: t('form.cancel'), value: false }],
    });
    if (sure) await app.logout();
  }
}

export function renderMe(app) {
  const el = h('div.me-view');
  const version = h('span.version');

  function paint() {
    replace(el,
      h('h2', app.profile.display_name || app.profile.name),
      h('p.muted', app.profile.name),
      h('section', h('h3', t('sync.heading')),
        app.grids.map(gridSync),
        h('button.primary', { type: 'button', disabled: !navigator.onLine, onclick: () => app.syncAll().catch(() => {}) }, t('sync.now'))),
      h('section', h('h3', t('me.language')),
        h('div.tiles', LANGUAGES.map((lng) => h('label.tile',
          h('input', { type: 'radio', name: 'language', value: lng, checked: language() === lng,
            onchange: async () => { await setLanguage(lng); window.location.reload(); } }),
          h('span', t(`me.language_${lng}`)))))),
      renderPushSettings({ h, t, device: app.who.device, lang: language() }).el,
      h('section', h('h3', t('me.app')),
        h('p', t('me.version'), ' ', version),
        h('button.secondary', { type: 'button', onclick: () => checkForUpdate().then(() => app.toast(t('me.checked'))).catch(() => app.toast(t('error.network_retry'))) }, t('me.check_update'))),
      h('section',
        h('button.danger.big', { type: 'button', onclick: () => confirmLogout(app) }, t('logout.button'))));
    appVersion().then((v) => { version.textContent = v || '—'; });
  }

  paint();
  return { el, update: paint, syncChanged: paint };
}
