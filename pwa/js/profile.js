// What the phone remembers between launches, in localStorage: the signed-in user's profile
// (so the app opens offline), this install's device id, and the chosen language.

const PROFILE = 'doorstep.profile';
const DEVICE = 'doorstep.device';
const LANGUAGE = 'doorstep.language';

/** {name, display_name, roles, grids: [{id, name, db}]} of the last login, or null. */
export function savedProfile() {
  try {
    return JSON.parse(localStorage.getItem(PROFILE));
  } catch {
    return null;
  }
}

export function saveProfile(profile) {
  localStorage.setItem(PROFILE, JSON.stringify(profile));
}

/** A random id made once per install; it names this phone in household clock stamps. */
export function deviceId() {
  let id = localStorage.getItem(DEVICE);
  if (!id) {
    id = `dev-${crypto.randomUUID().slice(0, 13)}`;
    localStorage.setItem(DEVICE, id);
  }
  return id;
}

export function savedLanguage() {
  return localStorage.getItem(LANGUAGE);
}

export function saveLanguage(lng) {
  localStorage.setItem(LANGUAGE, lng);
}

/** Forget everything but the language, which says nothing about anyone. */
export function forgetAll() {
  const language = savedLanguage();
  localStorage.clear();
  sessionStorage.clear();
  if (language) saveLanguage(language);
}
