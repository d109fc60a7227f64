"""A small CouchDB client over pycouchdb, used by everything server-side except the gateway.

It adds what pycouchdb leaves to us: retrying a pooled connection that the server closed
while idle (pouchdb-server's Node drops them after 5 s), one clear error when CouchDB is
unreachable or the credentials are wrong, and raw requests that return status and body.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pycouchdb
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from server.errors import CouchUnavailable

ADMIN_ONLY = {
    "admins": {"names": [], "roles": ["_admin"]},
    "members": {"names": [], "roles": ["_admin"]},
}


class Couch:
    def __init__(self, url: str, user: str, password: str, prefix: str = "", timeout: float = 60):
        parts = urlsplit(url)
        netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname}"
        if parts.port:
            netloc += f":{parts.port}"
        self.url = url.rstrip("/")
        self.prefix = prefix
        self.auth = (user, password)
        self.server = pycouchdb.Server(
            urlunsplit((parts.scheme, netloc, parts.path, "", "")), authmethod="basic",
            timeout=timeout,
        )
        self.session: requests.Session = self.server.resource.session
        # An idle keep-alive connection closed by the server surfaces as a read error on
        # reuse; retry it once, for every method (our writes carry ids and revs).
        retry = Retry(total=1, connect=0, read=1, status=0, allowed_methods=None,
                      backoff_factor=0.1, raise_on_status=False)
        self.session.mount("http://", HTTPAdapter(max_retries=retry, pool_maxsize=16))
        self.session.mount("https://", HTTPAdapter(max_retries=retry, pool_maxsize=16))
        self.timeout = timeout

    # -- raw access --------------------------------------------------------------------

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                body: Any = None, timeout: float | None = None) -> tuple[int, Any]:
        """Send one request; return (status, decoded JSON or None). Raises only when unreachable."""
        data = None if body is None else json.dumps(body).encode()
        try:
            r = self.session.request(
                method, f"{self.url}/{path.lstrip('/')}", params=_encode_params(params),
                data=data, timeout=timeout or self.timeout,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
            )
        except requests.RequestException as exc:
            raise CouchUnavailable(
                f"CouchDB at {self.url} is unreachable ({type(exc).__name__}); "
                "check that it is running and DOORSTEP_COUCHDB_URL is right"
            ) from None
        try:
            return r.status_code, r.json()
        except ValueError:
            return r.status_code, None

    def check(self) -> dict[str, Any]:
        """Fail with one clear line unless CouchDB answers and accepts our admin credentials."""
        status, body = self.request("GET", "_session")
        if status == 401:
            raise CouchUnavailable(
                f"CouchDB at {self.url} refused the admin credentials; check "
                "DOORSTEP_COUCHDB_USER and DOORSTEP_COUCHDB_PASSWORD"
            )
        roles = (body or {}).get("userCtx", {}).get("roles", [])
        if status != 200 or "_admin" not in roles:
            raise CouchUnavailable(
                f"CouchDB at {self.url} did not accept {self.auth[0]!r} as a server admin "
                f"(HTTP {status}); Doorstep needs an admin account"
            )
        return body

    # -- databases -------------------------------------------------------------------------

    def name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    def db(self, name: str) -> pycouchdb.client.Database:
        return self.server.database(name)

    def exists(self, name: str) -> bool:
        status, _ = self.request("HEAD", quote(name, safe=""))
        return status == 200

    def ensure_db(self, name: str) -> bool:
        """Create the database if missing; True when it was created."""
        status, body = self.request("PUT", quote(name, safe=""))
        if status in (201, 202):
            return True
        if status == 412:
            return False
        raise CouchUnavailable(f"could not create database {name}: {status} {body}")

    def ensure_security(self, name: str, security: dict[str, Any] = ADMIN_ONLY) -> bool:
        path = f"{quote(name, safe='')}/_security"
        _, current = self.request("GET", path)
        if _same_security(current or {}, security):
            return False
        status, body = self.request("PUT", path, body=security)
        if status != 200:
            raise CouchUnavailable(f"could not set _security on {name}: {status} {body}")
        return True

    def get(self, db: str, doc_id: str, **params: Any) -> dict[str, Any] | None:
        status, body = self.request("GET", f"{quote(db, safe='')}/{quote(doc_id, safe='')}",
                                    params=params or None)
        if status == 404:
            return None
        if status != 200:
            raise CouchUnavailable(f"reading {db}/{doc_id} failed: {status} {body}")
        return body

    def put(self, db: str, doc: dict[str, Any]) -> dict[str, Any]:
        status, body = self.request(
            "PUT", f"{quote(db, safe='')}/{quote(doc['_id'], safe='')}", body=doc
        )
        if status not in (200, 201, 202):
            raise DocumentRejected(doc["_id"], status, body)
        doc["_rev"] = body["rev"]
        return doc

    def bulk_docs(self, db: str, docs: list[dict[str, Any]], new_edits: bool = True
                  ) -> list[dict[str, Any]]:
        payload: dict[str, Any] = {"docs": docs}
        if not new_edits:
            payload["new_edits"] = False
        status, body = self.request("POST", f"{quote(db, safe='')}/_bulk_docs", body=payload)
        if status not in (201, 202):
            raise CouchUnavailable(f"_bulk_docs on {db} failed: {status} {body}")
        return body

    def all_docs(self, db: str, **params: Any) -> list[dict[str, Any]]:
        status, body = self.request("GET", f"{quote(db, safe='')}/_all_docs", params=params)
        if status != 200:
            raise CouchUnavailable(f"_all_docs on {db} failed: {status} {body}")
        return body["rows"]

    def view(self, db: str, ddoc: str, view: str, **params: Any) -> dict[str, Any]:
        status, body = self.request(
            "GET", f"{quote(db, safe='')}/_design/{ddoc}/_view/{view}", params=params
        )
        if status != 200:
            raise CouchUnavailable(f"view {ddoc}/{view} on {db} failed: {status} {body}")
        return body


class DocumentRejected(Exception):
    def __init__(self, doc_id: str, status: int, body: Any) -> None:
        reason = (body or {}).get("reason") if isinstance(body, dict) else body
        super().__init__(f"{doc_id}: {status} {reason}")
        self.status = status
        self.body = body


def _encode_params(params: dict[str, Any] | None) -> dict[str, str] | None:
    """CouchDB wants JSON for keys and booleans (`key="a"`, `include_docs=true`)."""
    if not params:
        return None
    out = {}
    for k, v in params.items():
        if k in ("key", "keys", "startkey", "endkey", "start_key", "end_key") or not isinstance(
            v, str
        ):
            out[k] = json.dumps(v)
        else:
            out[k] = v
    return out


def _same_security(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def norm(s: dict[str, Any]) -> Any:
        return {
            part: {k: sorted(s.get(part, {}).get(k, [])) for k in ("names", "roles")}
            for part in ("admins", "members")
        }

    return norm(a) == norm(b)
