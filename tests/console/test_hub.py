"""The hub copy: every grid's documents, their revisions, deletions and conflicts, and how
fresh the copy is, on the real embedded CouchDB."""

from __future__ import annotations

import base64

from sync import naming
from sync.couch import Couch
from sync.hub import Hub
from tests.console.docs_factory import household, visit, write


def hub_doc(couch: Couch, doc_id: str, **params: str) -> dict | None:
    return couch.get(couch.name(naming.HUB), doc_id, **params)


def test_copies_each_grid_without_design_documents_or_photos(couch: Couch, community) -> None:
    h1 = household("G1", "G1-1-1-101")
    v = visit("G1", "G1-1-1-101", "2026-11-20T02:00:00Z")
    v["_attachments"] = {"photo.jpg": {"content_type": "image/jpeg",
                                       "data": base64.b64encode(b"\xff\xd8photo").decode()}}
    write(couch, "G1", h1, v)
    write(couch, "G2", household("G2", "G2-1-1-101"))
    hub = Hub(couch)

    results = hub.copy_all(["G1", "G2"])

    assert [r.copied for r in results] == [3, 2]  # + each grid's config:tags
    assert hub_doc(couch, "household:G1-1-1-101")["_rev"] == h1["_rev"]
    copied = hub_doc(couch, v["_id"])
    assert copied["_rev"] == v["_rev"] and "_attachments" not in copied
    assert hub_doc(couch, "_design/grid") is None
    assert set(couch.get(couch.name(naming.HUB), "_design/hub")["views"]) >= {"grid_rows"}


def test_second_copy_reads_only_what_changed(couch: Couch, community) -> None:
    write(couch, "G1", household("G1", "G1-1-1-101"))
    hub = Hub(couch)
    first = hub.copy_grid("G1")
    assert hub.copy_grid("G1").copied == 0
    write(couch, "G1", visit("G1", "G1-1-1-101", "2026-11-20T02:00:00Z"))
    second = hub.copy_grid("G1")
    assert second.copied == 1
    assert second.checkpoint.version != first.checkpoint.version


def test_deletions_and_conflicting_revisions_arrive_as_they_are(couch: Couch, community) -> None:
    db = naming.grid_db_name("G1", couch.prefix)
    (h,) = write(couch, "G1", household("G1", "G1-1-1-101"))
    base = h["_rev"].split("-")[1]
    for rid, phone in (("aaa", "13800000001"), ("bbb", "13800000002")):
        couch.bulk_docs(db, [{**h, "phone": phone, "_rev": f"2-{rid}",
                              "_revisions": {"start": 2, "ids": [rid, base]}}], new_edits=False)
    hub = Hub(couch)
    hub.copy_grid("G1")
    in_hub = hub_doc(couch, "household:G1-1-1-101", conflicts="true")
    assert in_hub["_rev"] == "2-bbb" and in_hub["_conflicts"] == ["2-aaa"]

    couch.put(db, {"_id": h["_id"], "_rev": "2-bbb", "_deleted": True, "moved_to": "G2"})
    couch.put(db, {"_id": h["_id"], "_rev": "2-aaa", "_deleted": True, "moved_to": "G2"})
    hub.copy_grid("G1")
    assert hub_doc(couch, "household:G1-1-1-101") is None
    status, body = couch.request("GET", f"{couch.name(naming.HUB)}/household:G1-1-1-101",
                                 params={"open_revs": "all"})
    assert status == 200 and all(leaf["ok"]["_deleted"] for leaf in body)
    assert {leaf["ok"]["moved_to"] for leaf in body} == {"G2"}


def test_data_as_of_is_the_oldest_copy_of_the_grids_asked_about(couch: Couch, community) -> None:
    hub = Hub(couch)
    assert Hub.as_of(hub.status().values()) is None
    hub.copy_grid("G1")
    hub.copy_grid("G2")
    status = hub.status()
    assert set(status) == {"G1", "G2"}
    oldest = min(status["G1"].as_of, status["G2"].as_of)
    assert Hub.as_of([status["G1"], status["G2"]]) == oldest
    assert Hub.as_of([status["G1"], hub.checkpoint("G9")]) is None  # G9 never copied


def test_what_the_hub_last_received_from_each_worker(couch: Couch, community) -> None:
    write(couch, "G1", household("G1", "G1-1-1-101"),
          visit("G1", "G1-1-1-101", "2026-11-01T02:00:00Z", author="w1", app_version="0.1.0"))
    hub = Hub(couch)
    hub.copy_grid("G1")
    first = hub.workers()["w1"]
    assert first == type(first)("2026-11-01T02:00:00Z", "0.1.0")  # history: its own time
    write(couch, "G1",
          visit("G1", "G1-1-1-101", "2026-11-02T02:00:00Z", author="w1", app_version="0.2.0"))
    result = hub.copy_grid("G1")
    later = hub.workers()["w1"]
    assert later.app_version == "0.2.0"
    assert later.received_at == result.checkpoint.as_of  # arrived during this copy
