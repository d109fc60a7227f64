"""`doorstep user`: create workers, supervisors and admins; reset passwords; deactivate."""

from __future__ import annotations

import argparse
import sys

from server import settings as settings_mod
from server.errors import ConfigError
from server.runtime import couch_connection
from sync import accounts
from sync.directory import Directory


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("user", help="manage accounts")
    users = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = users.add_parser("add", help="create or update an account")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=accounts.ROLES)
    add.add_argument("--grid", action="append", default=[], help="a grid id (workers; repeat)")
    add.add_argument("--community", action="append", default=[],
                     help="a community id (supervisors; repeat)")
    add.add_argument("--display-name", default="")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from standard input (else one is generated)")
    passwd = users.add_parser("passwd", help="reset a password")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true")
    off = users.add_parser("deactivate", help="stop an account from logging in")
    off.add_argument("name")
    users.add_parser("list", help="list accounts")
    p.set_defaults(run=run)


def _password(args: argparse.Namespace) -> str | None:
    return sys.stdin.readline().strip() if args.password_stdin else None


def run(args: argparse.Namespace) -> int:
    settings = settings_mod.from_env()
    with couch_connection(settings) as couch:
        try:
            if args.action == "add":
                directory = Directory(couch)
                for g in args.grid:
                    if directory.grid(g) is None:
                        raise ConfigError(f"unknown grid {g!r}; create it first")
                for c in args.community:
                    if couch.get(directory.db, f"community:{c}") is None:
                        raise ConfigError(f"unknown community {c!r}; create it first")
                account, password = accounts.create(
                    couch, args.name, args.role, password=_password(args),
                    display_name=args.display_name, grids=args.grid, communities=args.community,
                )
                scope = ", ".join(account.grids or account.communities) or "everything"
                print(f"{account.name}: {account.role} of {scope}")
                if not args.password_stdin:
                    print(f"password: {password}")
            elif args.action == "passwd":
                password = accounts.reset_password(couch, args.name, _password(args))
                print(f"password of {args.name} reset" +
                      ("" if args.password_stdin else f": {password}"))
            elif args.action == "deactivate":
                accounts.deactivate(couch, args.name)
                print(f"{args.name} deactivated")
            else:
                for a in accounts.all_accounts(couch):
                    scope = ",".join(a.grids or a.communities)
                    state = "active" if a.active else "deactivated"
                    print(f"{a.name}\t{a.role}\t{scope}\t{state}\t{a.display_name}")
        except accounts.AccountError as exc:
            raise ConfigError(str(exc)) from None
    return 0
