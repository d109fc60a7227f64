"""Translations for pages the server renders (login now, the console later).

Catalogues are flat JSON files in `server/locales/<locale>.json` ("login.title": "登录"),
one per locale, with the same keys in each (tests/gateway/test_i18n.py checks). zh-CN is the
default; English is the other. To add text: add the key to every catalogue and call
`t("the.key")` in the template (`t` is in every page's context) or `translate(locale, key)`
in Python. Parameters use `{name}`: `t("login.retry_after", seconds=30)`.

JSON rather than gettext .po files, so the field app (i18next) and the server share one
format and a translator edits one kind of file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

from starlette.requests import Request

LOCALES = ("zh-CN", "en")
DEFAULT = "zh-CN"
COOKIE = "doorstep_lang"
CATALOGUES = Path(__file__).resolve().parent / "locales"


@cache
def catalogue(locale: str) -> dict[str, str]:
    return json.loads((CATALOGUES / f"{locale}.json").read_text(encoding="utf-8"))


def translate(locale: str, key: str, **params: object) -> str:
    text = catalogue(locale).get(key) or catalogue(DEFAULT).get(key) or key
    return text.format(**params) if params else text


def translator(locale: str) -> Callable[..., str]:
    def t(key: str, **params: object) -> str:
        return translate(locale, key, **params)

    return t


def pick(value: str | None) -> str | None:
    """The supported locale a language tag names (zh, zh-cn, zh-Hans → zh-CN), or None."""
    if not value:
        return None
    tag = value.strip().lower()
    if tag.startswith("zh"):
        return "zh-CN"
    if tag.startswith("en"):
        return "en"
    return None


def negotiate(request: Request) -> str:
    """`?lang=`, then the language cookie, then Accept-Language, then zh-CN."""
    for candidate in (request.query_params.get("lang"), request.cookies.get(COOKIE)):
        locale = pick(candidate)
        if locale:
            return locale
    weighted = []
    for part in request.headers.get("accept-language", "").split(","):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        locale = pick(tag)
        if locale and weight > 0:
            weighted.append((weight, locale))
    return max(weighted, key=lambda w: w[0])[1] if weighted else DEFAULT
