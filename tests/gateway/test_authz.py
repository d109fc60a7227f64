"""The authorization rules as pure functions: roles, grids, documents, household stamps."""

from __future__ import annotations

import copy

from server import authz
from server.authz import Principal
from sync import clock
from sync.accounts import Account
from sync.directory import Grid
from tests.gateway import factories

G1 = Grid("G1", "第一网格", "C1", "g_g1")
G2 = Grid("G2", "第二网格", "C1", "g_g2")
G9 = Grid("G9", "第九网格", "C2", "g_g9")

WORKER = Principal("zhang", "张", "worker", frozenset({"G1"}))
SUPERVISOR = Principal("li", "李", "supervisor", communities=frozenset({"C1"}))
ADMIN = Principal("wang", "王", "admin")
GONE = Principal("zhao", "赵", "worker", frozenset({"G1"}), active=False)
NO_ROLE = Principal("qian", "钱", "")


def test_principal_from_an_account_keeps_roles_and_scopes() -> None:
    account = Account.from_doc({"name": "zhang", "display_name": "张", "roles": [],
                                "doorstep_roles": ["worker", "grid:G1", "grid:G2"],
                                "doorstep_active": False})
    p = Principal.from_account(account)
    assert (p.role, p.grids, p.active) == ("worker", frozenset({"G1", "G2"}), False)
    assert p.roles == ["worker", "grid:G1", "grid:G2"]


def test_who_reads_which_grid() -> None:
    grids = [G1, G2, G9]
    assert authz.readable_grids(WORKER, grids) == [G1]
    assert authz.readable_grids(SUPERVISOR, grids) == [G1, G2]
    assert authz.readable_grids(ADMIN, grids) == grids
    assert authz.readable_grids(GONE, grids) == []
    assert authz.readable_grids(NO_ROLE, grids) == []


def test_only_a_grids_own_workers_push_into_it() -> None:
    assert authz.can_sync_write(WORKER, G1) is None
    assert "not yours" in authz.can_sync_write(WORKER, G2)
    assert "read-only" in authz.can_sync_write(SUPERVISOR, G1)
    assert "read-only" in authz.can_sync_write(ADMIN, G9)
    assert "deactivated" in authz.can_sync_write(GONE, G1)


def test_what_each_role_may_create() -> None:
    hid = "G1-1"
    assert authz.can_write_doc(WORKER, G1, factories.visit("G1", hid, "zhang"), None) is None
    assert "author" in authz.can_write_doc(WORKER, G1, factories.visit("G1", hid, "li"), None)
    assert "G9" in authz.can_write_doc(WORKER, G1, factories.visit("G9", hid, "zhang"), None)
    assert "not yours" in authz.can_write_doc(WORKER, G9, factories.visit("G9", hid, "zhang"),
                                              None)
    assert authz.can_write_doc(WORKER, G1, factories.review("G1", hid, "zhang"), None)
    assert authz.can_write_doc(SUPERVISOR, G1, factories.review("G1", hid, "li"), None) is None
    assert authz.can_write_doc(SUPERVISOR, G9, factories.review("G9", hid, "li"), None)
    household = factories.household("G1", hid)
    assert "household_id must be 'G1-3-2-502'" in authz.can_write_doc(WORKER, G1, household,
                                                                      None)
    assert authz.can_write_doc(ADMIN, G1, household, None) is None
    found = factories.household("G1", "G1-3-2-502", _id="household:G1-3-2-502")
    assert "stamp by the signed-in user" in authz.can_write_doc(WORKER, G1, found, None)
    for path in ("address", "housing", "residency", "tags", "phone", "note",
                 "members.m1.name", "members.m1.relation", "members.m1.birth_year",
                 "members.m1.status"):
        assert clock.get(found, path) is not clock.MISSING
        found["clock"][path] = {"vv": {"dev-test": 1}, "at": factories.AT, "by": "zhang",
                                "device": "dev-test"}
    assert authz.can_write_doc(WORKER, G1, found, None) is None
    assert "moved_to" in authz.can_write_doc(WORKER, G1, {**found, "moved_to": "G2"}, None)
    assert "G2" in authz.can_write_doc(WORKER, G1, {**found, "grid": "G2"}, None)
    assert authz.can_write_doc(GONE, G1, factories.visit("G1", hid, "zhao"), None)


def test_need_events_by_role() -> None:
    for event, worker_may in [("raised", True), ("claimed", True), ("resolved", True),
                              ("evaluated", True), ("dispatched", False), ("closed", False)]:
        doc = factories.need_event("G1", "G1-1", "zhang", event)
        assert (authz.can_write_doc(WORKER, G1, doc, None) is None) == worker_may, event
        doc = factories.need_event("G1", "G1-1", "li", event)
        assert authz.can_write_doc(SUPERVISOR, G1, doc, None) is None, event


