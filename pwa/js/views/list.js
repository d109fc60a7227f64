// The household list: search, one filter at a time, grouped by building / unit / floor.

import { h, replace } from '../dom.js';
import { t } from '../i18n.js';
import { FILTERS, counts, select } from '../listing.js';
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

// The first screenfuls are built at once; the rest follows in slices, so a phone paints the
// list without first building 500 rows nobody sees yet.
const FIRST_ROWS = 60;
const SLICE_ROWS = 120;

/**
 * Append sorted rows under building and floor headings, continuing the last open group.
 * `at` remembers the open building and floor between slices.
 */
function appendRows(container, rows, config, at) {
  for (const s of rows) {
    if (!at.building || at.building.key !== s.building) {
      const el = h('section.building', h('h2', t('address.building', { building: s.building }),
        h('a.add-here', { href: `#/new?building=${encodeURIComponent(s.building)}` }, t('new.here'))));
      container.append(el);
      at.building = { key: s.building, el };
      at.floor = null;
    }
    if (!at.floor || at.floor.unit !== s.unit || at.floor.floor !== s.floor) {
      const label = [s.unit ? t('address.unit', { unit: s.unit }) : null,
        t('address.floor', { floor: s.floor })].filter(Boolean).join(' · ');
      const el = h('div.floor', h('h3', label));
      at.building.el.append(el);
      at.floor = { unit: s.unit, floor: s.floor, el };
    }
    at.floor.el.append(row(s, config));
  }
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

  let painting = 0; // a newer paint stops the slices of an older one

  function paint() {
    const started = performance.now();
    const run = ++painting;
    const index = entry.store.index;
    if (!entry.store.ready) {
      replace(results, firstSyncPanel(app));
      replace(chips);
      summaryLine.textContent = '';
      return;
    }
    const shown = select(index.summaries, state);
    results.dataset.filterMs = (performance.now() - started).toFixed(2);
    paintChips(index.summaries);
    summaryLine.textContent = t('list.count', { count: shown.length, total: index.summaries.length });
    replace(results, shown.length ? null : h('p.empty', t('list.none')));
    const at = {};
    appendRows(results, shown.slice(0, FIRST_ROWS), index.config, at);
    results.dataset.renderMs = (performance.now() - started).toFixed(2);
    results.dataset.complete = String(shown.length <= FIRST_ROWS);
    const more = (from) => {
      if (run !== painting) return;
      appendRows(results, shown.slice(from, from + SLICE_ROWS), index.config, at);
      if (from + SLICE_ROWS < shown.length) setTimeout(() => more(from + SLICE_ROWS), 0);
      else results.dataset.complete = 'true';
    };
    if (shown.length > FIRST_ROWS) setTimeout(() => more(FIRST_ROWS), 0);
    if (!painted) {
      painted = true;
      // After the frame that shows the list (bench/pwa_cold_start_bench.py reads this mark).
      requestAnimationFrame(() => setTimeout(() => performance.mark('doorstep:list-painted'), 0));
    }
  }

  const gridPicker = app.grids.length > 1 ? h('select.grid-picker', {
    'aria-label': t('list.grid'),
    onchange: (e) => {
      app.activeIndex = Number(e.target.value);
      app.go('#/');
    },
  }, app.grids.map((g, i) => h('option', { value: String(i), selected: i === app.activeIndex }, g.grid.name))) : null;

  const add = h('a.button.secondary.add-household', { href: '#/new' }, t('new.action'));
  const el = h('div.list-view', gridPicker, search, add, chips, summaryLine, results);
  paint();
  return { el, update: paint, syncChanged: () => { if (!entry.store.ready) paint(); } };
}
