"""Import of the household ledger spreadsheets grid offices keep (XLSX or CSV).

The template is one row per person with Chinese headers (sync/ledger_template.py,
docs/import-template.md). The file is streamed: rows are grouped into households (a
household's rows are adjacent), each household is checked and turned into a `household`
document, then compared with what is stored and written in batches, so memory stays flat
however long the file is. A household with any bad row is reported and skipped whole; every
valid household is written, each in one document write, so none is ever half-written.

Re-importing a file changes nothing: unchanged households are not written. An update
changes only what the file says differently, stamps each changed path in `clock` with the
device `import` (so a concurrent edit on a phone merges like any other edit), leaves a
path alone when a worker has edited it in the field since (the field is newer than the
office's spreadsheet), and records an `audit` document of what it changed.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from server.errors import CouchUnavailable
from sync import clock, naming, schema, xlsx_reader
from sync.couch import Couch
from sync.directory import Directory, now
from sync.ledger_template import (
    ADDRESS_FIELDS,
    BY_FIELD,
    COLUMNS,
    HEAD,
    HOUSING_ALIASES,
    HOUSING_WORDS,
    RESIDENCY_ALIASES,
    RESIDENCY_WORDS,
    cell_text,
    header_lookup,
    normalize_header,
    split_tags,
    word_for,
)
from sync.provision import provision_grid

IMPORT_DEVICE = "import"  # the `device` and `by` of every clock stamp an import writes
BATCH = 500  # households per round trip: big enough for throughput, small for memory
WRITERS = 2  # batches in flight at once

# Every kind of problem the import reports, and what it means (the report names the kind).
KINDS = {
    "missing_value": "a required cell is empty",
    "unknown_grid": "网格编号 names no grid in the directory",
    "unknown_micro_grid": "微网格 names no micro-grid of that grid",
    "bad_phone": "联系电话 is not a phone number",
    "bad_id_number": "身份证号 is not a valid resident ID number",
    "bad_value": "a cell holds a value the column does not allow",
    "unknown_tag": "a tag is not in the tag configuration",
    "duplicate_household": "the household appeared earlier in the file",
    "duplicate_person": "the same ID number twice in one household",
    "inconsistent_household": "rows of one household disagree on a household column",
    "moved": "the household was moved to another grid or deleted in Doorstep",
    "write_failed": "CouchDB refused the write (changed during the import)",
}


class LedgerFileError(ValueError):
    """The file cannot be imported at all (unreadable, or its header row is wrong)."""


@dataclass(frozen=True)
class Row:
    number: int  # as the spreadsheet shows it (the header is row 1, usually)
    values: dict[str, str]

    def get(self, name: str) -> str:
        return self.values.get(name, "")


@dataclass(frozen=True)
class Problem:
    row: int
    kind: str
    message: str


@dataclass
class Candidate:
    """One household as the file describes it, before it meets what is stored."""

    rows: list[Row]
    problems: list[Problem] = field(default_factory=list)
    grid: str = ""
    household_id: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    members: list[dict[str, Any]] = field(default_factory=list)
    doc: dict[str, Any] | None = None  # the new household, checked; timestamps set on write

    def problem(self, row: Row, kind: str, message: str) -> None:
        self.problems.append(Problem(row.number, kind, message))


@dataclass(frozen=True)
class Outcome:
    """What happened (or, in a dry run, would happen) to one household."""

    rows: tuple[Row, ...]
    household_id: str
    action: str  # create | update | unchanged | error
    problems: tuple[Problem, ...] = ()
    changed: tuple[str, ...] = ()  # paths an update changes
    kept: tuple[str, ...] = ()  # paths the file would change but a worker edited since


@dataclass
class Summary:
    rows: int = 0
    households: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0  # households skipped because of problems
    problems: int = 0

    def add(self, outcome: Outcome) -> None:
        self.households += 1
        self.rows += len(outcome.rows)
        self.problems += len(outcome.problems)
        attr = {"create": "created", "update": "updated", "unchanged": "unchanged",
                "error": "rejected"}[outcome.action]
        setattr(self, attr, getattr(self, attr) + 1)


# --- reading the file ---------------------------------------------------------------------


@dataclass
class Ledger:
    """An opened ledger file: the columns it has and a one-pass stream of its rows."""

    path: Path
    columns: frozenset[str]
    rows: Iterator[Row]
    total_rows: int | None  # for the progress line, when cheap to know


def open_ledger(path: Path) -> Ledger:
    if not path.is_file():
        raise LedgerFileError(f"{path} does not exist or is not a file")
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        raw: Iterator[tuple[int, list[str]]] = xlsx_reader.iter_rows(path)
        total = xlsx_reader.last_row_hint(path)
    elif suffix == ".csv":
        raw = _csv_rows(path)
        total = _count_lines(path)
    else:
        raise LedgerFileError(f"{path.name}: only .xlsx and .csv ledgers can be imported "
                              "(save an .xls file as .xlsx first)")
    try:
        header_number, mapping = _find_header(raw)
    except xlsx_reader.WorkbookError as exc:
        raise LedgerFileError(str(exc)) from None
    columns = frozenset(f for f in mapping.values() if f)
    total_rows = max(total - header_number, 1) if total else None
    return Ledger(path, columns, _rows(raw, mapping), total_rows)


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    encoding = _csv_encoding(path)
    with path.open(encoding=encoding, newline="") as f:
        sample = f.readline()
        f.seek(0)
        delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
        reader = csv.reader(f, delimiter=delimiter)
        for values in reader:
            if any(v.strip() for v in values):
                yield reader.line_num, values


def _csv_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM), else GB18030: Excel in Chinese saves CSV as GBK."""
    with path.open("rb") as f:
        head = f.read(1 << 16)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8-sig"
    except UnicodeDecodeError:
        return "gb18030"


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def _find_header(raw: Iterator[tuple[int, list[str]]]) -> tuple[int, dict[int, str]]:
    """The header row is the first with three known headers; title rows above are skipped."""
    known = header_lookup()
    for _, (number, values) in zip(range(10), raw, strict=False):
        names = {i: normalize_header(cell_text(v)) for i, v in enumerate(values)}
        names = {i: n for i, n in names.items() if n}
        if sum(n in known for n in names.values()) < 3:
            continue
        unknown = [values[i].strip() for i, n in names.items() if n not in known]
        if unknown:
            raise LedgerFileError(
                f"row {number}: unknown column header(s) {', '.join(unknown)}; "
                "see docs/import-template.md for the accepted headers"
            )
        mapping = {i: known[n] for i, n in names.items()}
        fields = [f for f in mapping.values() if f]
        twice = sorted({BY_FIELD[f].header for f in fields if fields.count(f) > 1})
        if twice:
            raise LedgerFileError(f"row {number}: more than one column for {', '.join(twice)}")
        missing = [c.header for c in COLUMNS if c.required and c.field not in fields]
        if missing:
            raise LedgerFileError(f"row {number}: required column(s) {', '.join(missing)} "
                                  "missing")
        return number, mapping
    raise LedgerFileError("no header row found in the first 10 rows; the template's header "
                          "row names columns such as 网格编号, 楼栋, 房号, 姓名")


