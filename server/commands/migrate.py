"""`doorstep migrate`: provision databases, security and views (idempotent)."""

from __future__ import annotations

import argparse

from server import settings as settings_mod
from server.runtime import couch_connection
from sync.provision import provision


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("migrate", help="create or update databases, security and views")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_mod.from_env()
    with couch_connection(settings) as couch:
        changes = provision(couch)
    for line in changes:
        print(line)
    print(f"{len(changes)} change(s)" if changes else "already up to date")
    return 0
