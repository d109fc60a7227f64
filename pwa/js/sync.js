// Keeping one grid's local database and the server's in step, and telling the truth about it.
//
// First sync: a bulk load (three `_all_docs?include_docs=true` ranges, the ledger first, each
// written with one `bulkDocs(new_edits: false)`); the live replication then starts from the
// database's update_seq taken before the load, which catches whatever changed meanwhile.
// Plain PouchDB replication would walk the whole feed in small batches with a `_bulk_get`
// round trip each (docs/benchmarks.md, "Field app").
// Afterwards: live two-way replication with retry and backoff.
//
// Pending ("not on the server yet") = local changes after the push checkpoint (mirrored from
// PouchDB's 'checkpoint' events into `_local/doorstep_sync`), minus revisions known to have
// come from the server, plus documents the server refused. Whenever both directions are idle
// without error the list is checked against the server with `_revs_diff`; only then is the
// sync reported as done.
//
// After each sync attempt and whenever the pending count changes, the phone tells the server
// (device-status.js): the supervisor's dashboard shows what is still waiting on which phone.

import { deviceStatus } from './device-status.js';

const PouchDB = globalThis.PouchDB;
const META = '_local/doorstep_sync';
const HIGH = '\ufff0';
const MAX_BACKOFF_MS = 5 * 60 * 1000;

/** 1 s, 2 s, 4 s, … up to 5 minutes, with jitter so phones do not retry in step. */
function backoff(delay) {
  const next = delay ? Math.min(delay * 2, MAX_BACKOFF_MS) : 1000;
  return next * (0.8 + Math.random() * 0.4);
}

/** What went wrong, in one word the UI can explain: auth, forbidden, network, server, storage. */
export function classify(err) {
  const status = err?.status;
  const name = String(err?.name || err?.error || '').toLowerCase();
  if (status === 401 || name === 'unauthorized') return 'auth';
  if (status === 403 || name === 'forbidden') return 'forbidden';
  if (name === 'quotaexceedederror' || /quota/i.test(err?.message || '')) return 'storage';
  if (status >= 500) return 'server';
  if (!status || err instanceof TypeError) return 'network';
  return 'server';
}

class HttpError extends Error {
  constructor(status, body) {
    super(body?.reason || `HTTP ${status}`);
    this.status = status;
    this.name = body?.error || 'http_error';
  }
}

async function fetchJson(url, init = {}) {
  const res = await fetch(url, { credentials: 'same-origin', ...init });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new HttpError(res.status, body);
  return body;
}

/** GET an _all_docs range, reporting rows as they stream in. */
async function fetchRows(url, onRows) {
  const res = await fetch(url, { credentials: 'same-origin' });
  if (!res.ok) throw new HttpError(res.status, await res.json().catch(() => null));
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let seen = 0;
  let from = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    // Each row opens with {"id":" — counting them is enough for a progress bar.
    for (let i = text.indexOf('{"id":"', from); i !== -1; i = text.indexOf('{"id":"', i + 1)) {
      seen += 1;
      from = i + 1;
    }
    from = Math.max(from, text.length - 8);
    onRows(seen);
  }
  text += decoder.decode();
  return JSON.parse(text).rows;
}

/**
 * `_bulk_get` always. PouchDB probes the first `_bulk_get` it sends to a database and, if
 * that one request fails, falls back to one GET per document for the rest of the page's
 * life; on a phone the first request failing is just a lost signal, not a missing feature.
 */
