"""PouchDB 9 in a real Chromium replicating through the gateway, as the field app does.

The page is the server's own /login page (same origin, so the session cookie from
/api/login rides along); PouchDB is loaded from node_modules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from sync import naming
from tests.conftest import wait_for
from tests.gateway import factories
from tests.gateway.conftest import PASSWORD, World

POUCHDB = Path(__file__).resolve().parents[2] / "node_modules/pouchdb/dist/pouchdb.min.js"


def _page(browser: Any, world: World, key: str | None) -> Page:
    # bypass_csp: the test injects PouchDB as an inline script; the app loads it from /vendor
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.goto(world.server.url + "/login")
    page.add_script_tag(path=str(POUCHDB))
    if key:
        r = page.request.post(world.server.url + "/api/login",
                              data={"name": world.names[key], "password": PASSWORD})
        assert r.status == 200, r.text()
    return page


def test_a_worker_replicates_a_grid_both_ways_with_live_sync(browser: Any, world: World) -> None:
    db, me, hid = world.db("G1"), world.names["w1"], world.households["G1"]
    seeded = [factories.household("G1", f"G1-B{i:03d}") for i in range(150)]
    world.couch.bulk_docs(db, seeded)
    page = _page(browser, world, "w1")
    page.evaluate("""([db]) => {
        window.local = new PouchDB('grid-g1');
        window.denied = [];
        window.errors = [];
        window.sync = local.sync(new PouchDB(location.origin + '/couch/' + db),
                                 {live: true, retry: true})
            .on('denied', e => denied.push({direction: e.direction, id: e.doc.id,
                                               name: e.doc.name, reason: e.doc.reason,
                                               message: e.doc.message}))
            .on('error', e => errors.push(String(e && (e.status || e.message || e))));
    }""", [db])
    server_count = len(world.couch.all_docs(db))
    wait_for(lambda: page.evaluate("local.info().then(i => i.doc_count)") >= server_count,
             what="the first pull")
    assert page.evaluate("local.get('household:G1-B149').then(d => d.grid)") == "G1"

    # recorded on the phone → on the server, validated
    visit = factories.visit("G1", hid, me)
    page.evaluate("doc => local.put(doc)", visit)
    stored = wait_for(lambda: world.couch.get(db, visit["_id"]), what="the visit on the server")
    assert stored["author"] == me

    # changed on the server → on the phone, live
    office = factories.need_event("G1", hid, world.names["sup1"], "dispatched")
    world.couch.put(db, office)
    wait_for(lambda: page.evaluate(f"local.get('{office['_id']}').then(() => true, () => false)"),
             what="the office's need event on the phone")

    # a document the worker may not write: refused alone, reported, the rest keeps flowing
    forged = factories.visit("G1", hid, world.names["w2"])
    second = factories.visit("G1", hid, me)
    page.evaluate("docs => local.bulkDocs(docs)", [forged, second])
    wait_for(lambda: world.couch.get(db, second["_id"]), what="the visit after the refused one")
    denied = wait_for(lambda: page.evaluate("denied"), what="the denied event")
    assert denied[0]["direction"] == "push" and denied[0]["id"] == forged["_id"]
    assert denied[0]["name"] == "forbidden"
    assert "author" in denied[0]["reason"]
    assert world.couch.get(db, forged["_id"]) is None
    assert page.evaluate("errors") == []
    page.evaluate("sync.cancel()")
    page.context.close()


def test_replication_of_a_foreign_grid_fails_cleanly_in_the_app(browser: Any,
                                                                world: World) -> None:
    page = _page(browser, world, "w1")
    result = page.evaluate("""([db]) => new PouchDB('foreign')
        .replicate.from(new PouchDB(location.origin + '/couch/' + db))
        .then(() => ({ok: true}), e => ({status: e.status, error: e.error,
                                          reason: e.reason}))""", [world.db("G9")])
    assert result["status"] == 403 and result["error"] == "forbidden"
    assert "not one of your grid databases" in result["reason"]
    page.context.close()

    anonymous = _page(browser, world, None)
    result = anonymous.evaluate("""([db]) => new PouchDB('anon')
        .replicate.from(new PouchDB(location.origin + '/couch/' + db))
        .then(() => ({ok: true}), e => ({status: e.status, error: e.error}))""",
                                [world.db("G1")])
    assert result == {"status": 401, "error": "unauthorized"}
    anonymous.context.close()


def test_a_supervisor_replicates_read_only(browser: Any, world: World) -> None:
    page = _page(browser, world, "sup1")
    db = world.db("G2")
    result = page.evaluate("""async ([db]) => {
        const local = new PouchDB('sup-g2');
        const remote = new PouchDB(location.origin + '/couch/' + db);
        const pulled = await local.replicate.from(remote);
        await local.put({_id: 'visit:from-supervisor', type: 'visit'});
        const pushed = await local.replicate.to(remote).then(
            () => ({ok: true}), e => ({status: e.status, error: e.error}));
        return {read: pulled.docs_written, pushed};
    }""", [db])
    assert result["read"] == len(world.couch.all_docs(db))
    assert result["pushed"] == {"status": 403, "error": "forbidden"}
    assert world.couch.get(db, "visit:from-supervisor") is None
    sessions = naming.system_db(naming.SESSIONS, world.couch.prefix)
    assert world.couch.view(sessions, "sessions", "by_user", key=world.names["sup1"])["rows"]
    page.context.close()