def _rows(raw: Iterator[tuple[int, list[str]]], mapping: dict[int, str]) -> Iterator[Row]:
    try:
        for number, values in raw:
            out = {}
            for i, name in mapping.items():
                if name and i < len(values):
                    out[name] = cell_text(values[i])
            yield Row(number, out)
    except xlsx_reader.WorkbookError as exc:
        raise LedgerFileError(str(exc)) from None


def group_households(rows: Iterable[Row]) -> Iterator[list[Row]]:
    """A row whose address cells are blank (or repeat the household's) continues it."""
    group: list[Row] = []
    address: dict[str, str] = {}
    for row in rows:
        own = {k: row.get(k) for k in ADDRESS_FIELDS if row.get(k)}
        if group and all(address.get(k) == v for k, v in own.items()):
            group.append(row)
            continue
        if group:
            yield group
        group, address = [row], own
    if group:
        yield group


# --- the directory, as the import needs it --------------------------------------------------


@dataclass(frozen=True)
class Context:
    grids: dict[str, str]  # grid id, or a name no other grid has → grid id
    micro_grids: dict[str, dict[str, str]]  # grid id → {micro-grid id or name → id}
    tags: dict[str, str]  # zh label, key or English label (lower case) → key
    tag_order: tuple[str, ...]
    tag_config: dict[str, Any]

    @classmethod
    def load(cls, couch: Couch) -> Context:
        directory = Directory(couch)
        grids = directory.grids()
        by_name: dict[str, list[str]] = {}
        for g in grids:
            by_name.setdefault(g.name, []).append(g.id)
        lookup = {name: ids[0] for name, ids in by_name.items() if len(ids) == 1}
        lookup.update({g.id: g.id for g in grids})
        micro: dict[str, dict[str, str]] = {}
        entries = directory.entries("micro_grid")
        for doc in entries:  # names first, so that an id always wins over a name
            micro.setdefault(doc["grid"], {})[doc["name"]] = doc["_id"].split(":", 1)[1]
        for doc in entries:
            mid = doc["_id"].split(":", 1)[1]
            micro[doc["grid"]][mid] = mid
        config = directory.tag_config()
        tags: dict[str, str] = {}
        for tag, spec in config["tags"].items():
            tags.update({spec["en"].lower(): tag, tag: tag, spec["zh"]: tag})
        return cls(lookup, micro, tags, tuple(config["tags"]), config)


