// A household found at a door: its id from grid and address (the ledger import's rule,
// sync/ledger_import.py `household_id`, which the gateway checks), and its first revision,
// every field stamped like an edit so a second phone's creation of the same address merges
// field by field (sync/merge.py).

import { applyEdits } from './ledger.js';

// What offices write after a part of an address ('3栋', '2单元', '502室'); not UI text.
const SUFFIX = { building: /(号楼|栋|幢|号|楼)$/, unit: /单元$/, room: /(室|号)$/ };
const PLAIN = /^[A-Za-z0-9]+$/;
const MAX_ID = 64;

/** '3栋' → '3'; parts are trimmed and their written suffix dropped, as the import does. */
export function addressPart(name, text) {
  const trimmed = String(text ?? '').trim();
  return SUFFIX[name] ? trimmed.replace(SUFFIX[name], '') : trimmed;
}

/**
 * `G001-3-2-502` (no unit: `G001-3--502`), or null when a part is not letters and digits:
 * the import turns such parts into hashes, which the phone does not compute.
 */
export function householdIdFor(grid, { building, unit, room }) {
  if (![building, room].every((p) => PLAIN.test(p)) || (unit && !PLAIN.test(unit))) return null;
  const id = [grid, building, unit || '', room].join('-');
  return id.length <= MAX_ID ? id : null;
}

const ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK = '10X98765432';

/** The resident ID number rule of sync/schema.py `id_number`: form, check digit, birth date. */
export function validIdNumber(v) {
  if (!/^\d{17}[\dX]$/.test(v)) return false;
  const total = ID_WEIGHTS.reduce((sum, w, i) => sum + w * Number(v[i]), 0);
  const [y, m, d] = [v.slice(6, 10), v.slice(10, 12), v.slice(12, 14)].map(Number);
  const born = new Date(Date.UTC(y, m - 1, d));
  return ID_CHECK[total % 11] === v[17] && born.getUTCFullYear() === y
    && born.getUTCMonth() === m - 1 && born.getUTCDate() === d;
}

/** The head of a new household is always member `m1`, so two phones' heads merge as one. */
export const HEAD = 'm1';

/**
 * The first revision of a new household. `fields`: {address, housing, residency, phone,
 * tags, members: {id: member}}; `who`: {device, user, at}.
 */
export function newHousehold(grid, id, fields, who) {
  const skeleton = {
    _id: `household:${id}`, type: 'household', grid, household_id: id,
    members: {}, clock: {}, created_at: who.at,
  };
  const edits = ['address', 'housing', 'residency', 'tags', 'phone']
    .map((path) => ({ path, value: fields[path] }));
  for (const [mid, member] of Object.entries(fields.members)) {
    edits.push({ path: `members.${mid}`, value: member });
  }
  const { doc } = applyEdits(skeleton, edits, who);
  doc.updated_at = who.at;
  return doc;
}
