"""Write validation through the gateway: what a worker's device may store, and what it may not.

Each refused document gets its own `{"id", "error": "forbidden", "reason"}` entry while the
rest of the batch lands, as CouchDB does with validate_doc_update.
"""

from __future__ import annotations

import base64
import copy
import uuid
from typing import Any

import httpx
import pytest

from sync import clock
from tests.gateway import factories
from tests.gateway.conftest import World


@pytest.fixture(scope="module")
def w1(world: World) -> httpx.Client:
    return world.login("w1")


def _bulk(client: httpx.Client, db: str, docs: list[dict[str, Any]], new_edits: bool = True
          ) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"docs": docs}
    if not new_edits:
        body["new_edits"] = False
    r = client.post(f"/couch/{db}/_bulk_docs", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def _replicated(doc: dict[str, Any], parent: dict[str, Any] | None = None) -> dict[str, Any]:
    """`doc` as PouchDB pushes it: a new revision (child of `parent`) with its history."""
    out = copy.deepcopy(doc)
    digest = uuid.uuid4().hex
    ids = [digest]
    start = 1
    if parent is not None:
        pos, _, pid = parent["_rev"].partition("-")
        start = int(pos) + 1
        ids.append(pid)
    out["_rev"] = f"{start}-{digest}"
    out["_revisions"] = {"start": start, "ids": ids}
    return out


def test_refused_documents_get_their_own_entry_and_the_rest_lands(world: World,
                                                                  w1: httpx.Client) -> None:
    db, hid, me = world.db("G1"), world.households["G1"], world.names["w1"]
    good = factories.visit("G1", hid, me)
    cases = {
        "author": factories.visit("G1", hid, world.names["w2"]),
        "review": factories.review("G1", hid, me),
        "assignment": factories.assignment("G1", hid, me, me),
        "config": {"_id": "config:tags", "type": "config", "tags": {},
                   "default_frequency_days": 30, "grid": "G1"},
        "design": {"_id": "_design/evil", "views": {}},
        "other grid": factories.visit("G9", world.households["G9"], me),
        "unknown household": factories.visit("G1", "G1-no-such-flat", me),
        "schema": factories.visit("G1", hid, me, outcome="maybe"),
        "new household": factories.household("G1", "G1-9-9-909"),
        "special field": {**factories.visit("G1", hid, me), "_conflicts": ["1-a"]},
    }
    docs = [good, *cases.values()]
    results = _bulk(w1, db, docs)
    assert len(results) == len(docs)
    assert results[0]["ok"] is True and results[0]["id"] == good["_id"]
    reasons = {}
    for (name, doc), result in zip(cases.items(), results[1:], strict=True):
        assert result["error"] == "forbidden", (name, result)
        assert result["id"] == doc["_id"], (name, result)
        assert result["reason"], name
        reasons[name] = result["reason"]
        if name != "config":  # config:tags exists (provisioned); it must not have changed
            assert world.couch.get(db, doc["_id"]) is None, name
    assert "author" in reasons["author"]
    assert "outcome" in reasons["schema"]
    assert "not in grid" in reasons["unknown household"]
    assert "G9" in reasons["other grid"]
    assert world.couch.get(db, "config:tags")["tags"]  # untouched
    assert world.couch.get(db, good["_id"])["author"] == me


def test_replicated_writes_keep_their_revisions(world: World, w1: httpx.Client) -> None:
    db, hid, me = world.db("G1"), world.households["G1"], world.names["w1"]
    good = _replicated(factories.visit("G1", hid, me))
    bad = _replicated(factories.visit("G1", hid, "someone-else"))
    results = _bulk(w1, db, [good, bad], new_edits=False)
    assert results == [{"id": bad["_id"], "error": "forbidden",
                        "reason": f"author must be the signed-in user ({me})"}]
    assert world.couch.get(db, good["_id"])["_rev"] == good["_rev"]
    assert world.couch.get(db, bad["_id"]) is None
    # the same revision sent again (a lost checkpoint) is accepted and changes nothing
    assert _bulk(w1, db, [good], new_edits=False) == []


def test_a_synced_visit_never_changes_and_is_never_deleted(world: World,
                                                           w1: httpx.Client) -> None:
    db, hid, me = world.db("G1"), world.households["G1"], world.names["w1"]
    first = _replicated(factories.visit("G1", hid, me))
    assert _bulk(w1, db, [first], new_edits=False) == []
    changed = _replicated({**first, "notes": "改过了"}, parent=first)
    moved = _replicated({**first, "household": world.households["G2"]}, parent=first)
    deleted = _replicated({"_id": first["_id"], "_deleted": True}, parent=first)
    results = {r["id"] + r["reason"][:20]: r for r in
               _bulk(w1, db, [changed, moved, deleted], new_edits=False)}
    assert len(results) == 3
    reasons = " | ".join(r["reason"] for r in results.values())
    assert "never changes" in reasons
    assert "household cannot change" in reasons
    assert "never deleted" in reasons
    assert world.couch.get(db, first["_id"])["_rev"] == first["_rev"]


def test_a_draft_deleted_before_it_synced_may_arrive_as_a_tombstone(world: World,
                                                                    w1: httpx.Client) -> None:
    db = world.db("G1")
    tombstone = _replicated({"_id": f"visit:{uuid.uuid4()}", "_deleted": True})
    assert _bulk(w1, db, [tombstone], new_edits=False) == []
    household_tombstone = _replicated({"_id": f"household:{world.households['G1']}",
                                       "_deleted": True}, parent=world.couch.get(
                                           db, f"household:{world.households['G1']}"))
    [result] = _bulk(w1, db, [household_tombstone], new_edits=False)
    assert "never deleted" in result["reason"]


def _fresh_household(world: World, grid: str = "G1", **fields: Any) -> dict[str, Any]:
    hid = f"{grid}-{uuid.uuid4().hex[:6]}"
    doc = factories.household(grid, hid, **fields)
    world.couch.put(world.db(grid), doc)
    return doc


def test_household_edit_stamped_by_the_user_is_stored_and_audited(world: World,
                                                                  w1: httpx.Client) -> None:
    db, me = world.db("G1"), world.names["w1"]
    stored = _fresh_household(world)
    visit = _replicated(factories.visit("G1", stored["household_id"], me, ledger_changes=[
        {"path": "phone", "old": "", "new": "13800138000"}]))
    edit = _replicated(factories.edited(stored, "phone", "13800138000", me), parent=stored)
    assert _bulk(w1, db, [visit, edit], new_edits=False) == []
    assert world.couch.get(db, stored["_id"])["phone"] == "13800138000"
    rows = world.couch.view(db, "grid", "audit_by_household",
                            startkey=[stored["household_id"]],
                            endkey=[stored["household_id"], {}], include_docs=True)["rows"]
    assert len(rows) == 1
    record = rows[0]["doc"]
    assert record["source"] == "edit" and record["author"] == me
    assert record["changes"] == [{"path": "phone", "old": "", "new": "13800138000"}]
    assert record["visit"] == visit["_id"] and record["device"] == "dev-test"


def test_household_edits_that_are_not_the_users_own_are_refused(world: World,
                                                                w1: httpx.Client) -> None:
    db, me = world.db("G1"), world.names["w1"]
    stored = _fresh_household(world)
    cases = {
        "stamped by someone else": factories.edited(stored, "phone", "13800138000",
                                                    world.names["w2"]),
        "unstamped": {**stored, "note": "悄悄改了"},
        "member unstamped": {**stored, "members": {"m1": {**stored["members"]["m1"],
                                                           "name": "王秀兰"}}},
        "household_id": {**factories.edited(stored, "note", "x", me), "household_id": "G1-x"},
        "grid": {**factories.edited(stored, "note", "x", me), "grid": "G2"},
        "created_at": {**factories.edited(stored, "note", "x", me),
                       "created_at": "2020-01-01T00:00:00Z"},
        "moved_to": {**factories.edited(stored, "note", "x", me), "moved_to": "G2"},
    }
    docs = [_replicated(d, parent=stored) for d in cases.values()]
    results = _bulk(w1, db, docs, new_edits=False)
    assert len(results) == len(cases)
    for name, result in zip(cases, results, strict=True):
        assert result["error"] == "forbidden", name
    reasons = [r["reason"] for r in results]
    assert "stamped by" in reasons[0] and "without a new clock stamp" in reasons[1]
    assert "members.m1.name" in reasons[2]
    assert "household_id" in reasons[3] and "G2" in reasons[4]
    assert "created_at cannot change" in reasons[5] and "moved_to cannot change" in reasons[6]
    assert world.couch.get(db, stored["_id"])["_rev"] == stored["_rev"]


def test_a_branch_that_predates_the_servers_edit_is_accepted(world: World,
                                                             w1: httpx.Client) -> None:
    """Offline for a week: the device edits `note` while the office changed `phone`."""
    db, me = world.db("G1"), world.names["w1"]
    original = _fresh_household(world)
    office = factories.edited(original, "phone", "13900139000", "office-user", "console")
    office = _replicated(office, parent=original)
    world.couch.bulk_docs(db, [office], new_edits=False)
    mine = _replicated(factories.edited(original, "note", "老人独居，需关注", me),
                       parent=original)
    assert _bulk(w1, db, [mine], new_edits=False) == []
    leaves = world.couch.get(db, original["_id"], open_revs="all")
    assert {leaf["ok"]["_rev"] for leaf in leaves} == {office["_rev"], mine["_rev"]}


def test_need_events_follow_the_workers_part_of_the_loop(world: World,
                                                         w1: httpx.Client) -> None:
    db, hid, me = world.db("G1"), world.households["G1"], world.names["w1"]
    raised = factories.need_event("G1", hid, me, "raised")
    dispatched = factories.need_event("G1", hid, me, "dispatched")
    closed = factories.need_event("G1", hid, me, "closed")
    results = _bulk(w1, db, [raised, dispatched, closed])
    assert results[0]["ok"] is True
    assert [r.get("error") for r in results[1:]] == ["forbidden", "forbidden"]
    assert "dispatched" in results[1]["reason"]


def test_document_put_is_validated_like_a_batch(world: World, w1: httpx.Client) -> None:
    db, hid, me = world.db("G1"), world.households["G1"], world.names["w1"]
    good = factories.visit("G1", hid, me)
    r = w1.put(f"/couch/{db}/{good['_id']}", json=good)
    assert r.status_code == 201 and r.json()["ok"] is True
    bad = factories.visit("G1", hid, me, visit_type="party")
    r = w1.put(f"/couch/{db}/{bad['_id']}", json=bad)
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden" and "visit_type" in r.json()["reason"]
    r = w1.put(f"/couch/{db}/visit:other-id", json=factories.visit("G1", hid, me))
    assert r.status_code == 400
    replicated = _replicated(factories.visit("G1", hid, me))
    r = w1.put(f"/couch/{db}/{replicated['_id']}?new_edits=false", json=replicated)
    assert r.status_code == 201
    assert world.couch.get(db, replicated["_id"])["_rev"] == replicated["_rev"]


def _photo(size: int) -> str:
    return base64.b64encode(b"\xff\xd8\xff" + b"\0" * (size - 3)).decode()


def test_photos_are_the_only_attachments(world: World, w1: httpx.Client) -> None:
    db, hid, me = world.db("G1"), world.households["G1"], world.names["w1"]

    def with_att(doc: dict[str, Any], name: str = "photo.jpg", data: str = _photo(50_000),
                 content_type: str = "image/jpeg") -> dict[str, Any]:
        return {**doc, "_attachments": {name: {"content_type": content_type, "data": data}}}

    photo = with_att(factories.visit("G1", hid, me))
    docs = [
        photo,
        with_att(factories.visit("G1", hid, me), data=_photo(200 * 1024 + 1)),
        with_att(factories.visit("G1", hid, me), content_type="image/png"),
        with_att(factories.visit("G1", hid, me), name="notes.txt"),
        with_att(factories.need_event("G1", hid, me)),
        with_att(factories.visit("G1", hid, me), data="not base64!"),
        {**factories.visit("G1", hid, me),
         "_attachments": {"photo.jpg": {"stub": True, "digest": "md5-x", "length": 3}}},
    ]
    results = _bulk(w1, db, docs)
    assert results[0]["ok"] is True
    assert all(r.get("error") == "forbidden" for r in results[1:]), results
    reasons = [r["reason"] for r in results[1:]]
    assert "200 KB" in reasons[0] and "JPEG" in reasons[1] and "photo.jpg" in reasons[2]
    assert "only a visit" in reasons[3] and "base64" in reasons[4] and "stub" in reasons[5]
    r = w1.get(f"/couch/{db}/{photo['_id']}/photo.jpg")
    assert r.status_code == 200 and r.content == base64.b64decode(photo["_attachments"][
        "photo.jpg"]["data"])


def test_malformed_batches_are_refused_whole(world: World, w1: httpx.Client) -> None:
    db = world.db("G1")
    for body, status in [
        (b'{"docs": 5}', 400),
        (b'{"docs": [], "all_or_nothing": true}', 400),
        (b'{"docs": [], "new_edits": "no"}', 400),
        (b'{"docs": [{"_id": "visit:a", "type": "visit", "type": "household"}]}', 400),
        (b'{"docs": [{"a": NaN}]}', 400),
        (b"[" * 100_000, 400),
        (b"not json", 400),
    ]:
        r = w1.post(f"/couch/{db}/_bulk_docs", content=body,
                    headers={"Content-Type": "application/json"})
        assert r.status_code == status, (body[:40], r.text)
        assert r.json()["error"] == "bad_request"
    r = w1.post(f"/couch/{db}/_bulk_docs", content=b'{"docs": []}',
                headers={"Content-Type": "text/plain"})
    assert r.status_code == 415


def test_household_stamps_use_the_clock_module_paths(world: World, w1: httpx.Client) -> None:
    """A new member added on the phone: every field stamped by the user is accepted."""
    db, me = world.db("G1"), world.names["w1"]
    stored = _fresh_household(world)
    added = clock.add_member(stored, "m2", {"name": "李明", "relation": "子",
                                            "status": "present"}, me, "dev-test",
                             factories.AT)
    assert _bulk(w1, db, [_replicated(added, parent=stored)], new_edits=False) == []
    assert world.couch.get(db, stored["_id"])["members"]["m2"]["name"] == "李明"
