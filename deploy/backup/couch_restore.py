"""Restore a snapshot made by couch_backup.py into an empty CouchDB, then verify it.

    python deploy/backup/couch_restore.py /backups/20260101T020000Z
    python deploy/backup/couch_restore.py --verify-only /backups/20260101T020000Z

Connection from DOORSTEP_COUCHDB_URL, DOORSTEP_COUCHDB_USER and DOORSTEP_COUCHDB_PASSWORD:
point them at the *new* server. Every database is created with its `_security`, and every
revision is written with `new_edits=false`, so ids, `_rev`s, histories, conflicts and
deletions are the same as at the source. It refuses to write into a database that already
holds documents (CouchDB's own design documents aside).

Verification (also run after a restore): per database, the live documents the snapshot says
should exist are there (`doc_count`), `_security` is the same, and a random sample of
documents (default 50 per database) has the same winning `_rev`, body, revision history,
conflicts and attachment bytes.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from couchhttp import Couch, CouchError, db_path

MANAGED = {"_design/_auth", "_design/_replicator"}  # CouchDB writes these itself
BATCH_BYTES = 4 * 1024 * 1024


class VerifyError(Exception):
    pass


def read_db_file(path: Path) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    f = gzip.open(path, "rt", encoding="utf-8")
    header = json.loads(f.readline())

    def docs() -> Iterator[dict[str, Any]]:
        with f:
            for line in f:
                doc = json.loads(line)
                if doc["_id"] not in MANAGED:
                    yield doc

    return header, docs()


def restore_database(couch: Couch, db: str, path: Path) -> int:
    header, docs = read_db_file(path)
    couch.request("PUT", db_path(db), ok=(201, 202, 412))
    _, info = couch.request("GET", db_path(db))
    _, existing = couch.request("GET", f"{db_path(db)}/_all_docs", {"limit": 5})
    if [r for r in existing["rows"] if r["id"] not in MANAGED]:
        raise CouchError(f"{db} already holds {info.get('doc_count')} document(s); "
                         "restore only into an empty server")
    couch.request("PUT", f"{db_path(db)}/_security", body=header["security"])
    written = 0
    batch: list[dict[str, Any]] = []
    size = 0
    for doc in docs:
        batch.append(doc)
        size += len(json.dumps(doc))
        if size >= BATCH_BYTES or len(batch) >= 1000:
            written += _write(couch, db, batch)
            batch, size = [], 0
    if batch:
        written += _write(couch, db, batch)
    return written


def _write(couch: Couch, db: str, docs: list[dict[str, Any]]) -> int:
    _, result = couch.request("POST", f"{db_path(db)}/_bulk_docs",
                              body={"docs": docs, "new_edits": False}, ok=(201, 202))
    errors = [r for r in result or [] if "error" in r]
    if errors:
        raise CouchError(f"{db}: {len(errors)} document(s) refused, first: {errors[0]}")
    return len(docs)


# -- verification ---------------------------------------------------------------------------


def _rev_key(doc: dict[str, Any]) -> tuple[bool, int, str]:
    """CouchDB's winner: a live leaf over a deleted one, then the longer history, then the
    greater revision hash."""
    n, h = doc["_rev"].split("-", 1)
    return (not doc.get("_deleted"), int(n), h)


def expected_state(path: Path) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    header, docs = read_db_file(path)
    leaves: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        same = [d for d in leaves.get(doc["_id"], []) if d["_rev"] != doc["_rev"]]
        leaves[doc["_id"]] = [*same, doc]
    return header, leaves


def verify_database(couch: Couch, db: str, path: Path, sample: int, rng: random.Random) -> int:
    header, leaves = expected_state(path)
    winners = {i: max(ls, key=_rev_key) for i, ls in leaves.items()}
    live = sum(1 for d in winners.values() if not d.get("_deleted"))
    _, info = couch.request("GET", db_path(db))
    managed = sum(couch.request("GET", f"{db_path(db)}/{db_path(m)}", ok=(200, 404))[0] == 200
                  for m in MANAGED)
    if info["doc_count"] - managed != live:
        raise VerifyError(f"{db}: {info['doc_count'] - managed} live documents, "
                          f"the snapshot has {live}")
    _, security = couch.request("GET", f"{db_path(db)}/_security")
    if (security or {}) != header["security"]:
        raise VerifyError(f"{db}: _security differs: {security} != {header['security']}")
    ids = sorted(winners)
    for doc_id in rng.sample(ids, min(sample, len(ids))):
        _check_doc(couch, db, winners[doc_id], leaves[doc_id])
    return live


def _check_doc(couch: Couch, db: str, want: dict[str, Any], leaves: list[dict[str, Any]]
               ) -> None:
    path = f"{db_path(db)}/{db_path(want['_id'])}"
    params = {"rev": want["_rev"], "revs": True, "attachments": True}
    _, got = couch.request("GET", path, params)
    if _comparable(got) != _comparable(want):
        raise VerifyError(f"{db}/{want['_id']}: restored revision differs from the snapshot")
    if not want.get("_deleted"):
        _, current = couch.request("GET", path, {"conflicts": True})
        conflicts = sorted(current.get("_conflicts", []))
        expected = sorted(d["_rev"] for d in leaves
                          if d is not want and not d.get("_deleted"))
        if current["_rev"] != want["_rev"] or conflicts != expected:
            raise VerifyError(f"{db}/{want['_id']}: winner or conflicts differ")


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k != "_attachments"}
    out["_attachments"] = {
        name: (att.get("content_type"), base64.b64decode(att.get("data", "")))
        for name, att in (doc.get("_attachments") or {}).items()
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Restore and verify a Doorstep backup.")
    parser.add_argument("snapshot", type=Path, help="a folder written by couch_backup.py")
    parser.add_argument("--verify-only", action="store_true", help="only compare, write nothing")
    parser.add_argument("--sample", type=int, default=50, help="documents compared per database")
    args = parser.parse_args(argv)
    try:
        manifest = json.loads((args.snapshot / "manifest.json").read_text())
        couch = Couch.from_env()
        rng = random.Random()
        for db, entry in manifest["databases"].items():
            path = args.snapshot / entry["file"]
            if not args.verify_only:
                n = restore_database(couch, db, path)
                print(f"restored {db}: {n} revisions", flush=True)
            live = verify_database(couch, db, path, args.sample, rng)
            print(f"verified {db}: {live} documents, sample matches", flush=True)
    except (CouchError, VerifyError, OSError, ValueError, KeyError) as exc:
        print(f"couch_restore: {exc}", file=sys.stderr)
        return 1
    print("restore verified" if not args.verify_only else "snapshot matches the server")
    return 0


if __name__ == "__main__":
    sys.exit(main())