# --- checking one household ------------------------------------------------------------------

_SUFFIX = {"building": re.compile(r"(号楼|栋|幢|号|楼)$"), "unit": re.compile(r"单元$"),
           "room": re.compile(r"(室|号)$")}
_PLAIN = re.compile(r"[A-Za-z0-9]+")
_MEMBER_NUMBER = re.compile(r"^m(\d+)$")


def _header(name: str) -> str:
    return BY_FIELD[name].header


def _address_part(name: str, text: str) -> str:
    return _SUFFIX[name].sub("", text) if name in _SUFFIX else text


def _id_part(text: str) -> str:
    return text if not text or _PLAIN.fullmatch(text) else "h" + _digest(text, 4)


def _digest(text: str, size: int) -> str:
    return hashlib.blake2b(text.encode(), digest_size=size).hexdigest()


def household_id(grid: str, building: str, unit: str, room: str) -> str:
    """`G001-3-2-502` (no unit: `G001-3--502`); non-ASCII parts become short hashes."""
    hid = "-".join([grid, _id_part(building), _id_part(unit), _id_part(room)])
    if len(hid) > 64:
        hid = f"{grid[:40]}-h{_digest(hid, 8)}"
    return hid


_SPACE = re.compile(r"\s")
_MOBILE = re.compile(r"1\d{10}")
_FLOOR = re.compile(r"(-?\d+)(层|楼|F)?", re.IGNORECASE)
_ROOM_FLOOR = re.compile(r"\d{3,4}")
_YEAR = re.compile(r"^(\d{4})(?:$|[-./年])")


def _phone(text: str) -> str:
    if _MOBILE.fullmatch(text):
        return text
    t = _SPACE.sub("", text)
    t = t[3:] if t.startswith("+86") else t
    digits = t.replace("-", "")
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits if _MOBILE.fullmatch(digits) else t


def _year(text: str) -> int:
    """出生年份 as offices write it: 1941, 1941-03-07, 1941年3月, or an Excel date serial."""
    m = _YEAR.match(text)
    if m:
        return int(m.group(1))
    if text.isdigit() and 1000 < int(text) < 80000:
        return (date(1899, 12, 30) + timedelta(days=int(text))).year
    raise ValueError(text)


