// Editing a household ledger entry on the phone, the way sync/merge.py expects to merge it.
//
// Each editable path ('phone', 'tags', 'members.m1.status', ...) carries a clock stamp
// {vv: {device: n}, at, by, device}. Whoever edits a path increments their own device's
// counter in that path's vector, so the server can tell an edit that saw another from a
// concurrent one without old revisions (docs/data-model.md).

export const HOUSEHOLD_FIELDS = ['micro_grid', 'address', 'housing', 'residency', 'tags', 'phone', 'note'];
export const MEMBER_FIELDS = ['name', 'relation', 'birth_year', 'phone', 'id_number', 'tags', 'status'];

const MOBILE = /^1[3-9]\d{9}$/;
const LANDLINE = /^0\d{2,3}-?\d{7,8}$/;

/** The same phone rule as sync/schema.py: empty, a mobile number, or a landline. */
export function validPhone(value) {
  return value === '' || MOBILE.test(value) || LANDLINE.test(value);
}

export function nowIso() {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A new member id: short, random, a valid key; never reused because members are never removed. */
export function newMemberId() {
  return 'm' + crypto.randomUUID().replace(/-/g, '').slice(0, 10);
}

function same(a, b) {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

function read(doc, path) {
  const parts = path.split('.');
  return parts.reduce((obj, key) => (obj == null ? undefined : obj[key]), doc);
}

function write(doc, path, value) {
  const parts = path.split('.');
  let obj = doc;
  for (const key of parts.slice(0, -1)) obj = obj[key];
  obj[parts.at(-1)] = value;
}

/**
 * The stamp for one more edit of a path by `device`. The counter is at least the edit time
 * in milliseconds (as sync/clock.py `tick`): a plain +1 repeats itself when the phone edits
 * a branch that lost CouchDB's pick, and two edits sharing a stamp could silently lose one.
 */
export function bump(stamp, { device, user, at }) {
  const vv = { ...(stamp?.vv || {}) };
  vv[device] = Math.max((vv[device] || 0) + 1, Date.parse(at) || 0);
  return { vv, at, by: user, device };
}

/**
 * Apply edits to a copy of `household`.
 * `edits`: [{path, value}], where path is an editable field ('phone'), a member field
 * ('members.m1.phone'), or a whole new member ('members.<new id>' with the member object).
 * Returns {doc, changes: [{path, old, new}]}; edits that change nothing are dropped.
 */
export function applyEdits(household, edits, who) {
  const doc = structuredClone(household);
  doc.clock = doc.clock || {};
  const changes = [];
  const set = (path, value) => {
    const old = read(doc, path);
    if (same(old, value)) return;
    write(doc, path, value);
    doc.clock[path] = bump(doc.clock[path], who);
    changes.push({ path, old: old ?? null, new: value });
  };
  for (const { path, value } of edits) {
    const parts = path.split('.');
    if (parts[0] === 'members' && parts.length === 2) {
      if (doc.members[parts[1]]) throw new Error(`member ${parts[1]} exists already`);
      doc.members[parts[1]] = {};
      for (const field of MEMBER_FIELDS) {
        if (value[field] !== undefined) set(`${path}.${field}`, value[field]);
      }
    } else if (parts[0] === 'members' && parts.length === 3 && MEMBER_FIELDS.includes(parts[2])) {
      if (!doc.members[parts[1]]) throw new Error(`no member ${parts[1]}`);
      set(path, value);
    } else if (parts.length === 1 && HOUSEHOLD_FIELDS.includes(path)) {
      set(path, value);
    } else {
      throw new Error(`${path} is not an editable path`);
    }
  }
  if (changes.length) doc.updated_at = who.at;
  return { doc, changes };
}
