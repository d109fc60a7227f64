"""`doorstep`: the command line. Each sub-command lives in its own module in server/commands.

Any `ConfigError` (or an account/import error a person can fix) ends the command with one
line on stderr and exit code 2; a traceback is never the answer to a bad setting.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib import import_module

from server.errors import ConfigError
from server.settings import VERSION

COMMANDS = ("serve", "migrate", "user", "resolve", "import_ledger", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="doorstep", description="Doorstep field-visit server")
    parser.add_argument("--version", action="version", version=f"doorstep {VERSION}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = import_module(f"server.commands.{name}")
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ConfigError as exc:
        print(f"doorstep: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
