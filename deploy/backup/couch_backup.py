"""Back up every database of a CouchDB 3 server (or the embedded pouchdb-server).

    python deploy/backup/couch_backup.py /backups                       # one snapshot
    python deploy/backup/couch_backup.py --every-hours 24 --keep 14 /backups  # scheduled
    python deploy/backup/couch_backup.py --include /var/lib/doorstep/secrets.json /backups

Connection from DOORSTEP_COUCHDB_URL, DOORSTEP_COUCHDB_USER and DOORSTEP_COUCHDB_PASSWORD
(a server admin). A snapshot is a folder `<root>/<UTC time>/` with `manifest.json` and,
per database, `<db>.jsonl.gz`: the first line holds the database's `_security`, every
other line one leaf revision of one document, with its revision history (`_revisions`) and
attachments inline. Leaves include deleted documents and unresolved conflicts, so a restore
(`couch_restore.py`) brings back exactly the same revision trees, and devices that
replicate with the restored server see nothing new and nothing lost. `_local` documents
(replication checkpoints) are left out: a device whose checkpoint is gone compares revisions
once and goes on. A snapshot is written under a temporary name and renamed when complete.

`--include FILE` (repeatable) copies files that are not in CouchDB into the snapshot's
`files/` folder, readable by its owner only: the server's `secrets.json` (session signing
key, Web Push key), without which a restored server logs every user out and every phone
loses its push subscription.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from couchhttp import Couch, CouchError, db_path, file_name

log = logging.getLogger("doorstep.backup")

PAGE = 500  # leaf revisions per _bulk_get


def backup_database(couch: Couch, db: str, out: Path) -> dict[str, int]:
    """Write one database; return what was written (leaves, deleted leaves, distinct ids)."""
    _, security = couch.request("GET", f"{db_path(db)}/_security")
    leaves = deleted = 0
    ids: set[str] = set()
    since: Any = 0
    with gzip.open(out, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"db": db, "security": security or {}}) + "\n")
        while True:
            _, page = couch.request("GET", f"{db_path(db)}/_changes",
                                    {"style": "all_docs", "limit": PAGE, "since": since})
            rows = page["results"]
            if not rows:
                break
            since = page["last_seq"]
            wanted = [{"id": r["id"], "rev": c["rev"]} for r in rows for c in r["changes"]]
            _, got = couch.request("POST", f"{db_path(db)}/_bulk_get",
                                   {"revs": True, "attachments": True}, {"docs": wanted})
            for result in got["results"]:
                for entry in result["docs"]:
                    doc = entry.get("ok")
                    if doc is None:  # a leaf compacted away between the two requests
                        continue
                    f.write(json.dumps(doc, ensure_ascii=False) + "\n")
                    leaves += 1
                    deleted += bool(doc.get("_deleted"))
                    ids.add(doc["_id"])
    return {"leaves": leaves, "deleted_leaves": deleted, "ids": len(ids)}


def snapshot(couch: Couch, root: Path, include: Sequence[Path] = ()) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    partial = root / f".partial-{stamp}"
    partial.mkdir(parents=True)
    files = copy_files(include, partial / "files")
    _, dbs = couch.request("GET", "_all_dbs")
    manifest: dict[str, Any] = {"format": 1, "source": couch.public_url,
                                "started_at": stamp, "files": files, "databases": {}}
    for db in dbs:
        _, info = couch.request("GET", db_path(db))
        written = backup_database(couch, db, partial / file_name(db))
        manifest["databases"][db] = {"file": file_name(db), "doc_count": info.get("doc_count"),
                                     **written}
        log.info("backed up %s: %d leaves", db, written["leaves"])
    manifest["finished_at"] = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=2))
    final = root / stamp
    partial.rename(final)
    return final


def copy_files(include: Sequence[Path], folder: Path) -> list[str]:
    """Copy each file (owner-only, like the secrets it holds); their names, for the manifest."""
    names = [path.name for path in include]
    if len(set(names)) != len(names):
        raise ValueError(f"--include names two files of the same name: {names}")
    for path in include:
        folder.mkdir(mode=0o700, exist_ok=True)
        target = folder / path.name
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(path.read_bytes())
    return names


def prune(root: Path, keep: int) -> list[Path]:
    done = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    old = done[:-keep] if keep > 0 else []
    for path in old:
        shutil.rmtree(path)
    for stale in root.glob(".partial-*"):  # left by a run that was killed
        shutil.rmtree(stale)
    return old


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(description="Back up every CouchDB database.")
    parser.add_argument("root", type=Path, help="folder that receives one snapshot per run")
    parser.add_argument("--every-hours", type=float, default=0,
                        help="keep running, one snapshot every this many hours")
    parser.add_argument("--keep", type=int, default=0,
                        help="after each snapshot, delete all but the newest N (0: keep all)")
    parser.add_argument("--include", type=Path, action="append", default=[], metavar="FILE",
                        help="also copy this file into the snapshot (e.g. secrets.json)")
    args = parser.parse_args(argv)
    try:
        couch = Couch.from_env()
        unreadable = [str(p) for p in args.include if not os.access(p, os.R_OK)]
        if unreadable:
            raise CouchError(f"--include: cannot read {', '.join(unreadable)}")
    except CouchError as exc:
        print(f"couch_backup: {exc}", file=sys.stderr)
        return 2
    while True:
        try:
            path = snapshot(couch, args.root, args.include)
            print(f"snapshot written: {path}", flush=True)
            if args.keep:
                removed = prune(args.root, args.keep)
                print(f"kept the newest {args.keep}, removed {len(removed)}", flush=True)
        except (CouchError, OSError, ValueError) as exc:
            print(f"couch_backup: {exc}", file=sys.stderr, flush=True)
            if not args.every_hours:
                return 1
        if not args.every_hours:
            return 0
        time.sleep(args.every_hours * 3600)


if __name__ == "__main__":
    sys.exit(main())
