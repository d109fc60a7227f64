// Login: the only screen that needs the network. A second login after the session expired
// keeps everything on the phone; logging in as someone else first erases the last user's data.

import * as api from '../api.js';
import { h, replace } from '../dom.js';
import { t } from '../i18n.js';
import { savedProfile } from '../profile.js';
import { ask } from './common.js';

const MESSAGES = { 401: 'login.bad_password', 403: 'login.inactive', 429: 'login.too_many', 0: 'login.offline' };

export function renderLogin(app, { relogin = false } = {}) {
  const previous = savedProfile();
  const pending = app.pending();
  const message = h('p.error-text', { role: 'alert' });
  const name = h('input', { name: 'name', autocomplete: 'username', autocapitalize: 'none', required: true, value: relogin ? previous?.name || '' : '' });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button.primary.big', { type: 'submit' }, t('login.submit'));

  async function onSubmit(event) {
    event.preventDefault();
    message.textContent = '';
    const user = name.value.trim().toLowerCase();
    if (!user || !password.value) {
      message.textContent = t('login.missing');
      return;
    }
    if (previous && previous.name !== user && app.grids.length) {
      const sure = await ask({
        title: t('login.other_user_title'),
        message: t('login.other_user', { name: previous.name, count: pending.visits }),
        buttons: [{ label: t('login.other_user_confirm'), value: true, kind: 'danger' }, { label: t('form.cancel'), value: false }],
      });
      if (!sure) return;
    }
    submit.disabled = true;
    try {
      await api.login(user, password.value);
      const profile = await api.me();
      if (previous && previous.name !== profile.name && app.grids.length) await app.wipe();
      await app.afterLogin(profile);
    } catch (err) {
      message.textContent = t(MESSAGES[err.status] || 'login.failed');
      submit.disabled = false;
    }
  }

  const el = h('div.login-view',
    h('div.brand', h('img', { src: '/app/icons/icon-192.png', alt: '', width: 72, height: 72 }), h('h1', t('app.name')), h('p', t('app.tagline'))),
    relogin ? h('p.banner', t('login.relogin', { count: pending.visits })) : null,
    navigator.onLine ? null : h('p.banner', t('login.needs_network')),
    h('form', { onsubmit: onSubmit, novalidate: true },
      h('label', t('login.name'), name),
      h('label', t('login.password'), password),
      message,
      submit),
    relogin ? h('button.link', { type: 'button', onclick: () => { app.go('#/'); app.restoreChrome(); } }, t('login.later')) : null);
  return { el };
}
