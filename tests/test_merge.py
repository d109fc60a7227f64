"""Merging concurrent household edits: the clock, the merge rule, and whole edit histories.

The last test replays random histories on real databases: two or three device replicas and
the grid database, edits anywhere, replication (the real protocol: `_revs_diff`, `_bulk_get`,
`_bulk_docs` with `new_edits=false`) in random orders, the resolver now and then. Whatever
happened, every replica must end on the same revision and no edit may vanish.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync import audit, clock, merge, schema
from sync.couch import Couch
from sync.resolver import Resolver
from tests.conftest import CouchServer

HID = "G1-3-2-502"
DOC_ID = f"household:{HID}"
T0 = "2026-11-20T09:00:00Z"


def household(**fields: Any) -> dict[str, Any]:
    doc = {
        "_id": DOC_ID, "type": "household", "grid": "G1", "household_id": HID,
        "address": {"building": "3", "unit": "2", "floor": 5, "room": "502"},
        "housing": "owner", "residency": "registered", "tags": [], "phone": "", "note": "",
        "members": {"m1": {"name": "王秀英", "status": "present"}},
        "clock": {}, "created_at": "2026-09-01T00:00:00Z",
    }
    doc.update(fields)
    return doc


def at(minute: int) -> str:
    return f"2026-11-20T09:{minute:02d}:00Z"


def leaf(doc: dict[str, Any], rev: str) -> dict[str, Any]:
    return {**doc, "_rev": rev}


# -- the clock ---------------------------------------------------------------------------------


def ms(when: str) -> int:
    return clock.epoch_ms(when)


def test_an_edit_stamps_the_path_and_advances_its_device_counter() -> None:
    doc = clock.edit(household(), "phone", "13800138000", "w_zhang", "dev-a", at(1))
    doc = clock.edit(doc, "phone", "13900139000", "w_zhang", "dev-a", at(2))
    doc = clock.edit(doc, "phone", "13700137000", "s_li", "dev-s", at(3))
    assert doc["phone"] == "13700137000"
    assert doc["clock"]["phone"] == {"vv": {"dev-a": ms(at(2)), "dev-s": ms(at(3))},
                                     "at": at(3), "by": "s_li", "device": "dev-s"}
    assert doc["updated_at"] == at(3)
    schema.validate(doc)


def test_a_device_counter_increases_even_when_its_clock_does_not() -> None:
    doc = clock.edit(household(), "note", "one", "w_zhang", "dev-a", at(5))
    doc = clock.edit(doc, "note", "two", "w_zhang", "dev-a", at(5))
    doc = clock.edit(doc, "note", "three", "w_zhang", "dev-a", at(1))  # clock set back
    assert doc["clock"]["note"]["vv"] == {"dev-a": ms(at(5)) + 2}


def test_saving_an_unchanged_value_is_not_an_edit() -> None:
    doc = clock.edit(household(), "housing", "owner", "w_zhang", "dev-a", at(1))
    assert "housing" not in doc["clock"]


def test_an_edit_leaves_its_input_alone() -> None:
    before = household()
    clock.edit(before, "members.m1.name", "王秀兰", "w_zhang", "dev-a", at(1))
    assert before == household()


def test_member_ids_may_contain_dots() -> None:
    doc = clock.add_member(household(), "m.2", {"name": "李四", "status": "present"},
                           "w_zhang", "dev-a", at(1))
    assert doc["members"]["m.2"] == {"name": "李四", "status": "present"}
    assert set(doc["clock"]) == {"members.m.2.name", "members.m.2.status"}
    schema.validate(doc)


def test_paths_outside_the_model_are_refused() -> None:
    with pytest.raises(ValueError):
        clock.edit(household(), "grid", "G2", "w_zhang", "dev-a", at(1))
    with pytest.raises(ValueError):
        clock.edit(household(), "members.m1.salary", 1, "w_zhang", "dev-a", at(1))


@pytest.mark.parametrize(("a", "b", "order"), [
    ({}, {}, "equal"),
    ({"a": 1}, {"a": 1}, "equal"),
    ({"a": 1}, {"a": 2}, "before"),
    ({}, {"a": 1}, "before"),
    ({"a": 2, "b": 1}, {"a": 1}, "after"),
    ({"a": 1}, {"b": 1}, "concurrent"),
    ({"a": 2, "b": 1}, {"a": 1, "b": 2}, "concurrent"),
])
def test_vector_order(a: clock.VV, b: clock.VV, order: str) -> None:
    assert clock.compare(a, b) == order


# -- the merge rule ----------------------------------------------------------------------------


def test_edits_to_different_fields_and_members_combine() -> None:
    base = household()
    worker = clock.edit(base, "phone", "13800138000", "w_zhang", "dev-a", at(1))
    worker = clock.edit(worker, "members.m1.status", "moved_out", "w_zhang", "dev-a", at(1))
    boss = clock.edit(base, "housing", "rented", "s_li", "dev-s", at(2))
    boss = clock.add_member(boss, "m2", {"name": "李四", "status": "present"}, "s_li", "dev-s",
                            at(2))
    result = merge.merge([leaf(worker, "2-a"), leaf(boss, "3-b")])
    doc = result.doc
    assert (doc["phone"], doc["housing"]) == ("13800138000", "rented")
    assert doc["members"] == {"m1": {"name": "王秀英", "status": "moved_out"},
                              "m2": {"name": "李四", "status": "present"}}
    assert result.conflicts == []
    assert doc["_rev"] == "3-b"  # an update of the winning leaf
    assert [c["path"] for c in result.changes] == ["members.m1.status", "phone"]
    schema.validate(doc)


def test_an_edit_beats_the_untouched_value_whatever_the_times() -> None:
    base = clock.edit(household(), "note", "old", "w_zhang", "dev-a", at(50))
    edited = clock.edit(base, "note", "new", "s_li", "dev-s", at(1))  # device clock behind
    untouched = clock.edit(base, "phone", "13800138000", "w_zhang", "dev-a", at(59))
    result = merge.merge([leaf(edited, "3-x"), leaf(untouched, "3-y")])
    assert result.doc["note"] == "new"
    assert result.conflicts == []


def test_same_field_two_values_latest_wins_and_both_are_kept() -> None:
    base = household()
    a = clock.edit(base, "phone", "13800138000", "w_zhang", "dev-a", at(5))
    b = clock.edit(base, "phone", "13900139000", "s_li", "dev-s", at(7))
    result = merge.merge([leaf(a, "2-a"), leaf(b, "2-b")])
    assert result.doc["phone"] == "13900139000"
    [record] = result.conflicts
    assert record["path"] == "phone" and record["state"] == "open"
    assert record["chosen"] == "13900139000"
    assert record["candidates"] == [
        {"value": "13900139000", "by": "s_li", "at": at(7), "device": "dev-s"},
        {"value": "13800138000", "by": "w_zhang", "at": at(5), "device": "dev-a"},
    ]
    schema.validate(record)
    # The decision is newer than both sides: whoever edits next, on top of it, just wins.
    stamp = result.doc["clock"]["phone"]
    assert clock.compare(stamp["vv"], a["clock"]["phone"]["vv"]) == "after"
    assert clock.compare(stamp["vv"], b["clock"]["phone"]["vv"]) == "after"


def test_the_rule_reads_when_the_field_was_edited_not_the_entry() -> None:
    base = household()
    a = clock.edit(base, "phone", "13800138000", "w_zhang", "dev-a", at(5))
    a = clock.edit(a, "note", "later edit of another field", "w_zhang", "dev-a", at(30))
    b = clock.edit(base, "phone", "13900139000", "s_li", "dev-s", at(10))
    result = merge.merge([leaf(a, "3-a"), leaf(b, "2-b")])
    assert result.doc["phone"] == "13900139000"
    assert [c["at"] for c in result.conflicts[0]["candidates"]] == [at(10), at(5)]


def test_a_tie_in_time_goes_to_the_higher_device_id() -> None:
    base = household()
    a = clock.edit(base, "note", "from a", "w_zhang", "dev-a", at(5))
    b = clock.edit(base, "note", "from b", "w_wang", "dev-b", at(5))
    assert merge.merge([leaf(a, "2-a"), leaf(b, "2-b")]).doc["note"] == "from b"


def test_the_same_value_from_both_sides_is_no_conflict() -> None:
    base = household()
    a = clock.edit(base, "housing", "vacant", "w_zhang", "dev-a", at(5))
    b = clock.edit(base, "housing", "vacant", "s_li", "dev-s", at(6))
    result = merge.merge([leaf(a, "2-a"), leaf(b, "2-b")])
    assert result.doc["housing"] == "vacant" and result.conflicts == []


def test_a_device_editing_a_branch_without_its_own_earlier_edit_is_not_hidden() -> None:
    # dev-1 wrote a name, which was merged with the server's identical one; later dev-1's
    # phone showed another branch (CouchDB's pick), without that edit, and it wrote again.
    base = household()
    first = clock.edit(base, "members.m1.name", "王秀兰", "w_zhang", "dev-1", at(1))
    same = clock.edit(base, "members.m1.name", "王秀兰", "s_li", "dev-s", at(2))
    merged = merge.merge([leaf(first, "2-a"), leaf(same, "2-b")]).doc
    again = clock.edit(base, "members.m1.name", "王秀云", "w_zhang", "dev-1", at(9))
    result = merge.merge([leaf(merge.strip(merged), "3-m"), leaf(again, "2-c")])
    assert result.doc["members"]["m1"]["name"] == "王秀云"
    assert [c["value"] for c in result.conflicts[0]["candidates"]] == ["王秀云", "王秀兰"]


def test_a_device_later_edit_on_another_branch_replaces_its_own_earlier_one() -> None:
    base = household()
    first = clock.edit(base, "note", "first", "w_zhang", "dev-a", at(1))
    second = clock.edit(base, "note", "second", "w_zhang", "dev-a", at(2))
    result = merge.merge([leaf(first, "2-a"), leaf(second, "2-b")])
    assert result.doc["note"] == "second" and result.conflicts == []


def test_one_stamp_with_two_values_is_a_conflict_and_the_decision_is_newer() -> None:
    # The same device, the same millisecond, two branches: only the values tell them apart.
    base = household()
    first = clock.edit(base, "note", "first", "w_zhang", "dev-a", at(1))
    second = clock.edit(base, "note", "second", "w_zhang", "dev-a", at(1))
    result = merge.merge([leaf(first, "2-a"), leaf(second, "2-b")])
    assert result.doc["note"] == "second"  # same time and device: the larger value JSON
    assert [c["value"] for c in result.conflicts[0]["candidates"]] == ["second", "first"]
    assert result.doc["clock"]["note"]["vv"] == {"dev-a": ms(at(1)), merge.RESOLVER: 1}
    again = merge.merge([leaf(result.doc, "3-m"), leaf(first, "2-a")])
    assert again.conflicts == [] and again.doc["note"] == "second"


def test_merge_does_not_depend_on_the_order_of_leaves() -> None:
    base = household()
    a = clock.edit(base, "note", "a", "w_a", "dev-a", at(1))
    b = clock.edit(base, "note", "b", "w_b", "dev-b", at(1))
    c = clock.edit(clock.edit(base, "tags", ["veteran"], "w_c", "dev-c", at(3)),
                   "note", "c", "w_c", "dev-c", at(1))
    leaves = [leaf(a, "2-a"), leaf(b, "2-b"), leaf(c, "3-c")]
    results = [merge.merge(list(p)) for p in itertools.permutations(leaves)]
    assert all(r == results[0] for r in results)
    [record] = results[0].conflicts
    assert {x["value"] for x in record["candidates"]} == {"a", "b", "c"}


def test_merging_the_result_again_changes_nothing() -> None:
    base = household()
    a = clock.edit(base, "note", "a", "w_a", "dev-a", at(1))
    b = clock.edit(clock.edit(base, "note", "b", "w_b", "dev-b", at(2)), "phone", "13800138000",
                   "w_b", "dev-b", at(2))
    first = merge.merge([leaf(a, "2-a"), leaf(b, "3-b")])
    again = merge.merge([leaf(merge.strip(first.doc), "4-m"), leaf(a, "2-a"), leaf(b, "3-b")])
    assert again.conflicts == [] and again.changes == []
    assert merge.strip(again.doc) == merge.strip(first.doc)


def test_conflict_ids_are_derived_from_the_disagreement() -> None:
    base = household()
    a = clock.edit(base, "note", "a", "w_a", "dev-a", at(1))
    b = clock.edit(base, "note", "b", "w_b", "dev-b", at(2))
    one = merge.merge([leaf(a, "2-a"), leaf(b, "2-b")]).conflicts[0]["_id"]
    two = merge.merge([leaf(b, "2-b"), leaf(a, "2-a")]).conflicts[0]["_id"]
    c = clock.edit(base, "note", "c", "w_b", "dev-b", at(2))
    other = merge.merge([leaf(a, "2-a"), leaf(c, "2-c")]).conflicts[0]["_id"]
    assert one == two != other
    assert one.startswith("conflict:")


def test_edits_after_a_move_are_set_aside_beside_the_moved_entry() -> None:
    moved = clock.edit(household(), "note", "at move", "s_li", "dev-s", at(1))
    stray = clock.edit(household(), "phone", "13800138000", "w_zhang", "dev-a", at(3))
    stray = clock.edit(stray, "note", "stray", "w_zhang", "dev-a", at(3))
    records = merge.moved_conflicts({**moved, "grid": "G2"}, stray, "G2")
    assert {r["path"]: [c["value"] for c in r["candidates"]] for r in records} == {
        "note": ["at move", "stray"], "phone": ["", "13800138000"],
    }
    assert all(r["chosen"] == r["candidates"][0]["value"] and r["grid"] == "G2" for r in records)
    for r in records:
        schema.validate(r)
    seen_by_copy = clock.edit(stray, "housing", "rented", "s_li", "dev-s", at(4))
    assert merge.moved_conflicts({**seen_by_copy, "grid": "G2"}, stray, "G2") == []


# -- audit records -----------------------------------------------------------------------------


def test_a_direct_edit_is_audited_per_field_old_to_new() -> None:
    old = leaf(household(), "1-a")
    new = clock.edit(old, "phone", "13800138000", "w_zhang", "dev-a", at(1))
    new = clock.edit(new, "members.m1.status", "moved_out", "w_zhang", "dev-a", at(1))
    new["_rev"] = "2-b"
    record = audit.for_edit(old, new, "w_zhang", "dev-a", "visit:v1", at(1))
    assert record is not None
    assert record["changes"] == [
        {"path": "members.m1.status", "old": "present", "new": "moved_out"},
        {"path": "phone", "old": "", "new": "13800138000"},
    ]
    assert (record["source"], record["author"], record["device"], record["visit"]) == (
        "edit", "w_zhang", "dev-a", "visit:v1")
    schema.validate(record)
    assert audit.for_edit(old, new, "w_zhang", "dev-a", None, at(1))["_id"] == record["_id"]
    assert audit.for_edit(old, old, "w_zhang", "dev-a", None, at(1)) is None


def test_a_new_entry_is_audited_from_nothing() -> None:
    record = audit.for_edit(None, household(), "admin", None, None, at(1))
    assert record["source"] == "create"
    assert {"path": "housing", "old": None, "new": "owner"} in record["changes"]
    schema.validate(record)


def test_a_merge_is_audited_under_the_names_of_whoever_made_the_edits() -> None:
    base = household()
    a = clock.edit(base, "phone", "13800138000", "w_zhang", "dev-a", at(1))
    b = clock.edit(base, "housing", "rented", "s_li", "dev-s", at(2))
    c = clock.edit(base, "note", "n", "w_wang", "dev-c", at(3))
    result = merge.merge([leaf(a, "2-a"), leaf(b, "2-b"), leaf(c, "2-c")])
    records = audit.for_merge(result, "3-m")
    by = {r["author"]: r["changes"] for r in records}
    assert result.doc["_rev"] == "2-c"
    assert by == {"w_zhang": [{"path": "phone", "old": "", "new": "13800138000"}],
                  "s_li": [{"path": "housing", "old": "owner", "new": "rented"}]}
    for r in records:
        schema.validate(r)
        assert r["source"] == "merge"


# -- properties of the pure merge --------------------------------------------------------------

DEVICES = ("dev-a", "dev-b", "dev-c")


def value_for(path: str, n: int) -> Any:
    field_name = path.rsplit(".", 1)[-1]
    if field_name == "housing":
        return schema.HOUSING[n % 3]
    if field_name == "status":
        return schema.MEMBER_STATUS[n % 2]
    if field_name == "tags":
        return [[], ["veteran"], ["elderly_alone"], ["elderly_alone", "veteran"]][n % 4]
    if field_name == "phone":
        return f"1380000000{n % 10}"
    if field_name == "name":
        return f"居民{n}"
    return f"note {n}"


PATHS = ("housing", "tags", "phone", "note", "members.m1.name", "members.m1.status")
edit_steps = st.lists(st.tuples(st.sampled_from(PATHS), st.integers(0, 5), st.integers(0, 59)),
                      max_size=5)


@settings(max_examples=150, deadline=None)
@given(st.lists(edit_steps, min_size=2, max_size=3), st.randoms())
def test_any_branches_merge_to_one_valid_entry_that_keeps_every_edit(
        branches: list[list[tuple[str, int, int]]], rnd: Any) -> None:
    base = household()
    leaves = []
    edits = []  # (path, value) of the last edit of each path on each branch
    for i, steps in enumerate(branches):
        doc = base
        for path, n, minute in steps:
            doc = clock.edit(doc, path, value_for(path, n), f"user{i}", DEVICES[i], at(minute))
        leaves.append(leaf(doc, f"{1 + len(steps)}-{i:032x}"))
        edits += [(p, clock.get(doc, p)) for p in doc["clock"]]
    result = merge.merge(leaves)
    shuffled = list(leaves)
    rnd.shuffle(shuffled)
    assert merge.merge(shuffled) == result
    schema.validate(merge.strip(result.doc))
    for record in result.conflicts:
        schema.validate(record)
    # The branches never saw each other, so each one's value of each path it edited is either
    # the merged value or a candidate of that path's conflict record.
    for path, value in edits:
        in_entry = clock.get(result.doc, path) == value
        in_record = any(c["value"] == value for r in result.conflicts if r["path"] == path
                        for c in r["candidates"])
        assert in_entry or in_record, (path, value)
    # A path only one branch changed takes that change, with nothing to decide.
    for path in {p for p, _ in edits}:
        values = [v for p, v in edits if p == path]
        if len(values) == 1:
            assert clock.get(result.doc, path) == values[0]
            assert all(r["path"] != path for r in result.conflicts)
    again = merge.merge([leaf(merge.strip(result.doc), "9-f"), *leaves])
    assert again.conflicts == [] and again.changes == []


# -- whole histories on real replicas ----------------------------------------------------------


@dataclass
class Edit:
    id: int
    path: str
    value: Any
    by: str
    device: str
    at: str
    seen: frozenset[int] = frozenset()  # its lineage: itself and the edits it overwrote


@dataclass
class History:
    """Replicas on the real embedded CouchDB, and what each revision is known to contain.

    `lineage[rev][path]` is the set of edits that the value at `path` in `rev` descends from:
    the edit that wrote it and everything the editor had seen there (an edit is made on the
    replica's current revision). A merged revision inherits, per path, the lineage of every
    merged leaf that holds the value the merge kept. An edit that is in the final revision's
    lineage was seen and overwritten by someone; any other edit must still be findable.
    """

    couch: Couch
    server: str
    devices: list[str]
    lineage: dict[str, dict[str, frozenset[int]]] = field(default_factory=dict)
    edits: list[Edit] = field(default_factory=list)
    own: dict[tuple[str, str], frozenset[int]] = field(default_factory=dict)
    minute: int = 0

    @property
    def replicas(self) -> list[str]:
        return [self.server, *self.devices]

    def start(self) -> None:
        for db in self.replicas:
            self.couch.ensure_db(db)
        doc = self.couch.put(self.server, household())
        self.lineage[doc["_rev"]] = {}
        for db in self.devices:
            replicate(self.couch, self.server, db)

    def edit(self, replica: int, kind: str, n: int) -> None:
        db = self.replicas[replica]
        device = "dev-server" if replica == 0 else f"dev-{replica}"
        doc = self.couch.get(db, DOC_ID)
        if kind == "add_member":
            path = f"members.{device}-{len(self.edits)}.name"
        elif kind.startswith("members."):
            members = sorted(doc["members"])
            path = f"members.{members[n % len(members)]}.{kind.split('.')[1]}"
        else:
            path = kind
        self.minute += 1
        when = f"2026-11-20T{9 + self.minute // 60:02d}:{self.minute % 60:02d}:00Z"
        value = value_for(path, n)
        new = clock.edit(doc, path, value, f"user-{device}", device, when)
        if kind == "add_member":
            new = clock.edit(new, path.replace(".name", ".status"), "present",
                             f"user-{device}", device, when)
        if new == doc:
            return
        written = self.couch.put(db, new)
        lineage = dict(self.lineage[doc["_rev"]])
        for p in new["clock"]:
            if new["clock"][p] != doc["clock"].get(p):
                e = Edit(len(self.edits), p, clock.get(new, p), f"user-{device}", device, when)
                self.edits.append(e)
                # A device's later edit of a path counts as having seen its earlier ones.
                seen = lineage.get(p, frozenset()) | self.own.get((device, p), frozenset())
                lineage[p] = e.seen = seen | {e.id}
                self.own[(device, p)] = lineage[p]
        self.lineage[written["_rev"]] = lineage

    def push(self, device: int) -> None:
        replicate(self.couch, self.devices[device % len(self.devices)], self.server)

    def pull(self, device: int) -> None:
        replicate(self.couch, self.server, self.devices[device % len(self.devices)])

    def resolve(self) -> None:
        before = live_leaves(self.couch, self.server)
        Resolver(self.couch).resolve_db(self.server)
        for rev, doc in live_leaves(self.couch, self.server).items():
            if rev in self.lineage:
                continue
            self.lineage[rev] = {
                path: frozenset().union(*(
                    self.lineage[r].get(path, frozenset()) for r, b in before.items()
                    if clock.canonical(clock.get(b, path)) == clock.canonical(clock.get(doc, path))
                ))
                for path in schema.household_paths(doc)
            }

    def settle(self) -> None:
        for _ in range(2):
            for i in range(len(self.devices)):
                self.push(i)
            self.resolve()
            for i in range(len(self.devices)):
                self.pull(i)


def replicate(couch: Couch, source: str, target: str) -> None:
    """One-shot replication as PouchDB does it, through the same endpoints."""
    _, changes = couch.request("GET", f"{source}/_changes", params={"style": "all_docs"})
    revs = {row["id"]: [c["rev"] for c in row["changes"]] for row in changes["results"]}
    _, diff = couch.request("POST", f"{target}/_revs_diff", body=revs)
    wanted = [{"id": i, "rev": r} for i, d in diff.items() for r in d["missing"]]
    if not wanted:
        return
    _, got = couch.request("POST", f"{source}/_bulk_get", params={"revs": True},
                           body={"docs": wanted})
    docs = [entry["ok"] for result in got["results"] for entry in result["docs"]]
    assert couch.bulk_docs(target, docs, new_edits=False) == []


def live_leaves(couch: Couch, db: str) -> dict[str, dict[str, Any]]:
    _, leaves = couch.request("GET", f"{db}/{DOC_ID}", params={"open_revs": "all"})
    return {e["ok"]["_rev"]: e["ok"] for e in leaves if not e["ok"].get("_deleted")}


edit_action = st.tuples(
    st.just("edit"), st.integers(0, 3),
    st.sampled_from(("housing", "tags", "phone", "note", "members.name", "members.status",
                     "add_member")),
    st.integers(0, 5),
)
sync_action = st.one_of(st.tuples(st.just("push"), st.integers(0, 2)),
                        st.tuples(st.just("pull"), st.integers(0, 2)),
                        st.tuples(st.just("resolve")))
# Rounds: replicas edit while apart, then some of them sync, in any order.
rounds = st.lists(st.tuples(st.lists(edit_action, min_size=1, max_size=6),
                            st.lists(sync_action, min_size=1, max_size=6)),
                  min_size=1, max_size=4)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.integers(2, 3), rounds)
def test_random_histories_on_real_replicas_converge_and_lose_nothing(
        couch_server: CouchServer, n_devices: int,
        history_rounds: list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]) -> None:
    couch = Couch(couch_server.url, couch_server.user, couch_server.password)
    run = f"tm{uuid.uuid4().hex[:8]}_"
    history = History(couch, f"{run}g_g1", [f"{run}d{i}" for i in range(n_devices)])
    try:
        history.start()
        for a in (a for edits, syncs in history_rounds for a in edits + syncs):
            if a[0] == "edit":
                history.edit(a[1] % (n_devices + 1), a[2], a[3])
            elif a[0] == "push":
                history.push(a[1])
            elif a[0] == "pull":
                history.pull(a[1])
            else:
                history.resolve()
        history.settle()
        check_converged_and_nothing_lost(history)
    finally:
        for db in history.replicas:
            couch.request("DELETE", db)


def check_converged_and_nothing_lost(history: History) -> None:
    couch = history.couch
    finals = [couch.get(db, DOC_ID, conflicts=True) for db in history.replicas]
    assert all("_conflicts" not in f for f in finals), "a replica still has conflicts"
    assert len({f["_rev"] for f in finals}) == 1, "replicas ended on different revisions"
    final = finals[0]
    schema.validate(final)
    rows = couch.all_docs(history.server, startkey="conflict:", endkey="conflict:\ufff0",
                          include_docs=True)
    records = [r["doc"] for r in rows]
    assert all(r["state"] == "open" and r["household"] == HID for r in records)
    # An edit is accounted for when the final value descends from it, or when a value kept
    # in a conflict record does (its value, or a later one that overwrote it knowingly). Two
    # people who wrote the same value concurrently are one candidate, under the later name.
    kept = [e for e in history.edits if any(
        r["path"] == e.path and any(c["value"] == e.value for c in r["candidates"])
        for r in records)]
    accounted = {(e.path, i) for e in kept for i in e.seen}
    accounted |= {(p, i) for p, ids in history.lineage[final["_rev"]].items() for i in ids}
    for e in history.edits:
        assert (e.path, e.id) in accounted, (
            f"edit {e} vanished: final {clock.get(final, e.path)!r}, records {records}")
    members_ever = {e.path.split(".")[1] for e in history.edits if e.path.startswith("members.")}
    assert members_ever <= set(final["members"])
