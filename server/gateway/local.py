"""Each user's `_local` documents (replication checkpoints) kept apart from everyone else's.

PouchDB names a checkpoint `_local/<hash of the replication>`, the same for anyone who
replicates the same pair of databases. So the gateway stores it as
`_local/<user>:<id>` (a user name never contains `:`) and shows the client the id it asked
for: nobody can read or overwrite another user's checkpoint, and nobody notices.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

MAX_BYTES = 64 * 1024  # a checkpoint is a few hundred bytes; this is not a storage area


def stored_id(user: str, client_id: str) -> str:
    return f"_local/{user}:{client_id}"


def upstream_path(db: str, user: str, client_id: str) -> str:
    return f"/{quote(db, safe='')}/_local/{quote(f'{user}:{client_id}', safe='')}"


def to_client(body: Any, user: str, client_id: str) -> Any:
    """Rewrite the stored id back to the client's in a GET or PUT answer."""
    if isinstance(body, dict):
        for key in ("_id", "id"):
            if body.get(key) == stored_id(user, client_id):
                body[key] = f"_local/{client_id}"
    return body


def to_store(body: Any, user: str, client_id: str) -> str | None:
    """Prepare a PUT body in place; return a reason when it cannot be stored."""
    if not isinstance(body, dict):
        return "a _local document must be a JSON object"
    if body.get("_id", f"_local/{client_id}") != f"_local/{client_id}":
        return "the _id in the body must match the URL"
    body["_id"] = stored_id(user, client_id)
    return None
