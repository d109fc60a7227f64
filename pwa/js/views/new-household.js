// Adding a household found at a door (a family that moved in): address, phone, the head
// and tags. Saved on the phone at once, listed and searchable, then visited like any other.

import { h, replace } from '../dom.js';
import { t, tagLabel } from '../i18n.js';
import { nowIso, validPhone } from '../ledger.js';
import { HEAD, addressPart, householdIdFor, newHousehold, validIdNumber } from '../new-household.js';
import { backLink } from './common.js';

const HOUSING = ['owner', 'rented', 'vacant'];
const RESIDENCY = ['registered', 'floating'];

function field(label, attrs) {
  return h('label', label, h('input', { autocomplete: 'off', ...attrs }));
}

function select(label, name, values, prefix) {
  return h('label', label, h('select', { name }, values.map((v) => h('option', { value: v }, t(`${prefix}.${v}`)))));
}

/** `query`: building and unit to start from (the list's per-building link). */
export function renderNewHousehold(app, { query }) {
  const entry = app.active;
  const store = entry.store;
  const config = store.index.config;
  const tags = new Set();
  const errors = h('div.form-errors', { role: 'alert' });
  const saveButton = h('button.primary.big', { type: 'submit' }, t('form.save'));
  const form = h('form.new-household', { onsubmit: save, novalidate: true },
    backLink('#/', t('nav.households')),
    h('h2', t('new.title')),
    h('fieldset', h('legend', t('household.address')),
      field(t('new.building'), { name: 'building', value: query?.get('building') || '' }),
      field(t('new.unit'), { name: 'unit', value: query?.get('unit') || '' }),
      field(t('new.floor'), { name: 'floor', type: 'number', inputmode: 'numeric' }),
      field(t('new.room'), { name: 'room' })),
    select(t('household.housing'), 'housing', HOUSING, 'housing'),
    select(t('household.residency'), 'residency', RESIDENCY, 'residency'),
    field(t('household.phone'), { name: 'phone', type: 'tel' }),
    h('fieldset', h('legend', t('new.head')),
      field(t('member.name'), { name: 'name' }),
      field(t('member.relation'), { name: 'relation', value: t('new.head_relation') }),
      field(t('member.id_number'), { name: 'id_number' }),
      field(t('member.birth_year'), { name: 'birth_year', type: 'number', inputmode: 'numeric' })),
    h('div.block', h('span.label', t('household.tags')),
      h('div.tag-boxes', Object.keys(config.tags || {}).map((tag) => h('label.check',
        h('input', { type: 'checkbox', value: tag, onchange: (e) => (e.target.checked ? tags.add(tag) : tags.delete(tag)) }),
        h('span', tagLabel(config, tag)))))),
    errors,
    h('div.sticky-action', saveButton));

  const value = (name) => form.elements[name].value.trim();

  /** The household the form describes, or the problems that keep it from being saved. */
  function read() {
    const problems = [];
    const address = {
      building: addressPart('building', value('building')),
      unit: addressPart('unit', value('unit')),
      floor: Number(value('floor')),
      room: addressPart('room', value('room')),
    };
    if (!address.building || !address.room) problems.push(t('new.need_address'));
    if (value('floor') === '' || !Number.isInteger(address.floor) || address.floor < -5 || address.floor > 200) {
      problems.push(t('new.bad_floor'));
    }
    const id = householdIdFor(entry.grid.id, address);
    if (address.building && address.room && !id) problems.push(t('new.bad_part'));
    if (!validPhone(value('phone'))) problems.push(t('form.bad_phone'));
    const head = { name: value('name'), relation: value('relation'), tags: [], status: 'present' };
    if (!head.name) problems.push(t('new.need_name'));
    const idNumber = value('id_number').toUpperCase();
    if (idNumber && !validIdNumber(idNumber)) problems.push(t('new.bad_id_number'));
    else if (idNumber) head.id_number = idNumber;
    const year = new Date().getFullYear();
    if (value('birth_year')) {
      const born = Number(value('birth_year'));
      if (!(Number.isInteger(born) && born >= 1900 && born <= year)) problems.push(t('form.bad_year', { year }));
      else head.birth_year = born;
    }
    const fields = {
      address, housing: value('housing'), residency: value('residency'), phone: value('phone'),
      tags: Object.keys(config.tags || {}).filter((tag) => tags.has(tag)), members: { [HEAD]: head },
    };
    return { id, fields, problems };
  }

  function existing(id, moved) {
    const open = moved ? null : h('a.button', { href: `#/h/${encodeURIComponent(id)}` }, t('new.open_existing'));
    replace(errors, h('div.banner.exists', h('p', t(moved ? 'new.moved' : 'new.exists', { id })), open));
  }

  async function save(event) {
    event.preventDefault();
    const { id, fields, problems } = read();
    if (!problems.length && store.index.households.has(id)) {
      existing(id, false);
      return;
    }
    replace(errors, problems.map((p) => h('p', p)));
    if (problems.length) {
      errors.scrollIntoView({ block: 'center' });
      return;
    }
    saveButton.disabled = true;
    try {
      const doc = newHousehold(entry.grid.id, id, fields, { ...store.stamp(), at: nowIso() });
      const outcome = await store.addHousehold(doc);
      saveButton.disabled = false;
      if (outcome !== 'added') {
        existing(id, outcome === 'moved');
        return;
      }
      app.toast(t('new.saved'));
      app.go(`#/h/${encodeURIComponent(id)}`);
    } catch (err) {
      saveButton.disabled = false;
      replace(errors, h('p', t('form.save_failed', { reason: err.message })));
    }
  }

  return { el: h('div.form-view', form) };
}