def check_household(rows: list[Row], ctx: Context) -> Candidate:
    """Everything that can be checked without the database; `problems` empty when valid."""
    c = Candidate(rows)
    head = rows[0]
    values = _household_values(c)
    missing = [_header(k) for k in ("grid", "building", "room") if not head.get(k)]
    if missing:
        c.problem(head, "missing_value", f"{'、'.join(missing)} empty: the first row of a "
                  "household must give its grid and address")
        return c
    grid = ctx.grids.get(values["grid"])
    if grid is None:
        c.problem(head, "unknown_grid", f"网格编号 {values['grid']!r} is not a grid in the "
                  "directory; create it first or correct the cell")
    c.grid = grid or values["grid"]
    address = {k: _address_part(k, values[k]) for k in ("building", "unit", "room")}
    if not address["building"] or not address["room"]:
        c.problem(head, "missing_value", "楼栋 and 房号 must name the building and room")
    floor = _floor(c, head, values["floor"], address["room"])
    c.household_id = household_id(c.grid, address["building"], address["unit"], address["room"])
    micro_grid = None
    if values["micro_grid"] and grid:
        micro_grid = ctx.micro_grids.get(grid, {}).get(values["micro_grid"])
        if micro_grid is None:
            c.problem(head, "unknown_micro_grid",
                      f"微网格 {values['micro_grid']!r} is not a micro-grid of {grid}")
    housing = _word(c, head, "housing", values["housing"] or HOUSING_WORDS["owner"],
                    HOUSING_WORDS, HOUSING_ALIASES)
    residency = _word(c, head, "residency", values["residency"] or RESIDENCY_WORDS["registered"],
                      RESIDENCY_WORDS, RESIDENCY_ALIASES)
    own_tags = _tags(c, head, "household_tags", values["household_tags"], ctx)
    seen: dict[str, int] = {}
    for row in rows:
        member = _member(c, row, housing == "vacant", ctx)
        if member is None:
            continue
        c.members.append(member)
        if member["id_number"] in seen:
            c.problem(row, "duplicate_person", f"身份证号 {member['id_number']} is already on "
                      f"row {seen[member['id_number']]} of this household")
        elif member["id_number"]:
            seen[member["id_number"]] = row.number
    all_tags = set(own_tags) | {t for m in c.members for t in m["tags"]}
    head_phone = next((m["phone"] for m in c.members if m["relation"] == HEAD and m["phone"]),
                      next((m["phone"] for m in c.members if m["phone"]), ""))
    c.fields = {
        "micro_grid": micro_grid,
        "address": {"building": address["building"], "unit": address["unit"], "floor": floor,
                    "room": address["room"]},
        "housing": housing,
        "residency": residency,
        "tags": [t for t in ctx.tag_order if t in all_tags],
        "phone": head_phone,
        "note": values["note"],
    }
    if not c.problems:
        try:  # the schema is the last word, e.g. on the length of a note or an address
            c.doc = new_household(c, "2000-01-01T00:00:00Z")
        except schema.SchemaError as exc:
            c.problem(head, "bad_value", f"{exc.field}: {exc.rule}")
    return c


def _household_values(c: Candidate) -> dict[str, str]:
    """Household columns: the first non-blank value; a later different one is a problem."""
    values: dict[str, str] = {}
    for col in COLUMNS:
        if not col.household:
            continue
        values[col.field] = ""
        for row in c.rows:
            v = row.get(col.field)
            if not v:
                continue
            if not values[col.field]:
                values[col.field] = v
            elif v != values[col.field] and col.field not in ADDRESS_FIELDS:
                c.problem(row, "inconsistent_household", f"{col.header} {v!r} differs from "
                          f"{values[col.field]!r} on an earlier row of this household")
    return values


def _floor(c: Candidate, row: Row, text: str, room: str) -> int:
    if not text:
        if _ROOM_FLOOR.fullmatch(room):  # room 502 is on floor 5, 1203 on floor 12
            return int(room[:-2])
        c.problem(row, "missing_value", "楼层 empty and cannot be read from the 房号")
        return 0
    m = _FLOOR.fullmatch(text)
    number = int(m.group(1)) if m else None
    if number is None or schema.floor_number(number):
        c.problem(row, "bad_value", f"楼层 {text!r} must be a whole number between -5 and 200")
        return 0
    return number


