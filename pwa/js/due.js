// When a household is next due for a visit. Pure functions, no DOM, no database.
//
// Rule (docs/field-app.md):
//   interval = min(frequency_days of the household's tags and of its present members' tags,
//                  default_frequency_days), all from the grid's config:tags;
//   next due = date of the last knock + interval;
//   a knock that reached nobody (nobody_home, refused) still counts, but the revisit is due
//   sooner: after min(interval, FAILED_REVISIT_DAYS);
//   never visited → due now, and counted as overdue.

export const FAILED_REVISIT_DAYS = 7;
const FAILED_OUTCOMES = new Set(['nobody_home', 'refused']);
const DAY_MS = 86400000;

/** The local calendar date of a time (ISO string or Date), as 'YYYY-MM-DD'. */
export function localDay(time) {
  const d = time instanceof Date ? time : new Date(time);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** 'YYYY-MM-DD' plus n days; calendar arithmetic in UTC so no clock change can shift it. */
export function addDays(day, n) {
  const [y, m, d] = day.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d) + n * DAY_MS).toISOString().slice(0, 10);
}

/** Sunday of the week (Monday to Sunday) that holds `day`. */
export function endOfWeek(day) {
  const [y, m, d] = day.split('-').map(Number);
  const weekday = new Date(Date.UTC(y, m - 1, d)).getUTCDay(); // 0 = Sunday
  return addDays(day, weekday === 0 ? 0 : 7 - weekday);
}

/** Every tag that applies to a household: its own and those of members still living there. */
export function tagsOf(household) {
  const tags = new Set(household.tags || []);
  for (const member of Object.values(household.members || {})) {
    if (member.status !== 'moved_out') (member.tags || []).forEach((t) => tags.add(t));
  }
  return [...tags];
}

export function isSpecialCare(household, config) {
  return tagsOf(household).some((t) => config.tags?.[t]?.special_care);
}

/** Days between visits this household needs, from the tag configuration. */
export function intervalDays(household, config) {
  let days = config.default_frequency_days;
  for (const tag of tagsOf(household)) {
    const f = config.tags?.[tag]?.frequency_days;
    if (typeof f === 'number' && f < days) days = f;
  }
  return days;
}

/**
 * The schedule of one household.
 * `visits`: its visit documents in any order. Returns
 * {lastVisit, interval, due: 'YYYY-MM-DD' | null (never visited), revisit: bool}.
 */
export function schedule(household, visits, config) {
  const interval = intervalDays(household, config);
  let last = null;
  for (const v of visits) {
    if (!last || v.visited_at > last.visited_at) last = v;
  }
  if (!last) return { lastVisit: null, interval, due: null, revisit: false };
  const revisit = FAILED_OUTCOMES.has(last.outcome);
  const wait = revisit ? Math.min(interval, FAILED_REVISIT_DAYS) : interval;
  return { lastVisit: last, interval, due: addDays(localDay(last.visited_at), wait), revisit };
}

/** 'overdue' (due before today, or never visited), 'week' (due by Sunday), or 'later'. */
export function dueStatus(due, today) {
  if (due === null || due < today) return 'overdue';
  if (due <= endOfWeek(today)) return 'week';
  return 'later';
}
