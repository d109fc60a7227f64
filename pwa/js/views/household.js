// One household: who lives there, its tags, what is open for it, and every visit on the phone.

import { h, replace } from '../dom.js';
import { formatDay, formatTime, t, tagLabel } from '../i18n.js';
import { addressLabel, backLink, dueBadge, pathLabel, tagChips } from './common.js';

function member(config, m) {
  const moved = m.status === 'moved_out';
  return h('li.member', { class: moved ? 'moved' : '' },
    h('div.line',
      h('strong', m.name),
      m.relation ? h('span', m.relation) : null,
      m.birth_year ? h('span', t('member.born', { year: m.birth_year })) : null,
      moved ? h('span.flag', t('member.moved_out')) : null),
    m.phone ? h('a.phone', { href: `tel:${m.phone}` }, m.phone) : null,
    m.tags?.length ? tagChips(config, m.tags) : null);
}

/** One value a conflict keeps, as the worker reads it: tags by name, an address as written. */
function conflictValue(config, path, value) {
  const field = path.split('.').at(-1);
  if (value === null || value === '' || (Array.isArray(value) && !value.length)) return '—';
  if (field === 'tags') return value.map((tag) => tagLabel(config, tag)).join(t('list.separator'));
  if (field === 'address') return addressLabel(value);
  if (field === 'housing' || field === 'residency') return t(`${field}.${value}`);
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function visitItem(app, entry, visit) {
  const index = entry.store.index;
  const review = index.reviews.get(visit._id);
  const amendment = index.amendedBy.get(visit._id);
  const unsynced = entry.store.isUnsynced(visit._id);
  const mine = visit.author === app.who.user;
  return h('li.visit', { dataset: { visit: visit._id } },
    h('div.line',
      h('strong', formatTime(visit.visited_at)),
      h('span', t(`outcome.${visit.outcome}`)),
      h('span.muted', t(`visit_type.${visit.visit_type}`)),
      h('span.flag', { class: unsynced ? 'pending' : 'synced' }, unsynced ? t('visit.unsynced') : t('visit.synced'))),
    visit.notes ? h('p.notes', visit.notes) : null,
    visit.needs?.length ? h('p.muted', t('visit.needs_count', { count: visit.needs.length })) : null,
    visit.ledger_changes?.length ? h('p.muted', t('visit.changes_count', { count: visit.ledger_changes.length })) : null,
    visit.amends ? h('p.muted', t('visit.is_amendment')) : null,
    visit._attachments?.['photo.jpg'] ? h('button.link', { type: 'button', onclick: async (e) => {
      const url = await entry.store.photoUrl(visit._id);
      if (url) e.target.replaceWith(h('img.photo', { src: url, alt: t('visit.photo') }));
    } }, t('visit.show_photo')) : null,
    review ? h('p.review', { class: review.decision },
      review.decision === 'returned' ? t('review.returned', { reason: review.reason }) : t('review.approved')) : null,
    amendment ? h('p.muted', t('visit.amended')) : null,
    h('div.actions',
      unsynced && mine ? h('a.button', { href: `#/v/${encodeURIComponent(visit._id)}/correct` }, t('visit.correct')) : null,
      !unsynced && review?.decision === 'returned' && !amendment ? h('a.button', { href: `#/v/${encodeURIComponent(visit._id)}/amend` }, t('visit.amend')) : null));
}

export function renderHousehold(app, householdId) {
  const el = h('div.household-view');

  function paint() {
    const found = app.findHousehold(householdId);
    if (!found) {
      replace(el, backLink('#/', t('nav.households')), h('p.empty', t('household.missing')));
      return;
    }
    const { entry, summary } = found;
    const index = entry.store.index;
    const doc = summary.doc;
    const config = index.config;
    const conflicts = index.conflictsByHousehold.get(householdId) || [];
    const localConflict = (doc._conflicts?.length || 0) > 0;
    const assignments = index.assignmentsByHousehold.get(householdId) || [];
    const needs = index.needsByHousehold.get(householdId) || [];
    const returned = index.returned.filter((r) => r.visit.household === householdId);
    const visits = index.visitsByHousehold.get(householdId) || [];
    const members = Object.values(doc.members || {}).sort((a, b) => (a.status === 'moved_out') - (b.status === 'moved_out'));

    replace(el,
      backLink('#/', t('nav.households')),
      h('h2.address', addressLabel(doc.address)),
      h('p.muted', doc.household_id),
      conflicts.length || localConflict ? h('div.banner.conflict', { role: 'note' },
        h('strong', t('household.conflict_title')),
        h('p', conflicts.length
          ? t('household.conflict_paths', { paths: conflicts.map((c) => pathLabel(doc, c.path)).join(t('list.separator')) })
          : t('household.conflict_local')),
        // Every value kept (the one in the entry first), so the worker can ask at the door.
        conflicts.length ? h('ul.conflict-values', conflicts.map((c) => h('li', { dataset: { path: c.path } },
          h('strong', pathLabel(doc, c.path)), ' ',
          c.candidates.map((v) => conflictValue(config, c.path, v.value)).join(' / ')))) : null) : null,
      returned.map(({ visit, review }) => h('div.banner.returned',
        h('strong', t('task.returned_title')),
        h('p', review.reason),
        h('a.button', { href: `#/v/${encodeURIComponent(visit._id)}/amend` }, t('visit.amend')))),
      h('div.card',
        h('div.line', dueBadge(summary), h('span.muted', t('household.every', { count: summary.plan.interval }))),
        h('dl',
          h('dt', t('household.housing')), h('dd', t(`housing.${doc.housing}`)),
          h('dt', t('household.residency')), h('dd', t(`residency.${doc.residency}`)),
          h('dt', t('household.phone')), h('dd', doc.phone ? h('a', { href: `tel:${doc.phone}` }, doc.phone) : '—'),
          doc.tags?.length ? [h('dt', t('household.tags')), h('dd', tagChips(config, doc.tags))] : null,
          doc.note ? [h('dt', t('household.note')), h('dd', doc.note)] : null)),
      assignments.length ? h('section',
        h('h3', t('household.assignments')),
        assignments.map((a) => h('div.card.assignment',
          h('p', a.reason),
          h('p.muted', t('assignment.due', { day: formatDay(a.due) })),
          h('a.button', { href: `#/h/${encodeURIComponent(householdId)}/visit?assignment=${encodeURIComponent(a._id)}` }, t('assignment.visit'))))) : null,
      needs.length ? h('section',
        h('h3', t('household.needs')),
        h('ul.needs', needs.map((n) => h('li',
          h('strong', t(`need.${n.category}`, { defaultValue: n.category })),
          ' ', n.text, ' ', h('span.flag', t(`need_state.${n.state}`)))))) : null,
      h('section',
        h('h3', t('household.members', { count: members.length })),
        h('ul.members', members.map((m) => member(config, m)))),
      h('section',
        h('h3', t('household.history', { count: visits.length })),
        visits.length ? h('ul.visits', visits.map((v) => visitItem(app, entry, v))) : h('p.muted', t('visit.never'))),
      h('div.sticky-action',
        h('a.button.primary.big', { href: `#/h/${encodeURIComponent(householdId)}/visit` }, t('visit.record'))));
  }

  paint();
  return { el, update: paint, syncChanged: paint };
}