def _word(c: Candidate, row: Row, name: str, text: str, words: dict[str, str],
          aliases: dict[str, str]) -> str:
    code = word_for(words, aliases, text)
    if code is None:
        c.problem(row, "bad_value", f"{_header(name)} {text!r} must be one of "
                  f"{'、'.join(words.values())}")
        return next(iter(words))
    return code


def _tags(c: Candidate, row: Row, name: str, text: str, ctx: Context) -> list[str]:
    out: list[str] = []
    for label in split_tags(text):
        tag = ctx.tags.get(label) or ctx.tags.get(label.lower())
        if tag is None:
            known = "、".join(ctx.tag_config["tags"][t]["zh"] for t in ctx.tag_order)
            c.problem(row, "unknown_tag", f"{_header(name)} {label!r} is not a configured tag "
                      f"(known: {known})")
        elif tag not in out:
            out.append(tag)
    return out


_PERSON_FIELDS = ("name", "relation", "birth_year", "phone", "id_number", "person_tags")


def _member(c: Candidate, row: Row, vacant: bool, ctx: Context) -> dict[str, Any] | None:
    if not row.get("name"):
        if vacant and not any(row.get(f) for f in _PERSON_FIELDS):
            return None  # a vacant flat's row describes the household alone
        c.problem(row, "missing_value", "姓名 empty (only a vacant flat may list no person)")
        return None
    phone = _phone(row.get("phone"))
    if schema.phone(phone):
        c.problem(row, "bad_phone", f"联系电话 {row.get('phone')!r} {schema.phone(phone)}")
    id_number = row.get("id_number").replace(" ", "").upper()
    id_ok = False
    if "E+" in id_number or "." in id_number:
        c.problem(row, "bad_id_number", f"身份证号 {row.get('id_number')!r} was stored as a "
                  "number, which loses digits; format the column as text and re-enter it")
    elif schema.id_number(id_number):
        c.problem(row, "bad_id_number", f"身份证号 {id_number!r} {schema.id_number(id_number)}")
    else:
        id_ok = bool(id_number)
    birth = None
    if row.get("birth_year"):
        try:
            birth = _year(row.get("birth_year"))
        except ValueError:
            birth = -1
        if birth == -1 or schema.birth_year(birth):
            c.problem(row, "bad_value", f"出生年份 {row.get('birth_year')!r} is not a year "
                      "between 1900 and now")
            birth = None
    if id_ok:  # a valid ID number carries the birth date
        from_id = int(id_number[6:10])
        if birth is not None and birth != from_id:
            c.problem(row, "bad_value", f"出生年份 {birth} differs from the year in the "
                      f"身份证号 ({from_id})")
        birth = birth or from_id
    name = row.get("name")
    if schema.text(64)(name):
        c.problem(row, "bad_value", "姓名 must be at most 64 characters")
    return {
        "name": name, "relation": row.get("relation")[:32], "birth_year": birth,
        "phone": phone, "id_number": id_number,
        "tags": _tags(c, row, "person_tags", row.get("person_tags"), ctx),
        "status": "present",
    }


# --- meeting what is stored -----------------------------------------------------------------

_MEMBER_COLUMNS = {"relation": ("relation",), "birth_year": ("birth_year", "id_number"),
                   "phone": ("phone",), "id_number": ("id_number",), "tags": ("person_tags",)}
_HOUSEHOLD_COLUMNS = {"micro_grid": ("micro_grid",), "housing": ("housing",),
                      "residency": ("residency",), "tags": ("person_tags", "household_tags"),
                      "phone": ("phone",), "note": ("note",)}


HOUSEHOLD_ORDER = ("micro_grid", "address", "housing", "residency", "tags", "phone", "note")
MEMBER_ORDER = ("name", "relation", "birth_year", "phone", "id_number", "tags", "status")


