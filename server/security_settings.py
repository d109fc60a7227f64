"""Settings of logins, sessions and the replication gateway, from the environment.

Kept apart from `server.settings` so the access layer reads its own knobs in one place; every
value has a production default and tests set tiny ones (a 2-second session, 3 failures).

| variable | default | meaning |
|---|---|---|
| `DOORSTEP_SESSION_SECONDS` | 2592000 (30 days) | a session ends after this long unused |
| `DOORSTEP_SESSION_CACHE_SECONDS` | 10 | how long a replica trusts a session it checked |
| `DOORSTEP_LOGIN_FAILURES_PER_ACCOUNT` | 5 | failed logins per account per window |
| `DOORSTEP_LOGIN_FAILURES_PER_ADDRESS` | 20 | failed logins per client address per window |
| `DOORSTEP_LOGIN_WINDOW_SECONDS` | 900 | the rate-limit window |
| `DOORSTEP_GATEWAY_MAX_BODY_BYTES` | 16777216 | largest request body the gateway accepts |
| `DOORSTEP_GATEWAY_TIMEOUT_SECONDS` | 60 | how long the gateway waits for CouchDB (not feeds) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from server.errors import ConfigError


@dataclass(frozen=True)
class SecuritySettings:
    session_seconds: float = 30 * 24 * 3600.0
    session_cache_seconds: float = 10.0
    login_failures_per_account: int = 5
    login_failures_per_address: int = 20
    login_window_seconds: float = 900.0
    max_body_bytes: int = 16 * 1024 * 1024
    upstream_timeout_seconds: float = 60.0

    @property
    def session_renew_seconds(self) -> float:
        """Renew a session at most this often: a write per device per day, not per request."""
        return self.session_seconds / 30


_VARS = {
    "session_seconds": "DOORSTEP_SESSION_SECONDS",
    "session_cache_seconds": "DOORSTEP_SESSION_CACHE_SECONDS",
    "login_failures_per_account": "DOORSTEP_LOGIN_FAILURES_PER_ACCOUNT",
    "login_failures_per_address": "DOORSTEP_LOGIN_FAILURES_PER_ADDRESS",
    "login_window_seconds": "DOORSTEP_LOGIN_WINDOW_SECONDS",
    "max_body_bytes": "DOORSTEP_GATEWAY_MAX_BODY_BYTES",
    "upstream_timeout_seconds": "DOORSTEP_GATEWAY_TIMEOUT_SECONDS",
}


def from_env(env: dict[str, str] | None = None) -> SecuritySettings:
    env = dict(os.environ if env is None else env)
    values: dict[str, float | int] = {}
    defaults = SecuritySettings()
    for field_name, var in _VARS.items():
        raw = env.get(var)
        if not raw:
            continue
        kind = type(getattr(defaults, field_name))
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(f"{var} must be a number, got {raw!r}") from None
        if value < 0 or (value == 0 and field_name != "session_cache_seconds"):
            raise ConfigError(f"{var} must be greater than 0, got {raw!r}")
        values[field_name] = value
    return SecuritySettings(**values)  # type: ignore[arg-type]
