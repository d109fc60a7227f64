"""Connecting to CouchDB: the configured server, or the embedded one.

`doorstep serve` owns the embedded process and records its address in
`<var>/couchdb/endpoint.json`; other commands (migrate, import, user) reuse that server when
it is running, or start their own for the length of the command. Two processes never open
the same data folder.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from server.embedded_couch import EmbeddedCouch
from server.errors import ConfigError
from server.settings import Settings, load_secrets
from sync.couch import Couch


def _endpoint_file(settings: Settings) -> Path:
    return settings.var_dir / "couchdb" / "endpoint.json"


def _running_embedded(settings: Settings) -> str | None:
    path = _endpoint_file(settings)
    try:
        info = json.loads(path.read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return str(info["url"])


@contextlib.contextmanager
def couch_connection(settings: Settings, *, own: bool = False) -> Iterator[Couch]:
    """Yield a checked admin connection; `own` marks the long-running server process."""
    if settings.couchdb_url:
        couch = Couch(settings.couchdb_url, settings.couchdb_user or "",
                      settings.couchdb_password or "", settings.db_prefix)
        couch.check()
        yield couch
        return
    secrets = load_secrets(settings)
    user, password = secrets["embedded_admin_user"], secrets["embedded_admin_password"]
    url = _running_embedded(settings)
    if own and url:
        raise ConfigError(
            f"another Doorstep server already runs the embedded CouchDB of {settings.var_dir}; "
            "stop it first or set DOORSTEP_VAR to another folder"
        )
    if url:
        couch = Couch(url, user, password, settings.db_prefix)
        couch.check()
        yield couch
        return
    embedded = EmbeddedCouch(settings)
    embedded.start()
    endpoint = _endpoint_file(settings)
    try:
        if own:
            endpoint.write_text(json.dumps({"url": embedded.url, "pid": embedded.pid}))
        couch = Couch(embedded.url, user, password, settings.db_prefix)
        couch.check()
        yield couch
    finally:
        if own:
            endpoint.unlink(missing_ok=True)
        embedded.stop()


def require_free_port(host: str, port: int) -> None:
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            raise ConfigError(
                f"port {port} on {host} is already in use; stop what uses it or set DOORSTEP_PORT"
            ) from None
