"""Provisioning: databases, admin-only security and views, idempotent and self-repairing."""

from sync import design, naming
from sync.couch import Couch
from sync.provision import provision


def test_second_run_changes_nothing(couch: Couch, community) -> None:
    assert provision(couch) == []


def test_every_database_is_admin_only_and_has_its_views(couch: Couch, community) -> None:
    grid_db = naming.grid_db_name("G1", couch.prefix)
    for db in [couch.name(n) for n in naming.SYSTEM] + [grid_db]:
        status, security = couch.request("GET", f"{db}/_security")
        assert status == 200
        assert security["members"]["roles"] == ["_admin"], db
        assert security["admins"]["roles"] == ["_admin"], db
    ddoc = couch.get(grid_db, "_design/grid")
    assert set(ddoc["views"]) == set(design.GRID["views"])
    assert "validate_doc_update" not in ddoc
    assert couch.get(grid_db, "config:tags")["tags"]["elderly_alone"]["frequency_days"] == 30


def test_changed_design_document_is_updated_in_place(couch: Couch, community) -> None:
    grid_db = naming.grid_db_name("G1", couch.prefix)
    stale = couch.get(grid_db, "_design/grid")
    stale["views"] = {"old": {"map": "function (doc) {}"}}
    couch.put(grid_db, stale)
    changes = provision(couch)
    assert changes == [f"updated _design/grid in {grid_db}"]
    assert couch.get(grid_db, "_design/grid")["views"] == design.GRID["views"]


def test_tampered_security_is_restored(couch: Couch, community) -> None:
    grid_db = naming.grid_db_name("G2", couch.prefix)
    couch.request("PUT", f"{grid_db}/_security", body={"members": {"names": [], "roles": []}})
    assert provision(couch) == [f"made {grid_db} admin-only"]


def test_grid_database_names_are_valid_and_distinct() -> None:
    import re

    ids = ["G1", "g1", "网格-1", "A B", "grid/7", "X.Y"]
    names = [naming.grid_db_name(i) for i in ids]
    assert len(set(names)) == len(ids)
    for n in names:
        assert re.match(r"^[a-z][a-z0-9_$()+/-]*$", n), n
