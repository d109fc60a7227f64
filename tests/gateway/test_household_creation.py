"""A worker adds a household found at a door, through the gateway: in her own grid, under
the id its address gives, every field stamped by her, audited as her edit; nothing else."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx
import pytest

from sync import clock
from tests.gateway import factories
from tests.gateway.conftest import World
from tests.gateway.households import AT, found_at_door, replicated


@pytest.fixture(scope="module")
def w1(world: World) -> httpx.Client:
    return world.login("w1")


def push(client: httpx.Client, db: str, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    r = client.post(f"/couch/{db}/_bulk_docs", json={"docs": docs, "new_edits": False})
    assert r.status_code == 201, r.text
    return r.json()


def room() -> str:
    return str(uuid.uuid4().int % 9000 + 1000)


def test_a_worker_adds_a_household_in_her_grid_and_it_is_audited_as_hers(
        world: World, w1: httpx.Client) -> None:
    db, me = world.db("G1"), world.names["w1"]
    doc = replicated(found_at_door("G1", me, room()))
    assert push(w1, db, [doc]) == []
    stored = world.couch.get(db, doc["_id"])
    assert stored["_rev"] == doc["_rev"] and stored["clock"]["address"]["by"] == me
    rows = world.couch.view(db, "grid", "audit_by_household", startkey=[doc["household_id"]],
                            endkey=[doc["household_id"], {}], include_docs=True)["rows"]
    [record] = [r["doc"] for r in rows]
    assert (record["source"], record["author"], record["device"]) == ("create", me, "dev-test")
    assert {c["path"]: c["old"] for c in record["changes"]} == {
        p: None for p in doc["clock"]}  # every field, from nothing


def test_a_visit_may_travel_with_the_household_it_is_for(world: World,
                                                         w1: httpx.Client) -> None:
    """Offline, the visit follows the new household; they may reach the server together."""
    db, me = world.db("G1"), world.names["w1"]
    home = replicated(found_at_door("G1", me, room()))
    visit = replicated(factories.visit("G1", home["household_id"], me))
    assert push(w1, db, [visit, home]) == []
    orphan = replicated(factories.visit("G1", "G1-9-1-0", me))
    [result] = push(w1, db, [orphan])
    assert result["reason"] == "household G1-9-1-0 is not in grid G1"


def test_a_household_in_another_grid_is_refused_with_the_reason(
        world: World, w1: httpx.Client) -> None:
    me = world.names["w1"]
    elsewhere = found_at_door("G2", me, room())
    r = w1.put(f"/couch/{world.db('G2')}/{elsewhere['_id']}", json=elsewhere)
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden" and "not one of your grid" in r.json()["reason"]
    smuggled = found_at_door("G2", me, room())  # the other grid's household, in her database
    [result] = push(w1, world.db("G1"), [replicated(smuggled)])
    assert result["error"] == "forbidden" and "belongs to grid 'G2'" in result["reason"]
    for db, d in ((world.db("G2"), elsewhere), (world.db("G1"), smuggled)):
        assert world.couch.get(db, d["_id"]) is None


def test_an_id_that_is_not_the_addresses_is_refused_with_the_rule(
        world: World, w1: httpx.Client) -> None:
    db, me = world.db("G1"), world.names["w1"]
    r_no = room()
    doc = found_at_door("G1", me, r_no, hid=f"G1-mine-{r_no}")
    r = w1.put(f"/couch/{db}/{doc['_id']}", json=doc)
    assert r.status_code == 403
    assert r.json()["reason"].startswith(f"household_id must be 'G1-9-1-{r_no}'")
    assert world.couch.get(db, doc["_id"]) is None


def test_server_stamped_and_unstamped_fields_are_refused_as_for_edits(
        world: World, w1: httpx.Client) -> None:
    db, me = world.db("G1"), world.names["w1"]
    cases = {
        "moved_to": {**found_at_door("G1", me, room()), "moved_to": "G2"},
        "someone else's stamp": found_at_door("G1", world.names["w2"], room()),
        "unstamped field": {**found_at_door("G1", me, room()), "note": "没盖章"},
        "schema": {**found_at_door("G1", me, room()), "status": "active"},
    }
    results = push(w1, db, [replicated(d) for d in cases.values()])
    reasons = dict(zip(cases, [r["reason"] for r in results], strict=True))
    assert all(r["error"] == "forbidden" for r in results)
    assert "moved_to is set by the server" in reasons["moved_to"]
    assert f"stamp by the signed-in user ({me})" in reasons["someone else's stamp"]
    assert reasons["unstamped field"].startswith("note must carry a clock stamp")
    assert reasons["schema"] == "invalid document: status is not a known field"
    assert all(world.couch.get(db, d["_id"]) is None for d in cases.values())


def test_anonymous_may_not_add_a_household(world: World) -> None:
    doc = found_at_door("G1", "nobody", room())
    r = world.server.client().put(f"/couch/{world.db('G1')}/{doc['_id']}", json=doc)
    assert r.status_code == 401 and r.json()["error"]


def test_a_moved_household_is_never_created_again(world: World, w1: httpx.Client) -> None:
    db, me = world.db("G1"), world.names["w1"]
    gone = found_at_door("G1", me, room())
    rev = world.couch.put(db, copy.deepcopy(gone))["_rev"]
    world.couch.put(db, {"_id": gone["_id"], "_rev": rev, "_deleted": True, "moved_to": "G2"})
    [result] = push(w1, db, [replicated(gone)])
    assert "cannot be brought back" in result["reason"]
    [result] = push(w1, db, [{"_id": "household:G1-9-1-0000", "_rev": "1-ab",
                              "_revisions": {"start": 1, "ids": ["ab"]}, "_deleted": True}])
    assert "never deleted" in result["reason"]


def test_two_phones_adding_the_same_address_both_land_for_the_resolver(world: World) -> None:
    """A worker and her cover, both offline at the new family's door: the second first
    revision is accepted as her own creation (a sibling the resolver merges), and audited
    as hers from nothing; a later created_at on a descendant is still refused."""
    db = world.db("G1")
    world.add_account("cover", "worker", ["G1"])
    cover, me = world.login("cover"), world.names["w1"]
    r_no = room()
    mine = replicated(found_at_door("G1", me, r_no))
    theirs = replicated(found_at_door("G1", world.names["cover"], r_no, device="dev-cover",
                                      at="2026-11-20T09:30:00Z"))
    assert push(world.login("w1"), db, [mine]) == []
    assert push(cover, db, [theirs]) == []
    leaves = world.couch.get(db, mine["_id"], open_revs="all")
    assert {leaf["ok"]["_rev"] for leaf in leaves} == {mine["_rev"], theirs["_rev"]}
    rows = world.couch.view(db, "grid", "audit_by_household", startkey=[mine["household_id"]],
                            endkey=[mine["household_id"], {}], include_docs=True)["rows"]
    assert sorted(r["doc"]["author"] for r in rows) == sorted([me, world.names["cover"]])
    assert all(c["old"] is None for r in rows for c in r["doc"]["changes"])
    winner = world.couch.get(db, mine["_id"])
    later = clock.edit(winner, "note", "x", world.names["cover"], "dev-cover", AT)
    digest = uuid.uuid4().hex
    later.update(created_at="2020-01-01T00:00:00Z", _rev=f"2-{digest}", _revisions={
        "start": 2, "ids": [digest, winner["_rev"].split("-", 1)[1]]})
    [result] = push(cover, db, [later])
    assert "created_at cannot change" in result["reason"]
