// One grid on the phone: its PouchDB (IndexedDB) and the index the screens read.
// Every save goes to IndexedDB first and returns as soon as it is stored; sync is separate.

import { appVersionNow } from './device-status.js';
import { localDay } from './due.js';
import { applyEdits, nowIso } from './ledger.js';
import { buildIndex } from './model.js';
import { correctedVisit, newVisit, raisedEvents } from './visits.js';

const PouchDB = globalThis.PouchDB;

export function localDbName(serverDb) {
  return `doorstep_${serverDb}`;
}

export class GridStore extends EventTarget {
  /** `grid`: {id, name, db} from /api/me; `who`: {user, device}. */
  constructor(grid, who) {
    super();
    this.grid = grid;
    this.who = who;
    this.sync = null; // the GridSync that carries this database to the server
    this.db = new PouchDB(localDbName(grid.db), { auto_compaction: true });
    this.docs = new Map();
    this.index = buildIndex([], localDay(new Date()));
    this.feed = null;
    this.rebuildTimer = null;
  }

  /** Read every local document into memory and follow later changes. */
  async load() {
    // Follow changes from the sequence read before the snapshot, so none falls in between.
    const seq = (await this.db.info()).update_seq;
    const res = await this.db.allDocs({ include_docs: true, conflicts: true });
    performance.mark('doorstep:data-read');
    this.docs = new Map(res.rows.filter((r) => !r.id.startsWith('_design/'))
      .map((r) => [r.id, r.doc]));
    this.rebuild();
    if (!this.feed) {
      this.feed = this.db.changes({ live: true, since: seq, include_docs: true, conflicts: true })
        .on('change', (c) => {
          if (c.id.startsWith('_design/')) return;
          if (c.deleted) this.docs.delete(c.id);
          else this.docs.set(c.id, c.doc);
          this.scheduleRebuild();
        })
        // Only closing the database (logout) ends it; the next load() follows changes again.
        .on('error', () => { this.feed = null; });
    }
  }

  /** The list can be shown: the ledger is here (or the first sync found the grid empty). */
  get ready() {
    return this.index.households.size > 0 || Boolean(this.sync?.meta?.initial_done);
  }

  rebuild() {
    clearTimeout(this.rebuildTimer);
    this.rebuildTimer = null;
    this.index = buildIndex(this.docs.values(), localDay(new Date()));
    performance.mark('doorstep:index-built');
    this.dispatchEvent(new Event('change'));
  }

  /** Sync brings documents in bursts: rebuild once per burst, not once per document. */
  scheduleRebuild() {
    if (!this.rebuildTimer) this.rebuildTimer = setTimeout(() => this.rebuild(), 150);
  }

  stamp() {
    return { device: this.who.device, user: this.who.user, at: nowIso() };
  }

  /**
   * Record a visit: the visit, its need events and the household's ledger edits in one
   * IndexedDB write. `photo`: a JPEG Blob or null.
   */
  async saveVisit({ householdId, form, edits = [], photo = null, amends = null, assignment = null }) {
    const visit = newVisit({ grid: this.grid.id, household: householdId, who: this.who, form,
      appVersion: appVersionNow(), amends, assignment });
    return this.write(visit, edits, photo, visit.needs.map((n) => n.need_id));
  }

  /** Correct a visit the server has not received yet (same document, new revision). */
  async correctVisit(visitId, { form, edits = [], photo = null }) {
    if (!this.isUnsynced(visitId)) {
      throw new Error('synced visits can only be amended');
    }
    const current = await this.db.get(visitId);
    const visit = correctedVisit(current, form);
    const known = new Set((current.needs || []).map((n) => n.need_id));
    return this.write(visit, edits, photo, visit.needs.filter((n) => !known.has(n.need_id))
      .map((n) => n.need_id));
  }

  /**
   * Add a household found at a door (its first revision, from new-household.js). Resolves
   * 'added', or, writing nothing: 'exists' when the phone has that id, 'moved' when it was
   * moved away (the server never brings a moved household back under its old id).
   */
  async addHousehold(doc) {
    const there = await this.db.get(doc._id).catch((err) => err);
    if (there._id) return 'exists';
    if (there.reason === 'deleted') return 'moved';
    await this.sync.beforeLocalWrite();
    const { rev } = await this.db.put(doc);
    this.docs.set(doc._id, { ...doc, _rev: rev });
    this.rebuild();
    await this.sync.afterLocalWrite();
    return 'added';
  }

  /** True while the server has not confirmed the document: it may still be corrected. */
  isUnsynced(id) {
    return this.sync.state.pending.ids.has(id);
  }

  async write(visit, edits, photo, newNeedIds) {
    await this.sync.beforeLocalWrite();
    const docs = [];
    let household = null;
    if (edits.length) {
      const current = await this.db.get(`household:${visit.household}`);
      const { doc, changes } = applyEdits(current, edits, this.stamp());
      if (changes.length) {
        household = doc;
        visit.ledger_changes = [...(visit.ledger_changes || []), ...changes];
        docs.push(doc);
      }
    }
    if (photo) visit._attachments = { 'photo.jpg': { content_type: 'image/jpeg', data: photo } };
    docs.push(visit, ...raisedEvents(visit, newNeedIds));
    const results = await this.db.bulkDocs(docs);
    const bad = results.find((r) => r.error);
    if (bad && household && bad.id === household._id && bad.status === 409) {
      // The household changed under us (a pull landed): apply the edits to the new revision.
      const fresh = await this.db.get(household._id);
      await this.db.put(applyEdits(fresh, edits, this.stamp()).doc);
    } else if (bad) {
      throw Object.assign(new Error(bad.reason || bad.message || bad.error), { status: bad.status });
    }
    docs.forEach((d, i) => {
      if (results[i].ok) this.docs.set(d._id, { ...d, _rev: results[i].rev });
    });
    this.rebuild();
    await this.sync.afterLocalWrite();
    return visit._id;
  }

  async photoUrl(visitId) {
    const blob = await this.db.getAttachment(visitId, 'photo.jpg').catch(() => null);
    return blob ? URL.createObjectURL(blob) : null;
  }

  async close() {
    clearTimeout(this.rebuildTimer);
    this.feed?.cancel();
    this.feed = null;
    await this.db.close();
  }
}
