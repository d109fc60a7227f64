// The grid as the app sees it: every local document indexed for the screens.
// Pure: built from plain documents, so it can be rebuilt after any change and tested alone.

import { dueStatus, isSpecialCare, schedule, tagsOf } from './due.js';

const naturally = new Intl.Collator('zh-CN', { numeric: true }).compare;

function byAt(a, b) {
  return (a.at || '').localeCompare(b.at || '');
}

function push(map, key, value) {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

// How people write an address in Chinese, so a search for '3栋2单元' finds it in any language.
const SPELLING = { building: '栋', unit: '单元' }; // search spelling, not UI text

/** Text a search matches: address in several spellings, household id, names and phones. */
function searchText(h) {
  const a = h.address || {};
  const unit = a.unit ? `${a.unit}${SPELLING.unit}` : '';
  const people = Object.values(h.members || {}).flatMap((m) => [m.name, m.phone]);
  return [
    `${a.building}${SPELLING.building}${unit}${a.room}`, `${a.building}-${a.unit || ''}-${a.room}`,
    `${a.building}-${a.room}`, h.household_id, h.phone, ...people,
  ].filter(Boolean).join(' ').toLowerCase();
}

/**
 * Index `docs` (an iterable of the grid's documents, winning revisions, with `_conflicts`
 * when a local conflict exists). `today` is 'YYYY-MM-DD' in local time.
 */
export function buildIndex(docs, today) {
  const households = new Map();
  const visits = new Map();
  const visitsByHousehold = new Map();
  const reviews = new Map(); // visit id → latest review
  const amendedBy = new Map(); // visit id → amending visit
  const assignments = [];
  const cancelled = new Set();
  const needEvents = new Map(); // need id → events
  const conflictsByHousehold = new Map();
  let config = { tags: {}, default_frequency_days: 91 };

  for (const doc of docs) {
    if (doc._deleted) continue;
    switch (doc.type) {
      case 'household': households.set(doc.household_id, doc); break;
      case 'visit':
        visits.set(doc._id, doc);
        push(visitsByHousehold, doc.household, doc);
        if (doc.amends) amendedBy.set(doc.amends, doc);
        break;
      case 'review': {
        const seen = reviews.get(doc.visit);
        if (!seen || byAt(seen, doc) < 0) reviews.set(doc.visit, doc);
        break;
      }
      case 'assignment': assignments.push(doc); break;
      case 'assignment_event': if (doc.event === 'cancelled') cancelled.add(doc.assignment); break;
      case 'need_event': push(needEvents, doc.need_id, doc); break;
      case 'conflict': if (doc.state === 'open') push(conflictsByHousehold, doc.household, doc); break;
      case 'config': config = doc; break;
      default: break;
    }
  }

  for (const list of visitsByHousehold.values()) {
    list.sort((a, b) => b.visited_at.localeCompare(a.visited_at));
  }

  // An assignment is open until it is cancelled or a visit names it.
  const answered = new Set([...visits.values()].map((v) => v.assignment).filter(Boolean));
  const assignmentsByHousehold = new Map();
  for (const a of assignments) {
    if (!cancelled.has(a._id) && !answered.has(a._id)) push(assignmentsByHousehold, a.household, a);
  }

  // A need is in progress until its latest event is 'closed'.
  const needsByHousehold = new Map();
  for (const [needId, events] of needEvents) {
    events.sort(byAt);
    const raised = events.find((e) => e.event === 'raised') || events[0];
    const state = events.at(-1).event;
    if (state !== 'closed') {
      push(needsByHousehold, raised.household, {
        need_id: needId, category: raised.category, text: raised.text || '',
        urgent: !!raised.urgent, state, events,
      });
    }
  }

  // Returned visits not yet amended are the worker's tasks.
  const returned = [];
  for (const [visitId, review] of reviews) {
    const visit = visits.get(visitId);
    if (review.decision === 'returned' && visit && !amendedBy.has(visitId)) {
      returned.push({ visit, review });
    }
  }
  returned.sort((a, b) => byAt(b.review, a.review));
  const returnedHouseholds = new Set(returned.map((r) => r.visit.household));

  const summaries = [];
  for (const [id, h] of households) {
    const plan = schedule(h, visitsByHousehold.get(id) || [], config);
    const a = h.address || {};
    const present = Object.values(h.members || {}).filter((m) => m.status !== 'moved_out');
    summaries.push({
      id,
      doc: h,
      building: String(a.building ?? ''),
      unit: String(a.unit ?? ''),
      floor: a.floor,
      room: String(a.room ?? ''),
      head: present[0]?.name || '',
      names: present.map((m) => m.name),
      tags: tagsOf(h),
      plan,
      status: dueStatus(plan.due, today),
      special: isSpecialCare(h, config),
      never: plan.lastVisit === null,
      returned: returnedHouseholds.has(id),
      conflict: conflictsByHousehold.has(id) || (h._conflicts?.length || 0) > 0,
      assignment: assignmentsByHousehold.has(id),
      search: searchText(h),
    });
  }
  summaries.sort((x, y) => naturally(x.building, y.building) || naturally(x.unit, y.unit)
    || (x.floor - y.floor) || naturally(x.room, y.room));

  return {
    today, config, households, visits, visitsByHousehold, reviews, amendedBy,
    assignmentsByHousehold, needsByHousehold, conflictsByHousehold, returned, summaries,
    summaryById: new Map(summaries.map((s) => [s.id, s])),
  };
}
