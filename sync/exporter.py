"""Exports of visits, households and needs for a scope (grids) and a period, CSV or XLSX.

Rows come from the hub a page of `PAGE` at a time and leave as soon as they are written,
so memory stays flat however many there are. CSV is streamed to the client as it is made.
XLSX is a zip whose directory comes last, so openpyxl's write-only workbook writes it to a
temporary file (rows go to disk as they are appended) and the file is then streamed.

Households are exported in the ledger template (sync/ledger_template.py: one row per person
living there), so an export can be corrected in a spreadsheet and imported again. Visits
and needs have their own columns; times are local times of the configured time zone.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta, tzinfo
from typing import Any

import openpyxl
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from sync import ledger_template
from sync.console_queries import NEED_STATES, parse_time, utc_key
from sync.couch import Couch

PAGE = 500
KINDS = ("visits", "households", "needs")
FORMATS = ("csv", "xlsx")
CHUNK = 64 * 1024
_NUMBER = re.compile(r"-?\d+(\.\d+)?")

VISIT_COLUMNS = ("id", "grid", "household", "visited_at", "author", "outcome", "visit_type",
                 "notes", "needs", "ledger_changes", "lat", "lon", "assignment", "amends",
                 "app_version")
NEED_COLUMNS = ("need_id", "grid", "household", "category", "text", "urgent", "state",
                "raised_at", "raised_by", "to", "evaluation", "updated_at")

Label = Callable[[str, str], str]  # (kind of word, code) → the word people read


@dataclass(frozen=True)
class ExportSpec:
    kind: str
    grids: tuple[str, ...]
    day_from: date
    day_to: date  # inclusive
    tz: tzinfo

    @property
    def start_key(self) -> str:
        return utc_key(self.day_from, self.tz)

    @property
    def end_key(self) -> str:
        return utc_key(self.day_to + timedelta(days=1), self.tz)

    def local(self, timestamp: str) -> str:
        if not timestamp:
            return ""
        return parse_time(timestamp).astimezone(self.tz).strftime("%Y-%m-%d %H:%M")


def pages(couch: Couch, hub_db: str, start: list[Any], end: list[Any], *,
          include_docs: bool = False) -> Iterator[dict[str, Any]]:
    """The rows of `grid_rows` between two keys, one page in memory at a time.

    A page resumes at the last key seen, skipping the rows with that key already read
    (pouchdb-server has no `startkey_docid`; `skip` stays small because keys rarely repeat).
    """
    key: list[Any] = start
    skip = 0
    while True:
        rows = couch.view(hub_db, "hub", "grid_rows", startkey=key, endkey=end, reduce=False,
                          limit=PAGE, skip=skip, include_docs=include_docs)["rows"]
        yield from rows
        if len(rows) < PAGE:
            return
        last = rows[-1]["key"]
        same = sum(1 for r in rows if r["key"] == last)
        skip = skip + same if last == key else same
        key = last


# --- rows -----------------------------------------------------------------------------------


def headers(spec: ExportSpec, column_label: Callable[[str], str]) -> list[str]:
    if spec.kind == "households":
        return [c.header for c in ledger_template.COLUMNS]
    columns = VISIT_COLUMNS if spec.kind == "visits" else NEED_COLUMNS
    return [column_label(c) for c in columns]


def rows(couch: Couch, hub_db: str, spec: ExportSpec, config: dict[str, Any],
         label: Label) -> Iterator[list[Any]]:
    if spec.kind == "visits":
        return _visit_rows(couch, hub_db, spec, label)
    if spec.kind == "households":
        return _household_rows(couch, hub_db, spec, config)
    if spec.kind == "needs":
        return _need_rows(couch, hub_db, spec, label)
    raise ValueError(f"kind must be one of {', '.join(KINDS)}")


def _visit_rows(couch: Couch, hub_db: str, spec: ExportSpec, label: Label
                ) -> Iterator[list[Any]]:
    for g in spec.grids:
        for r in pages(couch, hub_db, [g, "visit", spec.start_key], [g, "visit", spec.end_key],
                       include_docs=True):
            v = r.get("doc")
            if not v:
                continue
            gps = v.get("gps") or {}
            yield [
                v["_id"], v["grid"], v["household"], spec.local(v["visited_at"]), v["author"],
                label("outcome", v["outcome"]), label("visit_type", v["visit_type"]),
                v.get("notes", ""),
                "; ".join(f"{n.get('category', '')}: {n.get('text', '')}"
                          for n in v.get("needs") or []),
                "; ".join(c.get("path", "") for c in v.get("ledger_changes") or []),
                gps.get("lat", ""), gps.get("lon", ""), v.get("assignment") or "",
                v.get("amends") or "", v.get("app_version", ""),
            ]


def _household_rows(couch: Couch, hub_db: str, spec: ExportSpec, config: dict[str, Any]
                    ) -> Iterator[list[Any]]:
    """The ledger as it stands (the period does not apply): people still living there."""
    labels = {k: t["zh"] for k, t in (config.get("tags") or {}).items()}
    for g in spec.grids:
        for r in pages(couch, hub_db, [g, "household"], [g, "household", {}], include_docs=True):
            doc = r.get("doc")
            if not doc:
                continue
            present = {mid: m for mid, m in doc["members"].items()
                       if m.get("status") != "moved_out"}
            yield from ledger_template.household_rows({**doc, "members": present}, labels)


def _need_rows(couch: Couch, hub_db: str, spec: ExportSpec, label: Label
               ) -> Iterator[list[Any]]:
    """One row per need raised in the period; its rows arrive together (keyed by need id)."""
    for g in spec.grids:
        need: dict[str, Any] | None = None
        for r in pages(couch, hub_db, [g, "need"], [g, "need", {}]):
            if need is None or r["key"][2] != need["need_id"]:
                if need is not None and _in_period(need, spec):
                    yield _need_row(need, spec, label)
                need = {"need_id": r["key"][2], "grid": g, "state": "raised", "raised_at": "",
                        "updated_at": ""}
            _add_need_event(need, r["key"][3], r["value"])
        if need is not None and _in_period(need, spec):
            yield _need_row(need, spec, label)


def _add_need_event(need: dict[str, Any], at: str, value: list[Any]) -> None:
    event, household, category, text, urgent, to, evaluation, author = value
    need.setdefault("household", household)
    if event == "raised":
        need.setdefault("category", category or "")
        need.setdefault("text", text or "")
        need["urgent"] = need.get("urgent") or bool(urgent)
        if not need["raised_at"] or at < need["raised_at"]:
            need["raised_at"], need["raised_by"] = at, author
    if event == "dispatched" and to:
        need["to"] = to
    if event == "evaluated" and evaluation:
        need["evaluation"] = evaluation
    if NEED_STATES.index(event) > NEED_STATES.index(need["state"]):
        need["state"] = event
    need["updated_at"] = max(need["updated_at"], at)


def _in_period(need: dict[str, Any], spec: ExportSpec) -> bool:
    return spec.start_key <= need["raised_at"] < spec.end_key


def _need_row(need: dict[str, Any], spec: ExportSpec, label: Label) -> list[Any]:
    return [
        need["need_id"], need["grid"], need.get("household", ""), need.get("category", ""),
        need.get("text", ""), label("yes_no", "yes" if need.get("urgent") else "no"),
        label("need_state", need["state"]), spec.local(need["raised_at"]),
        need.get("raised_by", ""), need.get("to", ""),
        label("evaluation", need["evaluation"]) if need.get("evaluation") else "",
        spec.local(need["updated_at"]),
    ]


# --- files ----------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "@", "-", "\t", "\r")


def cell(value: Any) -> Any:
    """A value safe in a spreadsheet cell.

    Text a spreadsheet would run as a formula (a note beginning with "=" or "@"…) gets a
    leading apostrophe; negative numbers stay numbers. Control characters XLSX cannot hold
    are dropped.
    """
    if not isinstance(value, str):
        return value
    value = ILLEGAL_CHARACTERS_RE.sub("", value)
    if value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value



def csv_stream(header: list[str], body: Iterator[list[Any]]) -> Iterator[bytes]:
    """UTF-8 with a byte-order mark (so Excel shows the Chinese), in chunks of ~64 KB."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow([cell(h) for h in header])
    for row in body:
        writer.writerow([cell(v) for v in row])
        if buffer.tell() >= CHUNK:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def xlsx_stream(header: list[str], body: Iterator[list[Any]], sheet: str) -> Iterator[bytes]:
    """Build the workbook in a temporary file (write-only: rows go to disk), then stream it."""
    with tempfile.TemporaryFile(suffix=".xlsx") as f:
        wb = openpyxl.Workbook(write_only=True)
        ws = wb.create_sheet(sheet)
        ws.freeze_panes = "A2"
        ws.append(header)
        for row in body:
            ws.append([cell(v) for v in row])
        wb.save(f)
        f.seek(0)
        while chunk := f.read(CHUNK):
            yield chunk
