// The household list: search, one filter at a time, grouped by building / unit / floor.

import { h, replace } from '../dom.js';
import { t } from '../i18n.js';
import { FILTERS, counts, group, select } from '../listing.js';
import { dueBadge, lastVisitText, tagChips } from './common.js';

// Kept across navigation, so coming back from a household shows the same list.
const state = { query: '', filter: null };
let painted = false;

function row(summary, config) {
  return h('a.row', { href: `#/h/${encodeURIComponent(summary.id)}`, dataset: { household: summary.id } },
    h('div.line',
      h('span.room', summary.room),
      h('span.head', summary.head || t('household.no_members')),
      summary.returned ? h('span.flag.returned', t('flag.returned')) : null,
      summary.conflict ? h('span.flag.conflict', t('flag.conflict')) : null,
      summary.assignment ? h('span.flag.assignment', t('flag.assignment')) : null),
    h('div.line.meta',
      h('span.last', lastVisitText(summary)),
      dueBadge(summary)),
    summary.tags.length ? tagChips(config, summary.tags) : null);
}

function renderGroups(summaries, config) {
  return group(summaries).map((b) => h('section.building',
    h('h2', t('address.building', { building: b.building })),
    b.units.map((u) => u.floors.map((f) => h('div.floor',
      h('h3', [u.unit ? t('address.unit', { unit: u.unit }) : null, t('address.floor', { floor: f.floor })].filter(Boolean).join(' · ')),
      f.rows.map((s) => row(s, config)))))));
}

function firstSyncPanel(app) {
  const s = app.active.sync.state;
  const p = s.progress;
  const failed = s.phase === 'error' || s.phase === 'offline';
  return h('div.first-sync',
    h('h2', t('sync.first_title')),
    p ? h('p', t('sync.progress', { done: p.done, total: p.total })) : null,
    p ? h('p.received', t('sync.received', { count: p.received })) : null,
    failed ? h('p.error-text', navigator.onLine ? t('sync.first_failed') : t('sync.first_offline')) : null,
    failed ? h('button.primary', { type: 'button', onclick: () => app.active.sync.syncNow().catch(() => {}) }, t('sync.retry')) : null);
}

/** `options.filter`: 'due' (from the daily digest) shows overdue, or this week when none is. */
export function renderList(app, options = {}) {
  const entry = app.active;
  if (options.filter === 'due' && entry.store.ready) {
    state.filter = counts(entry.store.index.summaries).overdue ? 'overdue' : 'week';
  }
  const results = h('div.results');
  const summaryLine = h('p.summary', { 'aria-live': 'polite' });
  const chips = h('div.filters', { role: 'group', 'aria-label': t('filter.label') });
  const search = h('input.search', {
    type: 'search', value: state.query, placeholder: t('list.search'), 'aria-label': t('list.search'),
    autocomplete: 'off', enterkeyhint: 'search',
    oninput: () => {
      state.query = search.value;
      paint();
    },
  });

  function paintChips(all) {
    const n = counts(all);
    replace(chips,
      h('button.chip-filter', { type: 'button', 'aria-pressed': String(!state.filter), onclick: () => setFilter(null) }, t('filter.all')),
      FILTERS.map((f) => h('button.chip-filter', {
        type: 'button', 'aria-pressed': String(state.filter === f), dataset: { filter: f }, onclick: () => setFilter(f),
      }, `${t(`filter.${f}`)} ${n[f]}`)));
  }

  function setFilter(f) {
    state.filter = state.filter === f ? null : f;
    paint();
  }

  function paint() {
    const started = performance.now();
    const index = entry.store.index;
    if (!entry.store.ready) {
      replace(results, firstSyncPanel(app));
      replace(chips);
      summaryLine.textContent = '';
      return;
    }
    const shown = select(index.summaries, state);
    paintChips(index.summaries);
    summaryLine.textContent = t('list.count', { count: shown.length, total: index.summaries.length });
    replace(results, shown.length ? renderGroups(shown, index.config) : h('p.empty', t('list.none')));
    results.dataset.renderMs = (performance.now() - started).toFixed(1);
    if (!painted) {
      painted = true;
      requestAnimationFrame(() => performance.mark('doorstep:list-painted'));
    }
  }

  const gridPicker = app.grids.length > 1 ? h('select.grid-picker', {
    'aria-label': t('list.grid'),
    onchange: (e) => {
      app.activeIndex = Number(e.target.value);
      app.go('#/');
    },
  }, app.grids.map((g, i) => h('option', { value: String(i), selected: i === app.activeIndex }, g.grid.name))) : null;

  const el = h('div.list-view', gridPicker, search, chips, summaryLine, results);
  paint();
  return { el, update: paint, syncChanged: () => { if (!entry.store.ready) paint(); } };
}
