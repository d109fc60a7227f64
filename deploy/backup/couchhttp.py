"""A few lines of HTTP for the backup tools: standard library only, so they run anywhere
Python 3.11 does (the Doorstep image, a backup host) without the project installed."""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode, urlsplit


class CouchError(Exception):
    pass


class Couch:
    def __init__(self, url: str, user: str, password: str, timeout: float = 120) -> None:
        self.url = url.rstrip("/")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Accept": "application/json",
                        "Content-Type": "application/json"}
        self.timeout = timeout

    @classmethod
    def from_env(cls, prefix: str = "DOORSTEP_COUCHDB") -> Couch:
        url, user, password = (os.environ.get(f"{prefix}_{k}") for k in
                               ("URL", "USER", "PASSWORD"))
        if not (url and user and password):
            raise CouchError(f"set {prefix}_URL, {prefix}_USER and {prefix}_PASSWORD")
        return cls(url, user, password)

    @property
    def public_url(self) -> str:
        """The address without any credentials, for manifests and messages."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"

    def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                body: Any = None, ok: tuple[int, ...] = (200,)) -> tuple[int, Any]:
        query = ""
        if params:
            query = "?" + urlencode({k: v if isinstance(v, str) else json.dumps(v)
                                     for k, v in params.items()})
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(3):
            req = urllib.request.Request(f"{self.url}/{path}{query}", data=data, method=method,
                                         headers=self.headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as r:
                    status, raw = r.status, r.read()
                break
            except urllib.error.HTTPError as exc:
                status, raw = exc.code, exc.read()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                # An idle keep-alive closed by the server, or a node restarting: retry.
                if attempt == 2:
                    raise CouchError(f"{self.public_url} unreachable: {exc}") from None
                time.sleep(1 + attempt)
        payload = json.loads(raw) if raw else None
        if status not in ok:
            raise CouchError(f"{method} /{path} answered {status}: {payload}")
        return status, payload


def db_path(name: str) -> str:
    return quote(name, safe="")


def file_name(db: str) -> str:
    """A database name as a file name: `/` and other specials escaped, reversible."""
    return quote(db, safe="") + ".jsonl.gz"