def test_append_only_documents_never_change() -> None:
    stored = {**factories.visit("G1", "G1-1", "zhang"), "_rev": "1-a"}
    again = {**stored, "_rev": "1-a"}
    assert authz.can_write_doc(WORKER, G1, again, stored) is None
    assert "never changes" in authz.can_write_doc(WORKER, G1, {**stored, "notes": "x"}, stored)
    assert "created_at cannot change" in authz.can_write_doc(
        WORKER, G1, {**stored, "created_at": "2026-01-01T00:00:00Z"}, stored)
    assert "household cannot change" in authz.can_write_doc(
        WORKER, G1, {**stored, "household": "G1-2"}, stored)


def test_deletions() -> None:
    draft = {"_id": "visit:never-synced", "_deleted": True}
    assert authz.can_write_doc(WORKER, G1, draft, None) is None
    stored = {**factories.visit("G1", "G1-1", "zhang"), "_rev": "1-a"}
    assert "never deleted" in authz.can_write_doc(
        WORKER, G1, {"_id": stored["_id"], "_deleted": True}, stored)
    household = factories.household("G1", "G1-1")
    assert "moves it" in authz.can_write_doc(
        ADMIN, G1, {"_id": household["_id"], "_deleted": True}, household)
    assert "never deleted" in authz.can_write_doc(
        WORKER, G1, {"_id": "review:x", "_deleted": True}, None)
    tombstone = {"_id": household["_id"], "_rev": "2-b", "_deleted": True}
    assert "cannot be brought back" in authz.can_write_doc(
        ADMIN, G1, factories.household("G1", "G1-1"), tombstone)


def test_household_edits_carry_the_users_own_stamps() -> None:
    stored = factories.household("G1", "G1-1")
    mine = factories.edited(stored, "phone", "13800138000", "zhang")
    assert authz.can_write_doc(WORKER, G1, mine, stored) is None
    theirs = factories.edited(stored, "phone", "13800138000", "li")
    assert "stamped by 'li'" in authz.can_write_doc(WORKER, G1, theirs, stored)
    silent = {**stored, "housing": "rented"}
    assert "housing changed without a new clock stamp" in authz.can_write_doc(
        WORKER, G1, silent, stored)
    assert "moved_to" in authz.can_write_doc(WORKER, G1, {**mine, "moved_to": "G2"}, stored)


def test_a_branch_may_hold_older_edits_the_server_has_already_superseded() -> None:
    base = factories.household("G1", "G1-1")
    first = factories.edited(base, "phone", "13800138000", "li", "console")
    server = factories.edited(first, "phone", "13900139000", "li", "console")
    # the device branched after `first`, then edited the note itself
    branch = factories.edited(first, "note", "独居", "zhang")
    assert authz.can_write_doc(WORKER, G1, branch, server) is None
    # a branch from before any edit, with a member the server has and it lacks
    older = factories.edited(base, "note", "独居", "zhang")
    grown = factories.edited(server, "members.m2.name", "李明", "li", "console")
    grown = factories.edited(grown, "members.m2.status", "present", "li", "console")
    assert authz.can_write_doc(WORKER, G1, older, grown) is None
    # but an edit stamped by someone else that the server never saw is forged
    forged = copy.deepcopy(branch)
    newer = {d: n + 1 for d, n in server["clock"]["phone"]["vv"].items()}
    forged["clock"]["phone"] = {**forged["clock"]["phone"], "vv": newer}
    forged["phone"] = "13700137000"
    assert "stamped by 'li'" in authz.can_write_doc(WORKER, G1, forged, server)


def test_settling_a_conflict_changes_only_its_resolution() -> None:
    conflict = {"_id": "conflict:1", "type": "conflict", "grid": "G1", "household": "G1-1",
                "path": "phone", "candidates": [{"value": "1"}, {"value": "2"}],
                "state": "open", "at": factories.AT}
    settled = {**conflict, "state": "resolved", "chosen": "2", "resolved_by": "li",
               "resolved_at": factories.AT}
    assert authz.can_write_doc(SUPERVISOR, G1, settled, conflict) is None
    assert "resolved_by" in authz.can_write_doc(SUPERVISOR, G1,
                                                {**settled, "resolved_by": "zhang"}, conflict)
    assert "path cannot change" in authz.can_write_doc(SUPERVISOR, G1,
                                                       {**settled, "path": "note"}, conflict)
    assert authz.can_write_doc(WORKER, G1, settled, conflict)
