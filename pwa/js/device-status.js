// Telling the server how this phone's sync is going, so the supervisor's dashboard can say
// "12 pending as of 09:14" (POST /api/device-status, server/api/devices.py).
//
// Every GridSync registers here; after each sync attempt and whenever the pending count
// changes, one report goes out with the sum over the user's grids. Best effort only: the app
// works the same whether a report gets through or not. Offline nothing is sent; a burst of
// changes becomes one report; at most one request is in flight, and what waits is only ever
// the latest snapshot, never a queue. The device id is this install's (profile.js), kept in
// localStorage and in no replicated document.

import { deviceId } from './profile.js';
import { appVersion } from './update.js';

const SETTLE_MS = 1000; // changes closer together than this make one report
const REPEAT_MS = 60 * 1000; // the same figures are sent again after this, to keep "as of" fresh
const ERROR_KINDS = new Set(['auth', 'forbidden', 'network', 'server', 'storage', 'refused']);

let knownVersion = '';
let asking = null;

/** The shell version the service worker serves; '' while no worker controls the page. */
function askVersion() {
  asking ||= appVersion().then((v) => { knownVersion = v || knownVersion; })
    .catch(() => {}).finally(() => { asking = null; });
  return asking;
}

// Ask as soon as a service worker controls the page: at once when the page came from it, or
// when the first install claims it, so even the first visit recorded carries the version.
askVersion();
navigator.serviceWorker?.addEventListener('controllerchange', () => askVersion());

/** The version as far as it is known now: saving a visit never waits for the worker. */
export function appVersionNow() {
  if (!knownVersion) askVersion();
  return knownVersion;
}

class DeviceStatusReporter {
  constructor() {
    this.syncs = new Set();
    this.timer = null;
    this.sending = false;
    this.again = false;
    this.sent = null; // {key, at} of the last report the server accepted
    this.refused = false; // not a worker's session: the server does not want our reports
  }

  track(sync) {
    this.syncs.add(sync);
  }

  untrack(sync) {
    this.syncs.delete(sync);
    if (!this.syncs.size) {
      // Logged out: the next user of this phone starts afresh.
      clearTimeout(this.timer);
      this.timer = null;
      this.sent = null;
      this.refused = false;
    }
  }

  /** A sync attempt ended or the pending count changed: report soon, if online. */
  changed() {
    if (this.refused || !navigator.onLine || !this.syncs.size) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), SETTLE_MS);
  }

  snapshot() {
    let pending = 0;
    let visits = 0;
    let lastSync = '';
    let neverSynced = false;
    let error = null;
    for (const { state } of this.syncs) {
      pending += state.pending.total;
      visits += state.pending.visits;
      // The device is as up to date as its least recently synced grid.
      if (!state.lastSync) neverSynced = true;
      else if (!lastSync || state.lastSync < lastSync) lastSync = state.lastSync;
      if (!error && ERROR_KINDS.has(state.error?.kind)) error = state.error.kind;
    }
    return {
      device: deviceId(), app_version: knownVersion, pending, pending_visits: visits,
      last_sync: neverSynced ? null : lastSync, last_error: error,
    };
  }

  async flush() {
    this.timer = null;
    if (this.sending) {
      this.again = true; // the report in flight is outdated already: one more after it
      return;
    }
    if (this.refused || !navigator.onLine || !this.syncs.size) return;
    this.sending = true;
    try {
      if (!knownVersion) await askVersion(); // at most 2 s, and nobody waits for a report
      const key = JSON.stringify(this.snapshot());
      if (this.sent?.key === key && Date.now() - this.sent.at < REPEAT_MS) return;
      const res = await fetch('/api/device-status', {
        method: 'POST', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json' }, body: key,
      });
      if (res.ok) this.sent = { key, at: Date.now() };
      else if (res.status === 403) this.refused = true;
      // 401: the session expired, which the sync shows; the report after the next login says it.
    } catch {
      // No connection after all: the next sync attempt reports again.
    } finally {
      this.sending = false;
      if (this.again) {
        this.again = false;
        this.changed();
      }
    }
  }
}

export const deviceStatus = new DeviceStatusReporter();
