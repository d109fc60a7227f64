// Small pieces several screens share: address labels, tag chips, due badges, dialogs.

import { h } from '../dom.js';
import { formatDay, t, tagLabel } from '../i18n.js';

export function addressLabel(address = {}) {
  return address.unit
    ? t('address.full', { building: address.building, unit: address.unit, room: address.room })
    : t('address.no_unit', { building: address.building, room: address.room });
}

/** A ledger path as a person reads it: 'members.m1.phone' → "<member's name> · <phone>". */
export function pathLabel(household, path) {
  const parts = path.split('.');
  if (parts[0] === 'members' && parts.length === 3) {
    const name = household.members?.[parts[1]]?.name || parts[1];
    return `${name} · ${t(`member.${parts[2]}`)}`;
  }
  return t(`household.${path}`);
}

export function tagChips(config, tags) {
  return h('span.chips', tags.map((tag) => h('span.chip', { class: config.tags?.[tag]?.special_care ? 'care' : '' }, tagLabel(config, tag))));
}

export function dueBadge(summary) {
  const { plan, status } = summary;
  const text = plan.due === null ? t('due.now') : t(`due.${status}`, { day: formatDay(plan.due) });
  return h('span.due', { class: status, dataset: { due: plan.due || '', status } }, text);
}

export function lastVisitText(summary) {
  const last = summary.plan.lastVisit;
  if (!last) return t('visit.never');
  return t('visit.last', { day: formatDay(last.visited_at.slice(0, 10)), outcome: t(`outcome.${last.outcome}`) });
}

export function backLink(hash, label) {
  return h('a.back', { href: hash }, `‹ ${label}`);
}

/**
 * A modal question. `buttons`: [{label, value, kind}]; resolves with the value of the tapped
 * button (or null when dismissed).
 */
export function ask({ title, message, buttons }) {
  return new Promise((resolve) => {
    const close = (value) => {
      overlay.remove();
      resolve(value);
    };
    const overlay = h('div.overlay', { onclick: (e) => e.target === overlay && close(null) },
      h('div.dialog', { role: 'alertdialog', 'aria-modal': 'true', 'aria-labelledby': 'dialog-title' },
        h('h2#dialog-title', title),
        message ? h('p', message) : null,
        h('div.actions', buttons.map((b) => h('button', { type: 'button', class: b.kind || '', onclick: () => close(b.value) }, b.label)))));
    document.body.append(overlay);
    overlay.querySelector('button')?.focus();
  });
}
