// Logout leaves nothing personal on the phone: every IndexedDB database (each grid's PouchDB
// and anything else), every Cache Storage cache, the service worker, and localStorage.

import { forgetAll } from './profile.js';

function deleteDatabase(name) {
  return new Promise((resolve, reject) => {
    const req = indexedDB.deleteDatabase(name);
    req.onsuccess = () => resolve();
    req.onerror = () => reject(req.error);
    // Another tab still has it open; it is deleted as soon as that tab lets go.
    req.onblocked = () => resolve();
  });
}

/** `stores`: the open GridStores; `syncs`: their GridSyncs. */
export async function wipeDevice(stores, syncs) {
  for (const sync of syncs) sync.close();
  for (const store of stores) {
    await store.close();
    await new globalThis.PouchDB(store.db.name).destroy();
  }
  for (const { name } of await indexedDB.databases()) await deleteDatabase(name);
  for (const key of await caches.keys()) await caches.delete(key);
  const registrations = await navigator.serviceWorker?.getRegistrations() || [];
  for (const r of registrations) await r.unregister();
  forgetAll();
}
