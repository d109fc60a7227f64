// The household list: one filter, a search, and grouping by building / unit / floor. Pure.

export const FILTERS = ['week', 'overdue', 'special', 'never', 'returned', 'conflict', 'assignment'];

const TESTS = {
  week: (s) => s.status === 'week',
  overdue: (s) => s.status === 'overdue',
  special: (s) => s.special,
  never: (s) => s.never,
  returned: (s) => s.returned,
  conflict: (s) => s.conflict,
  assignment: (s) => s.assignment,
};

/** Every word of the query must appear in the household's search text. */
export function select(summaries, { query = '', filter = null } = {}) {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  const test = filter ? TESTS[filter] : null;
  return summaries.filter((s) => (!test || test(s)) && words.every((w) => s.search.includes(w)));
}

export function counts(summaries) {
  const out = Object.fromEntries(FILTERS.map((f) => [f, 0]));
  for (const s of summaries) for (const f of FILTERS) if (TESTS[f](s)) out[f] += 1;
  return out;
}

/** Sorted summaries → [{building, units: [{unit, floors: [{floor, rows}]}]}], order kept. */
export function group(summaries) {
  const buildings = [];
  for (const s of summaries) {
    let b = buildings.at(-1);
    if (!b || b.building !== s.building) buildings.push(b = { building: s.building, units: [] });
    let u = b.units.at(-1);
    if (!u || u.unit !== s.unit) b.units.push(u = { unit: s.unit, floors: [] });
    let f = u.floors.at(-1);
    if (!f || f.floor !== s.floor) u.floors.push(f = { floor: s.floor, rows: [] });
    f.rows.push(s);
  }
  return buildings;
}
