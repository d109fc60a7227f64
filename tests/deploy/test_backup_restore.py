"""A backup actually restored: every database of one CouchDB copied into a second, empty one
with the operator's own scripts, then counts, `_security`, revisions, conflicts, deletions,
attachments and accounts checked against the source."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.embedded_couch import EmbeddedCouch
from server.settings import Settings
from sync import accounts, naming
from sync.couch import Couch
from sync.directory import Directory
from sync.provision import provision
from tests.conftest import CouchServer, RunningServer, start_server

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "deploy" / "backup"


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[Couch, Couch]]:
    source = EmbeddedCouch(Settings(var_dir=tmp_path / "source"))
    target = EmbeddedCouch(Settings(var_dir=tmp_path / "target"))
    source.start()
    try:
        target.start()
        try:
            yield (Couch(source.url, source.user, source.password),
                   Couch(target.url, target.user, target.password))
        finally:
            target.stop()
    finally:
        source.stop()


def run(script: str, couch: Couch, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOORSTEP_COUCHDB_URL": couch.url,
           "DOORSTEP_COUCHDB_USER": couch.auth[0], "DOORSTEP_COUCHDB_PASSWORD": couch.auth[1]}
    return subprocess.run([sys.executable, str(SCRIPTS / script), *args], env=env,
                          capture_output=True, text=True, timeout=300)


def populate(couch: Couch) -> dict[str, str]:
    provision(couch)
    d = Directory(couch)
    d.add_street("S1", "城南街道")
    d.add_community("C1", "桂花社区", "S1")
    d.add_grid("G1", "第一网格", "C1")
    d.add_grid("G2", "第二网格", "C1")
    provision(couch)
    _, password = accounts.create(couch, "w_zhang", "worker", grids=["G1"])
    g1 = naming.grid_db_name("G1")
    couch.bulk_docs(g1, [{"_id": f"household:G1-{i}", "type": "household", "grid": "G1",
                          "phone": f"1380013{i:04d}"} for i in range(120)])
    photo = base64.b64encode(b"\xff\xd8\xff" + bytes(range(256)) * 8).decode()
    couch.put(g1, {"_id": "visit:v1", "type": "visit", "grid": "G1", "household": "G1-1",
                   "_attachments": {"photo.jpg": {"content_type": "image/jpeg",
                                                  "data": photo}}})
    # Two phones edited the same household offline: a conflict the resolver has yet to see.
    couch.bulk_docs(g1, [
        {"_id": "household:G1-x", "_rev": "2-aaaa", "type": "household", "phone": "a",
         "_revisions": {"start": 2, "ids": ["aaaa", "0000"]}},
        {"_id": "household:G1-x", "_rev": "2-bbbb", "type": "household", "phone": "b",
         "_revisions": {"start": 2, "ids": ["bbbb", "0000"]}},
    ], new_edits=False)
    moved = couch.get(g1, "household:G1-7")
    couch.put(g1, {**moved, "_deleted": True, "moved_to": "G2"})
    return {"password": password}


def test_restore_into_an_empty_couchdb_matches_the_source(two_servers, tmp_path: Path) -> None:
    source, target = two_servers
    secrets = populate(source)
    backups = tmp_path / "backups"

    made = run("couch_backup.py", source, str(backups))
    assert made.returncode == 0, made.stderr
    (snapshot,) = [p for p in backups.iterdir()]
    restored = run("couch_restore.py", target, str(snapshot))
    assert restored.returncode == 0, restored.stderr
    assert "restore verified" in restored.stdout

    # Checked here again, independently of the script's own verification.
    _, dbs = source.request("GET", "_all_dbs")
    _, target_dbs = target.request("GET", "_all_dbs")
    assert set(dbs) <= set(target_dbs)
    g1 = naming.grid_db_name("G1")
    assert {g1, naming.grid_db_name("G2"), naming.DIRECTORY, naming.LEASES, "_users"} <= set(dbs)
    for db in dbs:
        assert (target.request("GET", db)[1]["doc_count"]
                == source.request("GET", db)[1]["doc_count"]), db
        assert (target.request("GET", f"{db}/_security")[1]
                == source.request("GET", f"{db}/_security")[1]), db
    for doc_id in ("household:G1-3", "household:G1-x", "visit:v1", "_design/grid", "config:tags"):
        params = {"revs": True, "conflicts": True, "attachments": True}
        assert target.get(g1, doc_id, **params) == source.get(g1, doc_id, **params), doc_id
    assert target.get(g1, "household:G1-x", conflicts=True)["_conflicts"], "conflict kept"
    assert target.get(g1, "household:G1-7") is None
    tomb = target.get(g1, "household:G1-7", rev=_deleted_rev(source, g1, "household:G1-7"))
    assert tomb["_deleted"] is True and tomb["moved_to"] == "G2", "deletions travel too"
    session = httpx.get(f"{target.url}/_session", auth=("w_zhang", secrets["password"]))
    assert session.json()["userCtx"]["name"] == "w_zhang", "accounts log in on the new server"

    again = run("couch_restore.py", target, str(snapshot))
    assert again.returncode == 1
    assert "already holds" in again.stderr and "Traceback" not in again.stderr


def test_a_restored_server_keeps_its_users_logged_in(two_servers, tmp_path: Path) -> None:
    """The whole disaster: a phone logged in on the old server, the databases and the
    server's secrets.json backed up together, restored on a new machine; the phone's session
    goes on working there, with its grid behind it, and nobody logs in again."""
    source, target = two_servers
    secrets = populate(source)
    old_var, new_var = tmp_path / "old-var", tmp_path / "new-var"
    old = serve(source, old_var)
    try:
        with old.client() as http:
            login = http.post("/api/login", json={"name": "w_zhang",
                                                  "password": secrets["password"]})
        assert login.status_code == 200, login.text
        cookie = {"doorstep_session": login.cookies["doorstep_session"]}
    finally:
        old.stop()

    backups = tmp_path / "backups"
    made = run("couch_backup.py", source, "--include", str(old_var / "secrets.json"),
               str(backups))
    assert made.returncode == 0, made.stderr
    (snapshot,) = list(backups.iterdir())
    kept = snapshot / "files" / "secrets.json"
    assert kept.read_bytes() == (old_var / "secrets.json").read_bytes()
    assert kept.stat().st_mode & 0o077 == 0, "readable by its owner only"
    assert run("couch_restore.py", target, str(snapshot)).returncode == 0
    new_var.mkdir()
    shutil.copy(kept, new_var / "secrets.json")  # restore step 4 of docs/deploy.md

    new = serve(target, new_var)
    try:
        with new.client(cookies=cookie) as http:
            me = http.get("/api/me")
            changes = http.get(f"/couch/{naming.grid_db_name('G1')}/_changes")
    finally:
        new.stop()
    assert me.status_code == 200, me.text
    assert me.json()["name"] == "w_zhang"
    ids = {row["id"] for row in changes.json()["results"]}
    assert {"household:G1-3", "household:G1-x", "visit:v1"} <= ids


def test_a_backup_names_a_file_it_cannot_include(two_servers, tmp_path: Path) -> None:
    source, _ = two_servers
    made = run("couch_backup.py", source, "--include", str(tmp_path / "missing.json"),
               "--every-hours", "24", str(tmp_path / "backups"))
    assert made.returncode == 2, "at start, not one failed snapshot a day"
    assert "missing.json" in made.stderr and "Traceback" not in made.stderr
    assert not (tmp_path / "backups").exists()


def test_scheduled_backups_keep_the_newest(two_servers, tmp_path: Path) -> None:
    source, _ = two_servers
    populate(source)
    backups = tmp_path / "backups"
    env = {**os.environ, "DOORSTEP_COUCHDB_URL": source.url,
           "DOORSTEP_COUCHDB_USER": source.auth[0], "DOORSTEP_COUCHDB_PASSWORD": source.auth[1]}
    # A snapshot every 1.8 s instead of every day; two kept.
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "couch_backup.py"),
                             "--every-hours", "0.0005", "--keep", "2", str(backups)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        written: list[str] = []
        pruned = 0
        deadline = time.monotonic() + 120
        while pruned < 4 and time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if line.startswith("snapshot written"):
                written.append(line.split(": ", 1)[1].strip())
            pruned += line.startswith("kept the newest 2")
    finally:
        proc.terminate()
        proc.wait(10)
    assert len(written) == 4, "it keeps running, one snapshot per period"
    left = sorted(str(p) for p in backups.iterdir())
    assert left == sorted(written[-2:]), "the newest two, nothing half-written"
    assert run("couch_restore.py", source, "--verify-only", left[-1]).returncode == 0


def serve(couch: Couch, var: Path) -> RunningServer:
    return start_server(CouchServer(couch.url, *couch.auth, None), "",  # type: ignore[arg-type]
                        var, {"DOORSTEP_BACKGROUND": "0"})


def test_verify_only_notices_a_missing_document(two_servers, tmp_path: Path) -> None:
    source, target = two_servers
    populate(source)
    backups = tmp_path / "backups"
    assert run("couch_backup.py", source, str(backups)).returncode == 0
    (snapshot,) = list(backups.iterdir())
    assert run("couch_restore.py", target, str(snapshot)).returncode == 0
    g1 = naming.grid_db_name("G1")
    doc = target.get(g1, "household:G1-5")
    target.request("DELETE", f"{g1}/household:G1-5", params={"rev": doc["_rev"]})
    check = run("couch_restore.py", target, "--verify-only", str(snapshot))
    assert check.returncode == 1
    assert g1 in check.stderr and "live documents" in check.stderr


def _deleted_rev(couch: Couch, db: str, doc_id: str) -> str:
    _, rows = couch.request("GET", f"{db}/_changes", params={"style": "all_docs",
                                                             "doc_ids": [doc_id],
                                                             "filter": "_doc_ids"})
    return rows["results"][0]["changes"][0]["rev"]
