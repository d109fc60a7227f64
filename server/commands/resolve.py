"""`doorstep resolve [--once]`: merge conflicting household revisions in every grid database.

`doorstep serve` already runs the resolver in the background; this command is for running it
on its own (a separate process, a cron job, or once after an outage). Running it next to the
server is safe: both compute the same merges and write the same revisions.
"""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from server import settings as settings_mod
from server.errors import ConfigError
from server.runtime import couch_connection
from sync import resolver


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("resolve", help="merge conflicting household revisions")
    p.add_argument("--once", action="store_true",
                   help="one pass over every grid database, then exit (else run until stopped)")
    p.add_argument("--batch-size", type=int, default=resolver.BATCH_SIZE, metavar="N",
                   help=f"changes read per request (default {resolver.BATCH_SIZE})")
    p.add_argument("--interval", type=float, default=resolver.INTERVAL, metavar="SECONDS",
                   help=f"pause between passes without --once (default {resolver.INTERVAL})")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.interval <= 0:
        raise ConfigError(f"--interval must be more than 0 seconds, got {args.interval}")
    settings = settings_mod.from_env()
    with couch_connection(settings) as couch:
        if not args.once:
            stop = threading.Event()

            def on_term(signum: int, frame: FrameType | None) -> None:
                stop.set()

            signal.signal(signal.SIGTERM, on_term)
            try:
                resolver.run_forever(couch, stop, args.interval, args.batch_size)
            except KeyboardInterrupt:
                stop.set()
            return 0
        total = resolver.Stats()
        for db, stats in resolver.Resolver(couch, args.batch_size).run_once().items():
            total.add(stats)
            if stats.merged or stats.moved or stats.left_alone:
                print(f"{db}: {stats.merged} merged, {stats.moved} moved away, "
                      f"{stats.conflicts} conflict record(s), {stats.left_alone} left alone")
        print(f"resolved {total.merged} household(s); {total.conflicts} new conflict record(s) "
              f"for a supervisor; {total.changes} change(s) read")
    return 0
