"""One Web Push send: encrypt, sign, POST with a timeout, and say what the answer means."""

from __future__ import annotations

import json
import threading
import time
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from pywebpush import WebPushException, webpush

from server.push.keys import VapidKeys
from sync.push_outbox import Outcome, parse_iso


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After is either seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


class Sender:
    """Thread-safe: each worker thread keeps its own HTTP session (connection reuse)."""

    def __init__(self, keys: VapidKeys, contact: str, timeout: float) -> None:
        self.keys = keys
        self.contact = contact
        self.timeout = timeout
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def send(self, subscription: dict[str, Any], delivery: dict[str, Any]) -> Outcome:
        ttl = max(0, int(parse_iso(delivery["expires_at"]) - time.time()))
        headers = {"Urgency": delivery["urgency"]}
        if delivery.get("topic"):
            headers["Topic"] = delivery["topic"]
        try:
            response = webpush(
                {"endpoint": subscription["endpoint"], "keys": subscription["keys"]},
                data=json.dumps(delivery["payload"], ensure_ascii=False, separators=(",", ":")),
                vapid_private_key=self.keys.vapid,
                # pywebpush writes `aud` and `exp` into this dict: a fresh one per send.
                vapid_claims={"sub": self.contact},
                ttl=ttl,
                headers=headers,
                timeout=self.timeout,
                requests_session=self._session(),
            )
        except WebPushException as exc:
            status = exc.status_code
            body = getattr(exc.response, "text", "") or ""
            return Outcome(status, retry_after_seconds(exc.retry_after),
                           f"HTTP {status}: {body[:200]}" if status else exc.message)
        except requests.RequestException as exc:
            return Outcome(None, None, f"no answer from the push service ({type(exc).__name__})")
        return Outcome(response.status_code)  # type: ignore[union-attr]