def managed_paths(columns: frozenset[str]) -> tuple[set[str], set[str]]:
    """The household and member fields this file speaks for; others are left as stored."""
    household = {"address"} | {p for p, cols in _HOUSEHOLD_COLUMNS.items()
                               if any(c in columns for c in cols)}
    member = {"name"} | {p for p, cols in _MEMBER_COLUMNS.items()
                         if any(c in columns for c in cols)}
    return household, member


def new_household(c: Candidate, at: str) -> dict[str, Any]:
    doc = {
        "_id": f"household:{c.household_id}", "type": "household", "grid": c.grid,
        "household_id": c.household_id, **c.fields,
        "members": {f"m{i}": m for i, m in enumerate(c.members, 1)},
        "clock": {}, "created_at": at, "updated_at": at,
    }
    return schema.validate(doc)


def reconcile(c: Candidate, stored: dict[str, Any], columns: frozenset[str], at: str
              ) -> Outcome | tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """Apply the file to a stored household: (new doc, changes, kept paths), or `unchanged`.

    Each change is stamped by `clock.edit` like any edit on a phone, from the device
    `import`; a path last stamped by another device was edited in the field and is kept.
    """
    household_fields, member_fields = managed_paths(columns)
    doc = stored
    changes: list[dict[str, Any]] = []
    kept: list[str] = []

    def assign(path: str, value: Any) -> None:
        nonlocal doc
        current = clock.get(doc, path)
        if current == value or (current is clock.MISSING and value is None):
            return
        stamp = doc.get("clock", {}).get(path)
        if stamp and stamp.get("device") != IMPORT_DEVICE:
            kept.append(path)
            return
        changes.append({"path": path, "old": None if current is clock.MISSING else current,
                        "new": value})
        doc = clock.edit(doc, path, value, IMPORT_DEVICE, IMPORT_DEVICE, at)

    for name in HOUSEHOLD_ORDER:
        if name in household_fields:
            assign(name, c.fields[name])
    for mid, member in _match_members(c.members, stored.get("members", {})):
        is_new = mid not in stored.get("members", {})
        for name in MEMBER_ORDER:
            if is_new or name in member_fields:
                assign(f"members.{mid}.{name}", member[name])
    if not changes:
        return Outcome(tuple(c.rows), c.household_id, "unchanged", kept=tuple(kept))
    return schema.validate(doc), changes, kept


def _match_members(wanted: list[dict[str, Any]], stored: dict[str, dict[str, Any]]
                   ) -> list[tuple[str, dict[str, Any]]]:
    """Stored member ids by ID number, then by name; new people get the next `m<n>`."""
    by_id = {m.get("id_number"): mid for mid, m in stored.items() if m.get("id_number")}
    by_name: dict[str, list[str]] = {}
    for mid, m in stored.items():
        by_name.setdefault(m.get("name", ""), []).append(mid)
    taken: set[str] = set()
    numbers = [int(x.group(1)) for x in map(_MEMBER_NUMBER.match, stored) if x]
    next_number = max(numbers, default=0) + 1
    out = []
    for m in wanted:
        mid = by_id.get(m["id_number"]) if m["id_number"] else None
        if mid is None or mid in taken:
            mid = next((x for x in by_name.get(m["name"], []) if x not in taken
                        and not (m["id_number"] and stored[x].get("id_number")
                                 and stored[x]["id_number"] != m["id_number"])), None)
        if mid is None:
            mid = f"m{next_number}"
            next_number += 1
        taken.add(mid)
        out.append((mid, m))
    return out


# --- the run ------------------------------------------------------------------------------


