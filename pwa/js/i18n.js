// All text comes from pwa/locales/<language>.json through i18next; zh-CN unless chosen otherwise.

import i18next from '/vendor/i18next.js';
import { saveLanguage, savedLanguage } from './profile.js';

export const LANGUAGES = ['zh-CN', 'en'];

export async function initI18n() {
  const catalogues = await Promise.all(LANGUAGES.map(
    (lng) => fetch(`/app/locales/${lng}.json`).then((r) => r.json()),
  ));
  const resources = Object.fromEntries(LANGUAGES.map((lng, i) => [lng, { translation: catalogues[i] }]));
  const wanted = savedLanguage();
  await i18next.init({
    lng: LANGUAGES.includes(wanted) ? wanted : 'zh-CN',
    fallbackLng: 'zh-CN',
    resources,
    // Text only ever reaches the page through textContent, never as HTML.
    interpolation: { escapeValue: false },
  });
  document.documentElement.lang = i18next.language;
}

export function t(key, options) {
  return i18next.t(key, options);
}

export function language() {
  return i18next.language;
}

export async function setLanguage(lng) {
  saveLanguage(lng);
  await i18next.changeLanguage(lng);
  document.documentElement.lang = lng;
}

/** A tag's label in the current language, from the grid's tag configuration. */
export function tagLabel(config, tag) {
  const spec = config.tags?.[tag];
  if (!spec) return tag;
  return language() === 'en' ? spec.en : spec.zh;
}

// Intl formatters are slow to make and the list formats two dates per row: keep them.
const formatters = new Map();
function formatter(options) {
  const key = `${language()}|${JSON.stringify(options)}`;
  if (!formatters.has(key)) formatters.set(key, new Intl.DateTimeFormat(language(), options));
  return formatters.get(key);
}

export function formatDay(day) {
  if (!day) return '';
  const [y, m, d] = day.split('-').map(Number);
  const thisYear = y === new Date().getFullYear();
  return formatter({ month: 'short', day: 'numeric', year: thisYear ? undefined : 'numeric' })
    .format(new Date(y, m - 1, d));
}

/** A moment: only the time when it was today, with the day otherwise. */
export function formatTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  const today = d.toDateString() === new Date().toDateString();
  const parts = today ? { hour: '2-digit', minute: '2-digit' } : { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' };
  return formatter(parts).format(d);
}
