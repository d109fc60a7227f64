"""`doorstep serve`: start CouchDB (embedded unless configured), provision, serve HTTP."""

from __future__ import annotations

import argparse
import signal
import sys

import uvicorn

from server import settings as settings_mod
from server.app import create_app
from server.runtime import couch_connection, require_free_port
from sync.provision import provision


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the server")
    p.add_argument("--demo", action="store_true",
                   help="on first start, load a small demo community and print its accounts")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_mod.from_env()
    settings_mod.ensure_var_dir(settings)
    require_free_port(settings.host, settings.port)
    with couch_connection(settings, own=True) as couch:
        for line in provision(couch):
            print(f"provision: {line}")
        if args.demo:
            from sync import demo

            for line in demo.ensure_demo(couch):
                print(line)
        app = create_app(settings, couch)
        print(f"Doorstep is running at http://{settings.host}:{settings.port}/", flush=True)
        # uvicorn shuts down gracefully on SIGTERM, then raises the signal again with the
        # handler it found: by default that ends the process on the spot and leaves the
        # embedded CouchDB running. An exit instead lets `couch_connection` stop it.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                    proxy_headers=bool(settings.trusted_proxies),
                    forwarded_allow_ips=",".join(settings.trusted_proxies) or None)
    return 0
