// What the worker must do: visits the supervisor returned, and open assignments.

import { h, replace } from '../dom.js';
import { formatDay, formatTime, t } from '../i18n.js';
import { addressLabel } from './common.js';

export function renderTasks(app) {
  const el = h('div.tasks-view');

  function paint() {
    const returned = [];
    const assigned = [];
    for (const entry of app.grids) {
      const index = entry.store.index;
      for (const r of index.returned) returned.push({ ...r, household: index.households.get(r.visit.household) });
      for (const [hid, list] of index.assignmentsByHousehold) {
        for (const a of list) assigned.push({ assignment: a, household: index.households.get(hid) });
      }
    }
    assigned.sort((a, b) => a.assignment.due.localeCompare(b.assignment.due));
    replace(el,
      h('h2', t('task.returned_heading', { count: returned.length })),
      returned.length ? h('ul.task-list', returned.map(({ visit, review, household }) => h('li.card.task.returned', { dataset: { visit: visit._id } },
        h('strong', household ? addressLabel(household.address) : visit.household),
        h('p.muted', t('task.visit_of', { time: formatTime(visit.visited_at), outcome: t(`outcome.${visit.outcome}`) })),
        h('p.reason', t('task.reason', { reason: review.reason })),
        h('a.button.primary', { href: `#/v/${encodeURIComponent(visit._id)}/amend` }, t('visit.amend'))))) : h('p.muted', t('task.none_returned')),
      h('h2', t('task.assigned_heading', { count: assigned.length })),
      assigned.length ? h('ul.task-list', assigned.map(({ assignment, household }) => h('li.card.task', { dataset: { assignment: assignment._id } },
        h('strong', household ? addressLabel(household.address) : assignment.household),
        h('p', assignment.reason),
        h('p.muted', t('assignment.due', { day: formatDay(assignment.due) })),
        h('a.button', { href: `#/h/${encodeURIComponent(assignment.household)}/visit?assignment=${encodeURIComponent(assignment._id)}` }, t('assignment.visit'))))) : h('p.muted', t('task.none_assigned')));
  }

  paint();
  return { el, update: paint };
}
