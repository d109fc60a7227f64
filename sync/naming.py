"""Database names: one per grid, plus the system databases, all under an optional prefix."""

from __future__ import annotations

import hashlib
import re

_ALLOWED = re.compile(r"[^a-z0-9_$()+\-]")

DIRECTORY = "doorstep_directory"
HUB = "doorstep_hub"
SESSIONS = "doorstep_sessions"
PUSH = "doorstep_push"  # push subscriptions and requests (sync/push_outbox.py)
PUSH_OUTBOX = "doorstep_push_outbox"  # deliveries, one per device and request
LEASES = "doorstep_leases"  # who runs each background job (sync/leases.py)
DEVICES = "doorstep_devices"  # what each phone last reported of its sync (sync/devices.py)
SYSTEM = (DIRECTORY, HUB, SESSIONS, PUSH, PUSH_OUTBOX, LEASES, DEVICES)


def grid_db_name(grid_id: str, prefix: str = "") -> str:
    """`g_<grid>`: CouchDB wants lower case and few symbols; a hash keeps mapped ids distinct."""
    slug = _ALLOWED.sub("_", grid_id.lower())
    if slug != grid_id:
        slug = f"{slug}_{hashlib.sha1(grid_id.encode()).hexdigest()[:6]}"
    return f"{prefix}g_{slug}"


def system_db(name: str, prefix: str = "") -> str:
    return f"{prefix}{name}"


def is_grid_db(db_name: str, prefix: str = "") -> bool:
    return db_name.startswith(f"{prefix}g_")
