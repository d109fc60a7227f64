"""What a notification says: small payloads in the device's language, with a deep link.

Texts come from the server's catalogues (server/locales, keys `push.*`; zh-CN unless the
device subscribed in English). A payload names an address and a reason, never a resident:
a notification shows on a locked screen. Push services accept about 4 KB; we stay far
below it by cutting free text.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from server import i18n

APP = "/app/"
CONSOLE_NEEDS = "/console/needs?state=raised"
MAX_TEXT = 80


def language(tag: str | None) -> str:
    """The catalogue for a browser language tag: English for en-*, otherwise Chinese."""
    return i18n.pick(tag) or i18n.DEFAULT


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def address(household: dict[str, Any] | None, fallback: str, lang: str) -> str:
    a = (household or {}).get("address")
    if not isinstance(a, dict):
        return fallback
    unit = a.get("unit") or ""
    unit_part = i18n.translate(lang, "push.address_unit", unit=unit) if unit else ""
    return i18n.translate(lang, "push.address", building=a.get("building", ""),
                          unit_part=unit_part, room=a.get("room", ""))


def deep_link(request: dict[str, Any], ref: dict[str, Any]) -> str:
    """Where a tap opens the app: the route of that assignment, visit or household."""
    kind = request["kind"]
    if kind == "urgent_need":
        return CONSOLE_NEEDS  # a supervisor's: the console's list of needs to dispatch
    if kind == "assignment" and request.get("ref"):
        return f"{APP}#/assignment/{quote(request['ref'], safe=':')}"
    if kind == "returned_visit" and ref.get("visit"):
        return f"{APP}#/v/{quote(ref['visit'], safe=':')}/amend"
    if request.get("household"):
        return f"{APP}#/household/{quote(request['household'], safe='')}"
    return f"{APP}#/due" if kind == "digest" else APP


def payload(request: dict[str, Any], household: dict[str, Any] | None,
            ref: dict[str, Any] | None, lang: str) -> dict[str, Any]:
    """The notification for one device. `ref` is the assignment, review or visit it is about."""
    kind = request["kind"]
    ref = ref or {}
    where = address(household, request.get("household", ""), lang)
    values = {
        "address": where,
        "due": ref.get("due", ""),
        "reason": _cut(ref.get("reason", "")),
        "text": _cut(request.get("text", "")),
        **{k: int(v) for k, v in (request.get("counts") or {}).items()},
    }
    return {
        "kind": kind,
        "title": i18n.translate(lang, f"push.{kind}.title"),
        "body": i18n.translate(lang, f"push.{kind}.body", **values),
        "url": deep_link(request, ref),
        # One notification per subject on the phone; a newer digest replaces the last one.
        "tag": kind if kind == "digest" else f"{kind}:{request.get('ref') or request['_id']}",
        "lang": lang,
    }
