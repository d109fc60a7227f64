"""Exports read back: every visit, household member and need of the scope and period, in
CSV and XLSX, and nothing from outside it."""

from __future__ import annotations

import csv
import io
from datetime import date
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from sync import exporter
from sync.couch import Couch
from sync.directory import Directory
from sync.hub import Hub
from tests.console.docs_factory import household, need_event, visit, write

TZ = ZoneInfo("Asia/Shanghai")


def label(kind: str, code: str) -> str:
    return f"{kind}:{code}"


def read_csv(chunks) -> list[list[str]]:
    data = b"".join(chunks).decode("utf-8")
    assert data.startswith("\ufeff")
    return list(csv.reader(io.StringIO(data[1:])))


def read_xlsx(chunks) -> list[list]:
    wb = openpyxl.load_workbook(io.BytesIO(b"".join(chunks)), read_only=True)
    return [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]


@pytest.fixture
def hub(couch: Couch, community, monkeypatch: pytest.MonkeyPatch) -> Hub:
    monkeypatch.setattr(exporter, "PAGE", 7)  # many pages, and keys repeating across them
    hs = [household("G1", f"G1-1-1-{100 + i}", room=str(100 + i), name=f"张{i}")
          for i in range(12)]
    write(couch, "G1", *hs)
    visits = [visit("G1", h["household_id"], f"2026-11-{10 + i % 5:02d}T02:00:00Z",
                    notes="=HYPERLINK(\"http://x\")" if i == 0 else "")
              for i, h in enumerate(hs)]
    visits.append(visit("G1", hs[0]["household_id"], "2026-10-01T02:00:00Z"))  # before
    write(couch, "G1", *visits)
    write(couch, "G1", need_event("G1", hs[1]["household_id"], "n1", "raised",
                                  "2026-11-12T02:00:00Z", category="repair", text="灯坏了"),
          need_event("G1", hs[1]["household_id"], "n1", "claimed", "2026-11-13T02:00:00Z"))
    write(couch, "G9", household("G9", "G9-1-1-101"),
          visit("G9", "G9-1-1-101", "2026-11-12T02:00:00Z"))
    h = Hub(couch)
    h.copy_all(["G1", "G9"])
    return h


def spec(kind: str, grids: tuple[str, ...] = ("G1",)) -> exporter.ExportSpec:
    return exporter.ExportSpec(kind, grids, date(2026, 11, 1), date(2026, 11, 30), TZ)


def test_visits_of_the_period_and_scope_in_both_formats(couch: Couch, hub: Hub) -> None:
    s = spec("visits")
    header = exporter.headers(s, lambda c: c)
    config = Directory(couch).tag_config()
    as_csv = read_csv(exporter.csv_stream(header, exporter.rows(couch, hub.db, s, config, label)))
    as_xlsx = read_xlsx(exporter.xlsx_stream(header, exporter.rows(couch, hub.db, s, config,
                                                                   label), "visits"))
    assert as_csv[0] == list(exporter.VISIT_COLUMNS)
    assert len(as_csv) == 13 and len({r[0] for r in as_csv[1:]}) == 12
    assert {r[1] for r in as_csv[1:]} == {"G1"}
    assert [[str(c) if c is not None else "" for c in r] for r in as_xlsx] == as_csv
    first = next(r for r in as_csv if r[2] == "G1-1-1-100")
    assert first[3] == "2026-11-10 10:00"  # local time
    assert first[5] == "outcome:met"
    assert first[7] == "'=HYPERLINK(\"http://x\")"  # never a live formula


def test_households_in_the_ledger_template_and_needs_by_state(couch: Couch, hub: Hub) -> None:
    config = Directory(couch).tag_config()
    s = spec("households")
    rows = read_csv(exporter.csv_stream(exporter.headers(s, str),
                                        exporter.rows(couch, hub.db, s, config, label)))
    assert rows[0][:3] == ["网格编号", "微网格", "楼栋"]
    assert sorted(r[6] for r in rows[1:]) == sorted(f"张{i}" for i in range(12))
    n = spec("needs")
    needs = read_csv(exporter.csv_stream(exporter.headers(n, str),
                                         exporter.rows(couch, hub.db, n, config, label)))
    assert [(r[0], r[6]) for r in needs[1:]] == [("n1", "need_state:claimed")]
    outside = exporter.ExportSpec("needs", ("G1",), date(2026, 12, 1), date(2026, 12, 31), TZ)
    assert list(exporter.rows(couch, hub.db, outside, config, label)) == []
