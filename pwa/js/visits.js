// Visit documents as the gateway accepts them (sync/schema.py), built from what the form holds.

import { nowIso } from './ledger.js';

export const OUTCOMES = ['met', 'nobody_home', 'refused', 'vacant', 'moved_away'];
export const VISIT_TYPES = ['sweep', 'special_care', 'follow_up', 'patrol'];
export const NEED_CATEGORIES = [
  'medical', 'elderly_care', 'housing_repair', 'employment', 'social_assistance', 'safety',
  'dispute', 'other',
];

/** `form`: {outcome, visit_type, notes, needs: [{category, text, urgent}], gps}. */
export function newVisit({ grid, household, who, form, appVersion, amends = null, assignment = null }) {
  const at = nowIso();
  return {
    _id: `visit:${crypto.randomUUID()}`,
    type: 'visit',
    grid,
    household,
    author: who.user,
    device: who.device,
    created_at: at,
    visited_at: at,
    outcome: form.outcome,
    visit_type: form.visit_type,
    notes: form.notes || '',
    needs: form.needs.map((n) => ({
      need_id: crypto.randomUUID(), category: n.category, text: n.text, urgent: !!n.urgent,
    })),
    ledger_changes: [],
    gps: form.gps || null,
    assignment,
    amends,
    app_version: appVersion || '',
  };
}

/** A correction of a visit the server has not seen: same document, new revision. */
export function correctedVisit(visit, form) {
  return {
    ...visit,
    outcome: form.outcome,
    visit_type: form.visit_type,
    notes: form.notes || '',
    // Needs already raised stay raised (their events exist); new ones are added.
    needs: [...(visit.needs || []), ...form.needs.map((n) => ({
      need_id: crypto.randomUUID(), category: n.category, text: n.text, urgent: !!n.urgent,
    }))],
    gps: form.gps === undefined ? visit.gps : form.gps,
  };
}

/** The 'raised' need events for needs of `visit` that have none yet. */
export function raisedEvents(visit, needIds) {
  return visit.needs.filter((n) => needIds.includes(n.need_id)).map((n) => ({
    _id: `need_event:${crypto.randomUUID()}`,
    type: 'need_event',
    grid: visit.grid,
    household: visit.household,
    need_id: n.need_id,
    event: 'raised',
    category: n.category,
    text: n.text,
    urgent: n.urgent,
    visit: visit._id,
    author: visit.author,
    at: nowIso(),
  }));
}
