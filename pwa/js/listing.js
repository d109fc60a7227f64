// The household list: one filter at a time and a search. Pure.

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
