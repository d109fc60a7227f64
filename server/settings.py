"""Settings from the environment, and secrets generated on first run.

Every setting is an environment variable (documented in deploy/doorstep.env.example). Secrets
live in `<var>/secrets.json`, created with mode 0600 the first time they are needed and
never committed.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server import errors
from server.push.keys import new_private_key as new_vapid_key

VERSION = "0.1.0"


@dataclass(frozen=True)
class Settings:
    var_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    couchdb_url: str | None = None  # None: start the embedded pouchdb-server
    couchdb_user: str | None = None
    couchdb_password: str | None = None
    db_prefix: str = ""
    https: bool = False  # behind a TLS proxy: cookies get Secure
    trusted_proxies: tuple[str, ...] = ()
    node: str = "node"
    background: bool = True  # run background jobs (resolver, outbox, ...) in this process
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def secrets_path(self) -> Path:
        return self.var_dir / "secrets.json"


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise errors.ConfigError(f"{name} must be a whole number, got {value!r}") from None


def from_env(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    url = env.get("DOORSTEP_COUCHDB_URL") or None
    user = env.get("DOORSTEP_COUCHDB_USER") or None
    password = env.get("DOORSTEP_COUCHDB_PASSWORD") or None
    if url and not url.startswith(("http://", "https://")):
        raise errors.ConfigError(
            f"DOORSTEP_COUCHDB_URL must start with http:// or https://, got {url!r}"
        )
    if url and not (user and password):
        raise errors.ConfigError(
            "DOORSTEP_COUCHDB_URL is set, so DOORSTEP_COUCHDB_USER and "
            "DOORSTEP_COUCHDB_PASSWORD must be set too (a CouchDB admin account)"
        )
    return Settings(
        var_dir=Path(env.get("DOORSTEP_VAR", "var")).resolve(),
        host=env.get("DOORSTEP_HOST", "127.0.0.1"),
        port=_int("DOORSTEP_PORT", env.get("DOORSTEP_PORT", "8000")),
        couchdb_url=url.rstrip("/") if url else None,
        couchdb_user=user,
        couchdb_password=password,
        db_prefix=env.get("DOORSTEP_DB_PREFIX", ""),
        https=env.get("DOORSTEP_HTTPS", "") in ("1", "true", "yes"),
        trusted_proxies=tuple(p for p in env.get("DOORSTEP_TRUSTED_PROXIES", "").split(",") if p),
        node=env.get("DOORSTEP_NODE", "node"),
        background=env.get("DOORSTEP_BACKGROUND", "1") not in ("0", "false", "no"),
    )


def number_setting(env: Mapping[str, str], name: str, default: float, lo: float, hi: float
                   ) -> float:
    """A numeric setting between `lo` and `hi`; missing or empty means `default`."""
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not lo <= value <= hi:
        raise errors.ConfigError(f"{name} must be a number from {lo:g} to {hi:g}, got {raw!r}")
    return value


def timezone_setting(env: Mapping[str, str]) -> ZoneInfo:
    """DOORSTEP_TIMEZONE (default Asia/Shanghai): what "today" and a day mean."""
    value = env.get("DOORSTEP_TIMEZONE") or "Asia/Shanghai"
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise errors.ConfigError(
            f"DOORSTEP_TIMEZONE must be a time zone name such as Asia/Shanghai, got {value!r}"
        ) from None


def ensure_var_dir(settings: Settings) -> None:
    try:
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        probe = settings.var_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise errors.ConfigError(
            f"cannot write to the data folder {settings.var_dir} ({exc.strerror}); "
            "set DOORSTEP_VAR to a folder this user can write"
        ) from None


def load_secrets(settings: Settings) -> dict[str, str]:
    """Read the secrets file, adding any secret that is missing; only the owner may read it."""
    ensure_var_dir(settings)
    path = settings.secrets_path
    data: dict[str, str] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise errors.ConfigError(
                f"the secrets file {path} is unreadable ({exc}); restore it from a backup"
            ) from None
    wanted = {
        "session_key": lambda: secrets.token_urlsafe(48),
        "embedded_admin_user": lambda: "doorstep_admin",
        "embedded_admin_password": lambda: secrets.token_urlsafe(24),
        "vapid_private_key": new_vapid_key,  # Web Push; see server/push/keys.py
    }
    missing = {k: make() for k, make in wanted.items() if k not in data}
    if missing:
        data.update(missing)
        write_secrets(settings, data)
    return data


def write_secrets(settings: Settings, data: dict[str, str]) -> None:
    path = settings.secrets_path
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