class _SeenHouseholds:
    """Households met so far, to call a household split across the file a duplicate.

    8-byte digests in an open-addressing table kept at most half full: ~16 bytes per
    household where a Python set of them takes ~75, so a county ledger costs ~2 MB.
    """

    _EMPTY = bytes(8)

    def __init__(self, slots: int = 1 << 14) -> None:
        self._slots = slots
        self._table = bytearray(8 * slots)
        self._count = 0

    def add(self, grid: str, hid: str) -> bool:
        """False when this household was met before."""
        key = hashlib.blake2b(f"{grid}\0{hid}".encode(), digest_size=8).digest()
        if key == self._EMPTY:
            key = b"\x01" + key[1:]
        if not self._insert(key):
            return False
        self._count += 1
        if self._count * 2 > self._slots:
            self._grow()
        return True

    def _insert(self, key: bytes) -> bool:
        mask = self._slots - 1
        i = int.from_bytes(key, "little") & mask
        table = self._table
        while True:
            at = table[8 * i:8 * i + 8]
            if at == self._EMPTY:
                table[8 * i:8 * i + 8] = key
                return True
            if at == key:
                return False
            i = (i + 1) & mask

    def _grow(self) -> None:
        old = self._table
        self._slots *= 2
        self._table = bytearray(8 * self._slots)
        for j in range(0, len(old), 8):
            key = bytes(old[j:j + 8])
            if key != self._EMPTY:
                self._insert(key)


def run_import(couch: Couch, path: Path, *, dry_run: bool,
               on_outcome: Callable[[Outcome], None] = lambda o: None,
               on_progress: Callable[[int, int | None], None] = lambda rows, total: None,
               batch_size: int = BATCH) -> Summary:
    """Import one ledger file; every household's fate goes to `on_outcome`, in file order."""
    ledger = open_ledger(path)
    ctx = Context.load(couch)
    writer = _BatchWriter(couch, ctx, ledger.columns, dry_run)
    seen = _SeenHouseholds()
    summary = Summary()
    pending: deque[Future[list[Outcome]]] = deque()

    def finish_oldest() -> None:
        for outcome in pending.popleft().result():
            summary.add(outcome)
            on_outcome(outcome)
        on_progress(summary.rows, ledger.total_rows)

    # Batches are written by two threads while the next one is parsed: CouchDB stores one
    # batch while Python encodes another. A household id is never in two batches (a repeat
    # is a duplicate error), so the order of writes does not matter; outcomes keep file order.
    with ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="ledger-writer") as pool:
        batch: list[Candidate] = []
        for rows in group_households(ledger.rows):
            candidate = check_household(rows, ctx)
            if candidate.household_id and not seen.add(candidate.grid, candidate.household_id):
                candidate.problem(rows[0], "duplicate_household", f"household "
                                  f"{candidate.household_id} already appeared above; keep a "
                                  "household's rows together, once")
            batch.append(candidate)
            if len(batch) >= batch_size:
                if len(pending) >= WRITERS:
                    finish_oldest()
                pending.append(pool.submit(writer.apply, batch))
                batch = []
        if batch:
            pending.append(pool.submit(writer.apply, batch))
        while pending:
            finish_oldest()
    return summary


