// Recording a visit (new), correcting one the server has not seen (correct), or answering a
// returned one with a new visit that names it (amend). Saving writes to IndexedDB and returns.

import { h, replace } from '../dom.js';
import { t, tagLabel } from '../i18n.js';
import { newMemberId, validPhone } from '../ledger.js';
import { downscale } from '../photo.js';
import { NEED_CATEGORIES, OUTCOMES, VISIT_TYPES } from '../visits.js';
import { addressLabel, backLink } from './common.js';

function choices(name, values, labelPrefix, selected, onchange) {
  return h('div.tiles', { role: 'radiogroup' }, values.map((v) => h('label.tile',
    h('input', { type: 'radio', name, value: v, checked: v === selected, onchange: () => onchange(v) }),
    h('span', t(`${labelPrefix}.${v}`)))));
}

function tagBoxes(config, selected, onchange) {
  return h('div.tag-boxes', Object.keys(config.tags || {}).map((tag) => h('label.check',
    h('input', { type: 'checkbox', value: tag, checked: selected.has(tag), onchange: (e) => onchange(tag, e.target.checked) }),
    h('span', tagLabel(config, tag)))));
}

function sameSet(a, b) {
  return a.length === b.size && a.every((x) => b.has(x));
}

export function renderVisitForm(app, { mode, householdId, visitId, query }) {
  const el = h('div.form-view');
  let original = null; // the visit corrected or amended
  let entry;
  if (mode === 'new') {
    entry = app.findHousehold(householdId)?.entry;
  } else {
    const found = app.findVisit(visitId);
    entry = found?.entry;
    original = found?.visit || null;
    householdId = original?.household;
  }
  const summary = entry?.store.index.summaryById.get(householdId);
  if (!summary || (mode !== 'new' && !original)) {
    replace(el, backLink('#/', t('nav.households')), h('p.empty', t('household.missing')));
    return { el };
  }
  if (mode === 'correct' && !entry.store.isUnsynced(original._id)) {
    // Synced in the meantime: from now on only an amendment may change what it says.
    replace(el, backLink(`#/h/${encodeURIComponent(householdId)}`, t('nav.back')), h('p.empty', t('visit.already_synced')));
    return { el };
  }

  const store = entry.store;
  const config = store.index.config;
  const doc = summary.doc;
  const assignment = mode === 'new' ? query?.get('assignment') || null : original?.assignment || null;
  const defaultType = assignment ? 'follow_up' : summary.special ? 'special_care' : 'sweep';
  const form = {
    outcome: original?.outcome || null,
    visit_type: original?.visit_type || defaultType,
    notes: original?.notes || '',
    needs: [],
    gps: mode === 'correct' ? undefined : null, // undefined: keep what the visit has
    photo: null,
  };
  const ledger = {
    phone: doc.phone || '',
    tags: new Set(doc.tags || []),
    members: Object.fromEntries(Object.entries(doc.members || {}).map(([id, m]) => [id, {
      phone: m.phone || '', status: m.status, tags: new Set(m.tags || []),
    }])),
    added: [],
  };

  const errors = h('div.form-errors', { role: 'alert' });
  const needsList = h('div.needs-edit');
  const addedList = h('div.added-members');
  const gpsText = h('span.gps-text', original?.gps ? t('gps.fix', { accuracy: Math.round(original.gps.accuracy) }) : '');
  const photoBox = h('div.photo-box');

  function paintNeeds() {
    replace(needsList, form.needs.map((need, i) => h('div.need-edit',
      h('select', { 'aria-label': t('need.category'), onchange: (e) => { need.category = e.target.value; } },
        NEED_CATEGORIES.map((c) => h('option', { value: c, selected: c === need.category }, t(`need.${c}`)))),
      h('textarea', { rows: 2, value: need.text, placeholder: t('need.text'), 'aria-label': t('need.text'), oninput: (e) => { need.text = e.target.value; } }),
      h('label.check', h('input', { type: 'checkbox', checked: need.urgent, onchange: (e) => { need.urgent = e.target.checked; } }), h('span', t('need.urgent'))),
      h('button.link', { type: 'button', onclick: () => { form.needs.splice(i, 1); paintNeeds(); } }, t('form.remove')))));
  }

  function paintAdded() {
    replace(addedList, ledger.added.map((m, i) => h('div.card.new-member',
      h('label', t('member.name'), h('input', { value: m.name, autocomplete: 'off', oninput: (e) => { m.name = e.target.value; } })),
      h('label', t('member.relation'), h('input', { value: m.relation, oninput: (e) => { m.relation = e.target.value; } })),
      h('label', t('member.birth_year'), h('input', { type: 'number', inputmode: 'numeric', value: m.birth_year, oninput: (e) => { m.birth_year = e.target.value; } })),
      h('label', t('member.phone'), h('input', { type: 'tel', value: m.phone, oninput: (e) => { m.phone = e.target.value.trim(); } })),
      tagBoxes(config, m.tags, (tag, on) => (on ? m.tags.add(tag) : m.tags.delete(tag))),
      h('button.link', { type: 'button', onclick: () => { ledger.added.splice(i, 1); paintAdded(); } }, t('form.remove')))));
  }

  function memberEditor([id, m]) {
    const state = ledger.members[id];
    return h('details.member-edit',
      h('summary', m.name, state.status === 'moved_out' ? ` · ${t('member.moved_out')}` : ''),
      h('label.check', h('input', {
        type: 'checkbox', checked: state.status === 'moved_out', dataset: { member: id, field: 'moved_out' },
        onchange: (e) => { state.status = e.target.checked ? 'moved_out' : 'present'; },
      }), h('span', t('member.moved_out'))),
      h('label', t('member.phone'), h('input', { type: 'tel', value: state.phone, dataset: { member: id, field: 'phone' }, oninput: (e) => { state.phone = e.target.value.trim(); } })),
      tagBoxes(config, state.tags, (tag, on) => (on ? state.tags.add(tag) : state.tags.delete(tag))));
  }

  function locate() {
    if (!navigator.geolocation) {
      gpsText.textContent = t('gps.unavailable');
      return;
    }
    gpsText.textContent = t('gps.locating');
    navigator.geolocation.getCurrentPosition((pos) => {
      form.gps = {
        lat: Number(pos.coords.latitude.toFixed(6)), lon: Number(pos.coords.longitude.toFixed(6)),
        accuracy: Number(pos.coords.accuracy.toFixed(1)),
      };
      gpsText.textContent = t('gps.fix', { accuracy: Math.round(form.gps.accuracy) });
    }, () => { gpsText.textContent = t('gps.failed'); }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 });
  }

  async function takePhoto(file) {
    replace(photoBox, h('p.muted', t('photo.shrinking')));
    try {
      form.photo = await downscale(file);
      replace(photoBox,
        h('img.photo', { src: URL.createObjectURL(form.photo), alt: t('visit.photo') }),
        h('p.muted.photo-size', { dataset: { bytes: String(form.photo.size) } }, t('photo.size', { kb: Math.ceil(form.photo.size / 1024) })));
    } catch {
      form.photo = null;
      replace(photoBox, h('p.error-text', t('photo.failed')));
    }
  }

  /** The ledger edits the form holds, as [{path, value}] against the household as stored. */
  function edits() {
    const out = [];
    if (ledger.phone !== (doc.phone || '')) out.push({ path: 'phone', value: ledger.phone });
    if (!sameSet(doc.tags || [], ledger.tags)) out.push({ path: 'tags', value: [...ledger.tags] });
    for (const [id, m] of Object.entries(doc.members || {})) {
      const s = ledger.members[id];
      if (s.status !== m.status) out.push({ path: `members.${id}.status`, value: s.status });
      if (s.phone !== (m.phone || '')) out.push({ path: `members.${id}.phone`, value: s.phone });
      if (!sameSet(m.tags || [], s.tags)) out.push({ path: `members.${id}.tags`, value: [...s.tags] });
    }
    for (const m of ledger.added) {
      const member = { name: m.name.trim(), relation: m.relation.trim(), phone: m.phone, tags: [...m.tags], status: 'present' };
      if (m.birth_year) member.birth_year = Number(m.birth_year);
      out.push({ path: `members.${newMemberId()}`, value: member });
    }
    return out;
  }

  function problems() {
    const out = [];
    if (!form.outcome) out.push(t('form.need_outcome'));
    if (form.needs.some((n) => !n.text.trim())) out.push(t('form.need_text'));
    const phones = [ledger.phone, ...Object.values(ledger.members).map((m) => m.phone), ...ledger.added.map((m) => m.phone)];
    if (phones.some((p) => !validPhone(p))) out.push(t('form.bad_phone'));
    const year = new Date().getFullYear();
    for (const m of ledger.added) {
      if (!m.name.trim()) out.push(t('form.need_name'));
      if (m.birth_year && !(Number(m.birth_year) >= 1900 && Number(m.birth_year) <= year)) out.push(t('form.bad_year', { year }));
    }
    return out;
  }

  const saveButton = h('button.primary.big', { type: 'submit' }, t('form.save'));

  async function save(event) {
    event.preventDefault();
    const found = problems();
    replace(errors, found.map((p) => h('p', p)));
    if (found.length) {
      errors.scrollIntoView({ block: 'center' });
      return;
    }
    saveButton.disabled = true;
    const needs = form.needs.map((n) => ({ ...n, text: n.text.trim() }));
    try {
      if (mode === 'correct') {
        await store.correctVisit(original._id, { form: { ...form, needs }, edits: edits(), photo: form.photo });
      } else {
        await store.saveVisit({
          householdId, form: { ...form, needs }, edits: edits(), photo: form.photo,
          amends: mode === 'amend' ? original._id : null, assignment,
        });
      }
      app.toast(t('form.saved'));
      app.go(`#/h/${encodeURIComponent(householdId)}`);
    } catch (err) {
      saveButton.disabled = false;
      replace(errors, h('p', t('form.save_failed', { reason: err.message })));
    }
  }

  const titles = { new: 'form.title_new', correct: 'form.title_correct', amend: 'form.title_amend' };
  const review = original ? store.index.reviews.get(original._id) : null;
  replace(el, h('form.visit-form', { onsubmit: save, novalidate: true },
    backLink(`#/h/${encodeURIComponent(householdId)}`, t('nav.back')),
    h('h2', t(titles[mode])),
    h('p.address', addressLabel(doc.address)),
    mode === 'amend' && review ? h('div.banner.returned', h('strong', t('task.returned_title')), h('p', review.reason)) : null,
    assignment ? h('p.banner', t('form.for_assignment')) : null,
    h('fieldset', h('legend', t('form.outcome')),
      choices('outcome', OUTCOMES, 'outcome', form.outcome, (v) => { form.outcome = v; })),
    h('fieldset', h('legend', t('form.visit_type')),
      choices('visit_type', VISIT_TYPES, 'visit_type', form.visit_type, (v) => { form.visit_type = v; })),
    h('label.block', t('form.notes'),
      h('textarea', { name: 'notes', rows: 3, value: form.notes, oninput: (e) => { form.notes = e.target.value; } })),
    h('fieldset', h('legend', t('form.needs')),
      mode === 'correct' && original.needs?.length ? h('ul.muted', original.needs.map((n) => h('li', `${t(`need.${n.category}`)}: ${n.text}`))) : null,
      needsList,
      h('button.secondary', { type: 'button', onclick: () => { form.needs.push({ category: NEED_CATEGORIES[0], text: '', urgent: false }); paintNeeds(); } }, t('form.add_need'))),
    h('details.ledger', { open: false },
      h('summary', t('form.ledger')),
      mode === 'correct' && original.ledger_changes?.length ? h('p.muted', t('visit.changes_count', { count: original.ledger_changes.length })) : null,
      h('label', t('household.phone'), h('input', { type: 'tel', name: 'phone', value: ledger.phone, oninput: (e) => { ledger.phone = e.target.value.trim(); } })),
      h('div.block', h('span.label', t('household.tags')), tagBoxes(config, ledger.tags, (tag, on) => (on ? ledger.tags.add(tag) : ledger.tags.delete(tag)))),
      h('div.block', h('span.label', t('household.members_edit')), Object.entries(doc.members || {}).map(memberEditor)),
      addedList,
      h('button.secondary', { type: 'button', onclick: () => { ledger.added.push({ name: '', relation: '', birth_year: '', phone: '', tags: new Set() }); paintAdded(); } }, t('member.add'))),
    h('fieldset', h('legend', t('form.evidence')),
      h('div.line', h('button.secondary', { type: 'button', onclick: locate }, t('gps.get')), gpsText),
      h('label.button.secondary.file', t('photo.take'),
        h('input', { type: 'file', accept: 'image/*', capture: 'environment', name: 'photo', onchange: (e) => e.target.files[0] && takePhoto(e.target.files[0]) })),
      photoBox),
    errors,
    h('div.sticky-action', saveButton)));
  return { el };
}