function useBulkGet(remote, base) {
  remote.bulkGet = async (opts, callback) => {
    const q = new URLSearchParams();
    for (const flag of ['revs', 'attachments', 'latest']) if (opts[flag]) q.set(flag, 'true');
    try {
      const result = await fetchJson(`${base}/_bulk_get?${q}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ docs: opts.docs }),
      });
      callback?.(null, result);
      return result;
    } catch (err) {
      if (callback) callback(err);
      else throw err;
      return undefined;
    }
  };
}

function rangeUrl(base, range) {
  const q = new URLSearchParams({ include_docs: 'true', conflicts: 'true' });
  if (range.startkey !== undefined) q.set('startkey', JSON.stringify(range.startkey));
  if (range.endkey !== undefined) q.set('endkey', JSON.stringify(range.endkey));
  return `${base}/_all_docs?${q}`;
}

export class GridSync extends EventTarget {
  /** `local`: the grid's PouchDB; `remoteUrl`: its replication endpoint on the gateway. */
  constructor(local, remoteUrl) {
    super();
    this.local = local;
    this.remoteUrl = remoteUrl;
    this.remote = new PouchDB(remoteUrl, { skip_setup: true });
    useBulkGet(this.remote, remoteUrl);
    this.meta = null;
    this.reps = null;
    this.idle = { push: false, pull: false };
    this.loadedRevs = new Map(); // revisions written by the bulk load (until it is done)
    this.waiters = [];
    this.writeChain = Promise.resolve();
    this.starting = null;
    this.closed = false;
    this.state = {
      online: navigator.onLine, phase: 'starting', progress: null, lastSync: null,
      pending: { total: 0, visits: 0, households: 0, other: 0, ids: new Set() },
      error: null, denied: [],
    };
    deviceStatus.track(this);
  }

  // -- state ----------------------------------------------------------------------------

  set(patch) {
    this.state = { ...this.state, ...patch };
    this.dispatchEvent(new Event('state'));
  }

  async readMeta() {
    const meta = await this.local.get(META).catch(() => ({ _id: META }));
    this.meta = {
      initial_done: false, pushed_seq: 0, last_sync: null, server_revs: {}, denied: {},
      first_local_seq: null, since: {}, ...meta,
    };
    this.state = { ...this.state, lastSync: this.meta.last_sync };
    return this.meta;
  }

  /** Persist `patch` into the meta document; writes are serialised so no revision is lost. */
  saveMeta(patch) {
    Object.assign(this.meta, patch);
    this.writeChain = this.writeChain.then(async () => {
      const current = await this.local.get(META).catch(() => null);
      const res = await this.local.put({ ...this.meta, _id: META, _rev: current?._rev });
      this.meta._rev = res.rev;
    }).catch((err) => { if (!this.closed) this.fail(err); });
    return this.writeChain;
  }

  /** The app writes locally: called before the write, so the first sync never skips it. */
  async beforeLocalWrite() {
    if (!this.meta) await this.readMeta();
    if (!this.meta.initial_done && this.meta.first_local_seq === null) {
      await this.saveMeta({ first_local_seq: (await this.local.info()).update_seq });
    }
  }

  async afterLocalWrite() {
    await this.refreshPending();
  }

  // -- pending ----------------------------------------------------------------------------

  /** Local documents whose current revision the server is not known to hold. */
  async pendingChanges() {
    const meta = this.meta;
    let since = meta.pushed_seq;
    if (!meta.initial_done) {
      if (meta.first_local_seq === null) return [];
      since = meta.first_local_seq;
    }
    const res = await this.local.changes({ since, style: 'main_only', return_docs: true });
    const out = [];
    for (const c of res.results) {
      const rev = c.changes[0].rev;
      if (c.id.startsWith('_design/') || meta.server_revs[c.id] === rev) continue;
      if (this.loadedRevs.get(c.id) === rev) continue;
      out.push({ id: c.id, rev, seq: c.seq });
    }
    for (const [id, d] of Object.entries(meta.denied)) {
      if (!out.some((c) => c.id === id)) {
        const doc = await this.local.get(id).catch(() => null);
        if (doc && doc._rev === d.rev) out.push({ id, rev: d.rev, seq: null });
      }
    }
    return out;
  }

  async refreshPending() {
    const changes = await this.pendingChanges();
    const pending = { total: changes.length, visits: 0, households: 0, other: 0,
      ids: new Set(changes.map((c) => c.id)) };
    for (const c of changes) {
      if (c.id.startsWith('visit:')) pending.visits += 1;
      else if (c.id.startsWith('household:')) pending.households += 1;
      else pending.other += 1;
    }
    const denied = Object.entries(this.meta.denied).map(([id, d]) => ({ id, reason: d.reason }));
    // A new local change ends 'idle' at once, before the push even wakes up: idle means
    // everything is on the server.
    const phase = this.state.phase === 'idle' && pending.total > 0 ? 'syncing' : this.state.phase;
    const before = this.state.pending.total;
    this.set({ pending, denied, phase });
    if (pending.total !== before) deviceStatus.changed();
    return pending;
  }

  /** Ask the server which pending revisions it lacks; advance the checkpoint past the rest. */
  async verify() {
    const upTo = (await this.local.info()).update_seq;
    const changes = (await this.pendingChanges()).filter((c) => c.seq === null || c.seq <= upTo);
    const missing = new Set();
    if (changes.length) {
      const diff = await this.remote.revsDiff(Object.fromEntries(changes.map((c) => [c.id, [c.rev]])));
      for (const id of Object.keys(diff)) missing.add(id);
    }
    const serverRevs = { ...this.meta.server_revs };
    const denied = { ...this.meta.denied };
    for (const c of changes) {
      if (!missing.has(c.id)) {
        serverRevs[c.id] = c.rev;
        delete denied[c.id];
      }
    }
    const patch = { server_revs: serverRevs, denied };
    if (missing.size === 0 && this.meta.initial_done) {
      // Everything up to upTo is on the server; keep only what changed after it.
      const later = await this.local.changes({ since: upTo, return_docs: true });
      patch.pushed_seq = upTo;
      patch.server_revs = Object.fromEntries(later.results
        .filter((c) => serverRevs[c.id]).map((c) => [c.id, serverRevs[c.id]]));
    }
    await this.saveMeta(patch);
    await this.refreshPending();
    return missing;
  }

  // -- first sync -----------------------------------------------------------------------------

  /** Fetch the whole grid; `onLedger` runs as soon as households and configuration are stored. */
  async initialLoad(onLedger) {
    const base = this.remoteUrl;
    this.set({ phase: 'initial', error: null, progress: null });
    const info = await fetchJson(`${base}/`);
    const since = info.update_seq;
    const total = info.doc_count;
    const received = [0, 0, 0];
    let done = 0;
    const progress = () => this.set({
      progress: { done, received: received.reduce((a, b) => a + b), total },
    });
    progress();
    const ranges = [
      { startkey: 'household:', endkey: `household:${HIGH}` }, // the ledger first
      { endkey: 'household:' }, // assignments, audit, config, conflicts
      { startkey: `household:${HIGH}` }, // need events, reviews, visits
    ];
    const fetches = ranges.map((r, i) => fetchRows(rangeUrl(base, r), (n) => {
      received[i] = n;
      progress();
    }));
    // Awaited in order below; a later one failing first must not count as unhandled.
    fetches.forEach((f) => f.catch(() => {}));
    // Households need the configuration for due dates: write ranges 0 and 1 before opening.
    const [ledger, rest] = await Promise.all([fetches[0], fetches[1]]);
    done += await this.store(ledger.concat(rest));
    progress();
    await onLedger?.();
    done += await this.store(await fetches[2]);
    progress();

    // The live sync starts from here: the pull from the update_seq read before the load (it
    // catches whatever changed meanwhile), the push from the local sequence after it. Until
    // each direction has been idle once, every start passes that `since` (see startLive).
    const meta = await this.readMeta();
    const seq = (await this.local.info()).update_seq;
    let pushSince = seq;
    let serverRevs = meta.server_revs;
    if (meta.first_local_seq !== null) {
      // The worker saved something while the history loaded: push from before that write,
      // and remember that the loaded revisions after it came from the server.
      pushSince = Math.min(meta.first_local_seq, seq);
      serverRevs = { ...Object.fromEntries(this.loadedRevs), ...serverRevs };
    }
    this.loadedRevs.clear();
    await this.saveMeta({ initial_done: true, pushed_seq: pushSince, first_local_seq: null,
      server_revs: serverRevs, since: { pull: since, push: pushSince } });
    this.set({ progress: { done: total, received: total, total } });
  }

  /** Write rows as the server has them; documents with attachments or conflicts go via _bulk_get. */
  async store(rows) {
    const plain = [];
    const full = [];
    for (const row of rows) {
      const doc = row.doc;
      if (!doc || row.id.startsWith('_design/')) continue;
      if (doc._attachments || doc._conflicts) {
        for (const rev of [doc._rev, ...(doc._conflicts || [])]) full.push({ id: doc._id, rev });
      } else {
        plain.push(doc);
      }
    }
    if (full.length) {
      const res = await this.remote.bulkGet({ docs: full, revs: true, attachments: true });
      for (const result of res.results) {
        for (const d of result.docs) {
          if (!d.ok) throw new HttpError(500, { reason: `could not read ${result.id}` });
          for (const [name, att] of Object.entries(d.ok._attachments || {})) {
            if (att.stub) {
              d.ok._attachments[name] = { content_type: att.content_type,
                data: await this.remote.getAttachment(d.ok._id, name, { rev: d.ok._rev }) };
            }
          }
          plain.push(d.ok);
        }
      }
    }
    for (const doc of plain) this.loadedRevs.set(doc._id, doc._rev);
    const results = await this.local.bulkDocs({ docs: plain, new_edits: false });
    const failed = results.find((r) => r.error);
    if (failed) throw Object.assign(new Error(failed.reason || failed.error), { status: 500 });
    return plain.length;
  }

  // -- live sync ------------------------------------------------------------------------------

  /** Start (or restart, resetting the backoff) syncing; runs the first sync when needed. */
  async start(onLedger) {
    if (this.starting) return this.starting;
    this.starting = this.begin(onLedger).finally(() => { this.starting = null; });
    return this.starting;
  }

  /** Never rejects: whatever goes wrong ends up in the state the header shows. */
  async begin(onLedger) {
    if (this.closed) return;
    try {
      if (!this.meta) await this.readMeta();
      this.set({ lastSync: this.meta.last_sync, online: navigator.onLine });
      await this.refreshPending();
      this.stopLive();
      if (!navigator.onLine) {
        this.set({ phase: 'offline' });
        this.settle(Object.assign(new Error('offline'), { name: 'offline' }));
        return;
      }
      if (!this.meta.initial_done) await this.initialLoad(onLedger);
      if (!this.closed) this.startLive();
    } catch (err) {
      if (!this.closed) this.fail(err);
    }
  }

  /**
   * Live two-way replication with retry and backoff. Right after the first sync there are no
   * checkpoints yet: `since` sets them, instead of walking all documents once more (a retry
   * inside the same page repeats that `since`, re-checking only what changed after it).
   */
  startLive() {
    const opts = {
      live: true, retry: true, batch_size: 500, batches_limit: 4, back_off_function: backoff,
    };
    const since = this.meta.since || {};
    // Pushes stay under the gateway's body limit (16 MiB) even if every visit carries a
    // 200 KB photo (about 270 KB in base64): 40 of them are about 11 MB.
    const pushOpts = { ...opts, batch_size: 40 };
    const push = PouchDB.replicate(this.local, this.remote,
      since.push === undefined ? pushOpts : { ...pushOpts, since: since.push });
    const pull = PouchDB.replicate(this.remote, this.local,
      since.pull === undefined ? { ...opts } : { ...opts, since: since.pull });
    this.reps = { push, pull };
    this.idle = { push: false, pull: false };
    this.set({ phase: 'syncing', progress: null });
    pull.on('change', (info) => {
      // Revisions written by the pull are on the server by definition.
      const revs = { ...this.meta.server_revs };
      for (const d of info.docs) revs[d._id] = d._rev;
      this.background(this.saveMeta({ server_revs: revs }).then(() => this.refreshPending()));
    });
    push.on('checkpoint', (e) => {
      if ('checkpoint' in e && e.checkpoint > this.meta.pushed_seq) {
        this.background(this.saveMeta({ pushed_seq: e.checkpoint })
          .then(() => this.refreshPending()));
      }
    });
    push.on('denied', (err) => {
      // The refusal names the document, not the revision: it is the one on the phone now.
      this.background(this.local.get(err.id).then((doc) => {
        const denied = { ...this.meta.denied, [err.id]: { rev: doc._rev, reason: err.reason || err.message } };
        return this.saveMeta({ denied });
      }).then(() => this.refreshPending()));
    });
    for (const [direction, rep] of Object.entries(this.reps)) {
      rep.on('active', () => {
        this.idle[direction] = false;
        this.set({ phase: 'syncing' });
      });
      rep.on('paused', (err) => this.paused(direction, err));
      rep.on('error', (err) => this.fail(err));
    }
  }

  async paused(direction, err) {
    if (this.closed) return;
    if (err) {
      this.idle[direction] = false;
      this.fail(err, { retrying: true });
      return;
    }
    this.idle[direction] = true;
    if (this.meta.since?.[direction] !== undefined) {
      // Its checkpoint is written now; later starts read it.
      const rest = { ...this.meta.since };
      delete rest[direction];
      await this.saveMeta({ since: rest });
    }
    const idle = () => this.idle.push && this.idle.pull;
    if (!idle()) return;
    try {
      let missing = await this.verify();
      const stray = () => [...missing].filter((id) => !(id in this.meta.denied));
      if (stray().length && idle()) {
        // The server lacks something the push checkpoint has passed (a write that raced the
        // pause, or a server restored from backup): push exactly those, then ask again.
        await PouchDB.replicate(this.local, this.remote, { doc_ids: stray() });
        missing = await this.verify();
      }
      if (!idle()) return; // work arrived meanwhile; the next pause reports
      if (stray().length) {
        this.fail({ status: 500, reason: `${stray().length} unconfirmed` }, { retrying: true });
        return;
      }
      const lastSync = new Date().toISOString();
      await this.saveMeta({ last_sync: lastSync });
      // Refused documents stay pending and keep the error on screen until they are fixed.
      const refused = missing.size > 0;
      this.set({ phase: refused ? 'error' : 'idle', lastSync,
        error: refused ? { kind: 'refused', count: missing.size } : null });
      this.settle(null);
    } catch (e) {
      this.fail(e, { retrying: true });
    }
  }

  fail(err, { retrying = false } = {}) {
    const kind = classify(err);
    const phase = kind === 'network' && !navigator.onLine ? 'offline' : 'error';
    this.set({ phase, error: { kind, detail: err?.reason || err?.message || String(err), retrying } });
    if (!retrying || kind === 'auth' || kind === 'forbidden') this.stopLive();
    this.settle(err);
  }

  /** Work started from an event: its failure is reported, never left unhandled. */
  background(promise) {
    promise.catch((err) => { if (!this.closed) this.fail(err); });
  }

  /** For good (logout): nothing runs or reports after this. */
  close() {
    this.closed = true;
    deviceStatus.untrack(this);
    this.stopLive();
    this.settle(Object.assign(new Error('closed'), { name: 'closed' }));
  }

  /** Resolve every syncNow() waiting for the outcome of the current attempt. */
  settle(err) {
    deviceStatus.changed(); // an attempt ended, well or not
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) (err ? w.reject(err) : w.resolve(this.state));
  }

  /** Sync at once; resolves when everything is on both sides, rejects with the error otherwise. */
  syncNow() {
    const outcome = new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.start();
    return outcome;
  }

  stopLive() {
    if (this.reps) {
      for (const rep of Object.values(this.reps)) {
        // Cancel first: PouchDB aborts the pull's _changes longpoll from its own 'cancel'
        // listener, which removeAllListeners() removes. Otherwise every restart leaves one
        // request open, and after five the browser's six connections per host are used up.
        rep.cancel();
        rep.removeAllListeners();
      }
      this.reps = null;
    }
  }

  setOnline(online) {
    this.set({ online });
    if (online) this.start();
    else {
      this.stopLive();
      this.set({ phase: 'offline' });
    }
  }
}
