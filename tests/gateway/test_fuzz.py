"""Property-based fuzzing of what a device can send: never a 500, never a crashed CouchDB,
never an invalid or foreign document stored.

Documents start from valid ones of every kind (own grid, other grid, other author, types a
worker may not write) and are then mutated: fields replaced by arbitrary JSON, removed or
added, CouchDB's special fields set to anything, text with broken Unicode, replicated or not.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync import schema
from tests.conftest import CouchServer
from tests.gateway import factories
from tests.gateway.conftest import World

FUZZ = settings(max_examples=120, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20), st.sampled_from(["\ud800", "a\udfffb", "", "_local/x", "1-abc",
                                           "G9", "2026-11-20T09:12:00Z", "photo.jpg"]),
)
json_values = st.recursive(
    leaves, lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10)
revs = st.one_of(st.builds(lambda n, h: f"{n}-{h}", st.integers(0, 12),
                           st.text("0123456789abcdef", min_size=0, max_size=33)), json_values)
specials = st.fixed_dictionaries({}, optional={
    "_rev": revs,
    "_revisions": st.one_of(json_values, st.fixed_dictionaries(
        {"start": st.one_of(st.integers(-2, 5), json_values),
         "ids": st.lists(st.text("0123456789abcdef", max_size=32), max_size=3)})),
    "_deleted": st.one_of(st.booleans(), json_values),
    "_attachments": st.one_of(json_values, st.dictionaries(
        st.sampled_from(["photo.jpg", "x.txt"]),
        st.fixed_dictionaries({}, optional={
            "content_type": st.sampled_from(["image/jpeg", "image/png"]),
            "data": st.sampled_from(["/9j/4AAQ", "!!!", "", "A" * 400_000]),
            "stub": st.booleans(), "follows": st.booleans(), "length": st.integers()}),
        max_size=2)),
    "_conflicts": json_values, "_whatever": json_values,
})


def _bases(world: World) -> list[dict[str, Any]]:
    me, hid = world.names["w1"], world.households["G1"]
    stored = world.couch.get(world.db("G1"), f"household:{hid}")
    return [
        factories.visit("G1", hid, me),
        factories.visit("G1", hid, world.names["w2"]),
        factories.visit("G9", world.households["G9"], me),
        factories.need_event("G1", hid, me),
        factories.review("G1", hid, me),
        factories.edited(stored, "phone", "13800138000", me),
        factories.edited(stored, "note", "x", "someone-else"),
        factories.household("G1", "G1-new-flat"),
        {"_id": "_design/evil", "views": {}},
        {"_id": "config:tags", "type": "config", "tags": {}, "default_frequency_days": 9},
    ]


@st.composite
def documents(draw: st.DrawFn, bases: list[dict[str, Any]]) -> Any:
    if draw(st.integers(0, 19)) == 0:
        return draw(json_values)  # not even an object, sometimes
    doc = json.loads(json.dumps(draw(st.sampled_from(bases))))
    doc["_id"] = doc["_id"] if draw(st.booleans()) else (
        doc["_id"].split(":")[0] + ":" + uuid.uuid4().hex)
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["set", "drop", "add", "nest"]))
        keys = [k for k in doc if not k.startswith("_")]
        if action == "set" and keys:
            doc[draw(st.sampled_from(keys))] = draw(json_values)
        elif action == "drop" and keys:
            doc.pop(draw(st.sampled_from(keys)))
        elif action == "add":
            doc[draw(st.text(max_size=8))] = draw(json_values)
        elif action == "nest" and isinstance(doc.get("members"), dict):
            doc["members"][draw(st.text(max_size=6))] = draw(json_values)
    doc.update(draw(specials))
    return doc


def _send(client: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    # ensure_ascii keeps lone surrogates as valid \\ud800 escapes, as a browser may send them
    return client.request(method, path, content=json.dumps(body).encode(),
                          headers={"Content-Type": "application/json"})


def _assert_clean(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:300])
    body = r.json()
    if r.status_code >= 400:
        assert isinstance(body.get("error"), str) and isinstance(body.get("reason"), str)


@pytest.fixture(scope="module")
def w1(world: World) -> httpx.Client:
    return world.login("w1")


@pytest.fixture(scope="module")
def fuzz_bases(world: World) -> list[dict[str, Any]]:
    return _bases(world)


def test_bulk_docs_never_fails_and_never_stores_bad_documents(
        world: World, w1: httpx.Client, fuzz_bases: list[dict[str, Any]],
        couch_server: CouchServer) -> None:
    restarts = couch_server.embedded.restarts
    db = world.db("G1")

    @FUZZ
    @given(docs=st.lists(documents(fuzz_bases), max_size=6), new_edits=st.booleans(),
           extra=st.one_of(st.none(), json_values))
    def run(docs: list[Any], new_edits: bool, extra: Any) -> None:
        body: Any = {"docs": docs, "new_edits": new_edits}
        if extra is not None:
            body = extra if isinstance(extra, list) else {**body, "extra": extra}
        r = _send(w1, "POST", f"/couch/{db}/_bulk_docs", body)
        _assert_clean(r)
        if r.status_code == 201:
            results = r.json()
            assert all(set(x) in ({"ok", "id", "rev"}, {"id", "error", "reason"})
                       for x in results), results

    run()
    _assert_only_valid_documents(world)
    assert couch_server.embedded.restarts == restarts


def test_document_put_never_fails_and_never_stores_bad_documents(
        world: World, w1: httpx.Client, fuzz_bases: list[dict[str, Any]],
        couch_server: CouchServer) -> None:
    restarts = couch_server.embedded.restarts
    db = world.db("G1")

    @FUZZ
    @given(doc=documents(fuzz_bases), path_id=st.one_of(st.none(), st.text(max_size=12)),
           query=st.sampled_from(["", "?new_edits=false", "?new_edits=true", "?rev=1-a",
                                  "?new_edits=maybe", "?batch=ok"]))
    def run(doc: Any, path_id: str | None, query: str) -> None:
        doc_id = path_id if path_id is not None else (
            doc.get("_id") if isinstance(doc, dict) and isinstance(doc.get("_id"), str) else "x")
        r = _send(w1, "PUT", f"/couch/{db}/{quote(doc_id, safe='') or 'x'}{query}", doc)
        _assert_clean(r)

    run()
    _assert_only_valid_documents(world)
    assert couch_server.embedded.restarts == restarts


segments = st.sampled_from(["_changes", "_bulk_get", "_all_docs", "_local", "_design", "grid",
                            "_view", "by_type", "_revs_diff", "x", "", "..", "%2F", "_find",
                            "photo.jpg", "visit:1", "_security"])
params = st.lists(st.tuples(st.sampled_from(
    ["since", "limit", "feed", "heartbeat", "filter", "include_docs", "keys", "key", "style",
     "open_revs", "rev", "revs", "doc_ids", "selector", "view", "startkey", "x"]),
    st.one_of(st.sampled_from(["0", "now", "true", "-1", "longpoll", "normal", "_selector",
                               "_view", '["a"]', '"a"', "[", "all", "1-a", "99999999999999"]),
              st.text(max_size=8))), max_size=3)


def test_any_request_to_a_readable_grid_is_answered_cleanly(
        world: World, w1: httpx.Client, couch_server: CouchServer) -> None:
    restarts = couch_server.embedded.restarts
    db = world.db("G1")

    @FUZZ
    @given(method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "COPY", "PATCH"]),
           path=st.lists(segments, max_size=3), query=params,
           body=st.one_of(st.none(), json_values))
    def run(method: str, path: list[str], query: list[tuple[str, str]], body: Any) -> None:
        url = f"/couch/{db}/" + "/".join(path)
        # never wait on a feed that only ends when something changes
        query = [(k, v) for k, v in query if k != "feed"] + [("feed", "normal")]
        r = w1.request(method, url, params=query, timeout=30,
                       content=None if body is None else json.dumps(body).encode(),
                       headers={"Content-Type": "application/json"})
        assert r.status_code < 500, (method, url, query, r.status_code, r.text[:200])

    run()
    assert couch_server.embedded.restarts == restarts


def _assert_only_valid_documents(world: World) -> None:
    me = world.names["w1"]
    rows = world.couch.all_docs(world.db("G1"), include_docs=True)
    for row in rows:
        doc = row["doc"]
        if doc["_id"].startswith("_design/") or doc["_id"] == "config:tags":
            assert doc == world.couch.get(world.db("G1"), doc["_id"])
            continue
        schema.validate(doc)
        assert doc["grid"] == "G1", doc
        if doc["type"] in ("visit", "need_event", "audit"):  # audit: of this user's edits
            assert doc["author"] == me, doc
        assert doc["type"] in ("visit", "need_event", "household", "audit"), doc
        if doc["type"] == "audit":
            assert doc["source"] in ("create", "edit") and doc["changes"], doc
    for grid in ("G2", "G9"):  # nothing from a G1 session lands in other grids
        other = world.couch.all_docs(world.db(grid))
        assert {r["id"] for r in other} <= {"_design/grid", "config:tags",
                                            f"household:{world.households[grid]}"}