class _BatchWriter:
    def __init__(self, couch: Couch, ctx: Context, columns: frozenset[str], dry_run: bool
                 ) -> None:
        self.couch = couch
        self.ctx = ctx
        self.columns = columns
        self.dry_run = dry_run
        self.provisioning = threading.Lock()
        self.fresh: dict[str, bool] = {}  # grid → its database held nothing before this run

    def apply(self, batch: list[Candidate]) -> list[Outcome]:
        at = now()
        outcomes: dict[int, Outcome] = {}
        by_grid: dict[str, list[int]] = {}
        for i, c in enumerate(batch):
            if c.problems:
                outcomes[i] = Outcome(tuple(c.rows), c.household_id, "error", tuple(c.problems))
            else:
                by_grid.setdefault(c.grid, []).append(i)
        for grid, indexes in by_grid.items():
            outcomes.update(self._apply_grid(grid, [(i, batch[i]) for i in indexes], at))
        return [outcomes[i] for i in range(len(batch))]

    def _apply_grid(self, grid: str, items: list[tuple[int, Candidate]], at: str
                    ) -> dict[int, Outcome]:
        db = naming.grid_db_name(grid, self.couch.prefix)
        if grid not in self.fresh:
            self.fresh[grid] = self._is_fresh(grid, db)
        ids = [f"household:{c.household_id}" for _, c in items]
        stored = {} if self.fresh[grid] else self._stored(db, ids)
        outcomes: dict[int, Outcome] = {}
        writes: list[tuple[int, Candidate, dict[str, Any], list[dict[str, Any]], list[str]]] = []
        for i, c in items:
            row = stored.get(f"household:{c.household_id}")
            if row is None:
                assert c.doc is not None
                writes.append((i, c, {**c.doc, "created_at": at, "updated_at": at}, [], []))
            elif row.get("deleted") or row.get("doc") is None:
                outcomes[i] = Outcome(tuple(c.rows), c.household_id, "error", (Problem(
                    c.rows[0].number, "moved", f"household {c.household_id} was moved to "
                    "another grid or deleted in Doorstep; it is not re-created"),))
            else:
                result = reconcile(c, row["doc"], self.columns, at)
                if isinstance(result, Outcome):
                    outcomes[i] = result
                else:
                    writes.append((i, c, *result))
        failed = {} if self.dry_run else self._write(db, [w[2] for w in writes])
        audits = []
        for i, c, doc, changes, kept in writes:
            action = "update" if changes else "create"
            if doc["_id"] in failed:
                outcomes[i] = Outcome(tuple(c.rows), c.household_id, "error", (Problem(
                    c.rows[0].number, "write_failed", failed[doc["_id"]]),))
                continue
            outcomes[i] = Outcome(tuple(c.rows), c.household_id, action,
                                  changed=tuple(ch["path"] for ch in changes), kept=tuple(kept))
            if changes:
                # An id derived from the new revision: a retried write records it once.
                record = uuid.uuid5(uuid.NAMESPACE_URL, f"import/{c.household_id}/{doc['_rev']}")
                audits.append(schema.validate({
                    "_id": f"audit:{record}", "type": "audit", "grid": grid,
                    "household": c.household_id, "source": "import", "changes": changes,
                    "author": IMPORT_DEVICE, "device": IMPORT_DEVICE, "at": at,
                }))
        if audits and not self.dry_run:
            self.couch.bulk_docs(db, audits)
        return outcomes

    def _is_fresh(self, grid: str, db: str) -> bool:
        """Creates a missing grid database. True when it has no households and never had a
        deletion: then no batch of a first import needs a lookup. (Two writer threads may
        both ask; either answer is right, as no household id is in two batches.)"""
        status, info = self.couch.request("GET", quote(db, safe=""))
        if status == 404:
            if self.dry_run:
                return True  # a grid whose database the import would create
            with self.provisioning:
                provision_grid(self.couch, grid, self.ctx.tag_config)
            status, info = self.couch.request("GET", quote(db, safe=""))
        if status != 200 or info.get("doc_del_count", 0):
            return False
        return not self.couch.all_docs(db, startkey="household:", endkey="household:\ufff0",
                                       limit=1)

    def _stored(self, db: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The stored households among `ids`, deleted ones as {"deleted": True}."""
        status, body = self.couch.request("POST", f"{quote(db, safe='')}/_all_docs",
                                          params={"include_docs": True}, body={"keys": ids})
        if status != 200:
            raise CouchUnavailable(f"reading households from {db} failed: {status} {body}")
        return {r["key"]: {"doc": r.get("doc"), **r.get("value", {})}
                for r in body["rows"] if "error" not in r}

    def _write(self, db: str, docs: list[dict[str, Any]]) -> dict[str, str]:
        if not docs:
            return {}
        failed = {}
        by_id = {d["_id"]: d for d in docs}
        for result in self.couch.bulk_docs(db, docs):
            if "error" in result:
                failed[result["id"]] = (f"CouchDB refused the write ({result['error']}: "
                                        f"{result.get('reason')}); run the import again")
            else:
                by_id[result["id"]]["_rev"] = result["rev"]
        return failed
