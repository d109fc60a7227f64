"""Every text the field app shows comes from both catalogues (zh-CN and English)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from server.pwa_routes import ROOT

PWA = ROOT / "pwa"
PLURAL = re.compile(r"_(zero|one|two|few|many|other)$")

# Keys built at run time from a known set of values.
FAMILIES = {
    "outcome": ["met", "nobody_home", "refused", "vacant", "moved_away"],
    "visit_type": ["sweep", "special_care", "follow_up", "patrol"],
    "need": ["medical", "elderly_care", "housing_repair", "employment", "social_assistance",
             "safety", "dispute", "other"],
    "need_state": ["raised", "dispatched", "claimed", "resolved", "evaluated", "closed"],
    "filter": ["week", "overdue", "special", "never", "returned", "conflict", "assignment"],
    "housing": ["owner", "rented", "vacant"],
    "residency": ["registered", "floating"],
    "due": ["overdue", "week", "later"],
    "me": ["language_zh-CN", "language_en"],
    "push.state": ["on", "off", "unknown", "unsupported", "denied"],
    "push.error": ["network", "server", "unsupported"],
    # Ledger paths (sync/schema.py HOUSEHOLD_FIELDS and MEMBER_FIELDS), named in conflicts.
    "household": ["micro_grid", "address", "housing", "residency", "tags", "phone", "note"],
    "member": ["name", "relation", "birth_year", "phone", "id_number", "tags", "status"],
}


def flatten(tree: dict, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for k, v in tree.items():
        path = f"{prefix}{k}"
        keys |= flatten(v, path + ".") if isinstance(v, dict) else {PLURAL.sub("", path)}
    return keys


def catalogue(lng: str) -> set[str]:
    return flatten(json.loads((PWA / "locales" / f"{lng}.json").read_text()))


def used_keys() -> set[str]:
    keys = set()
    for path in list((PWA / "js").rglob("*.js")) + list((PWA / "push").glob("*.js")):
        keys |= set(re.findall(r"\bt\('([a-z_.\-A-Z]+)'", path.read_text()))
    for family, values in FAMILIES.items():
        keys |= {f"{family}.{v}" for v in values}
    return keys


def test_both_catalogues_hold_the_same_keys() -> None:
    assert catalogue("zh-CN") == catalogue("en")


def test_every_key_the_code_uses_is_in_the_catalogues() -> None:
    missing = used_keys() - catalogue("zh-CN")
    assert not missing, sorted(missing)


def test_the_families_match_the_code() -> None:
    """The run-time keys above are the same lists the code uses, not a copy gone stale."""
    visits = (PWA / "js" / "visits.js").read_text()
    for family in ("outcome", "visit_type", "need"):
        name = {"outcome": "OUTCOMES", "visit_type": "VISIT_TYPES", "need": "NEED_CATEGORIES"}
        listed = re.search(rf"{name[family]} = \[(.*?)\];", visits, re.S).group(1)
        assert re.findall(r"'([a-z_]+)'", listed) == FAMILIES[family]
    listing = (PWA / "js" / "listing.js").read_text()
    assert re.findall(r"'([a-z]+)'", re.search(r"FILTERS = \[(.*?)\]", listing).group(1)) == (
        FAMILIES["filter"])


def test_ledger_paths_are_the_schema_s() -> None:
    from sync import schema

    assert FAMILIES["household"] == list(schema.HOUSEHOLD_FIELDS)
    assert FAMILIES["member"] == list(schema.MEMBER_FIELDS)


def test_no_text_is_written_into_the_views() -> None:
    """Chinese characters belong in the catalogues, not in the code."""
    han = re.compile(r"[\u4e00-\u9fff]")
    offenders = []
    for path in (PWA / "js").rglob("*.js"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = "" if line.lstrip().startswith(("*", "/*")) else line.split("//")[0]
            if han.search(code) and "栋" not in code:  # model.js: search text in Chinese
                offenders.append(f"{path.relative_to(ROOT)}:{n}")
    assert not offenders, offenders


def test_catalogue_files_are_valid_json(tmp_path: Path) -> None:
    for lng in ("zh-CN", "en"):
        assert json.loads((PWA / "locales" / f"{lng}.json").read_text())
