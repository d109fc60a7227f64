"""Ledger import: dry run, real run, re-import, updates, and one test per kind of bad row.

Everything runs against the real embedded CouchDB (fixtures `couch` and `community`: grids G1
and G2 in community C1, G9 in C2) with CSV and XLSX files written by the test.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from server.commands.import_ledger import Progress
from sync import clock, demo, naming
from sync.couch import Couch
from sync.directory import DEFAULT_TAGS, Directory
from sync.ledger_import import LedgerFileError, Outcome, _SeenHouseholds, run_import
from sync.ledger_template import household_rows, write_ledger
from tests.conftest import ROOT, CouchServer

HEADER = ["网格编号", "微网格", "楼栋", "单元", "楼层", "房号", "姓名", "与户主关系", "出生年份",
          "联系电话", "身份证号", "人员标签", "住房性质", "户籍性质"]
# Valid ID numbers (check digits computed): born 1941, 1943, 1975, 2012.
ID_1941 = "110101194103070024"
ID_1943 = "110101194305120018"
ID_1975 = "330106197508150010"
ID_2012 = "33010620120601002X"

GOOD = [
    ["G1", "G1-M1", "3栋", "2单元", "5", "502室", "王秀英", "户主", "", "13800138000", ID_1941,
     "独居老人", "自住", "户籍"],
    ["G1", "", "3", "2", "", "503", "李建国", "户主", "", "139 0013 9000", ID_1943, "",
     "租住", "流动"],
    ["", "", "", "", "", "", "李欣怡", "孙女", "2012", "", ID_2012, "留守儿童", "", ""],
    ["G2", "", "7", "1", "3", "301", "赵伟", "户主", "1975", "0571-87654321", ID_1975, "退役军人",
     "自住", "户籍"],
]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER,
              encoding: str = "utf-8-sig") -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def grid_db(couch: Couch, grid: str) -> str:
    return naming.grid_db_name(grid, couch.prefix)


def households(couch: Couch, grid: str) -> dict[str, dict]:
    rows = couch.all_docs(grid_db(couch, grid), startkey="household:",
                          endkey="household:\ufff0", include_docs=True)
    return {r["id"]: r["doc"] for r in rows}


def run(couch: Couch, path: Path, dry_run: bool = False) -> tuple[object, list[Outcome]]:
    outcomes: list[Outcome] = []
    summary = run_import(couch, path, dry_run=dry_run, on_outcome=outcomes.append)
    return summary, outcomes


@pytest.fixture
def directory(couch: Couch, community) -> Directory:
    d = Directory(couch)
    d.add_micro_grid("G1-M1", "3幢", "G1")
    return d


def test_dry_run_reports_what_would_be_created_and_writes_nothing(couch, directory, tmp_path):
    summary, outcomes = run(couch, write_csv(tmp_path / "l.csv", GOOD), dry_run=True)
    assert [(o.household_id, o.action, [r.number for r in o.rows]) for o in outcomes] == [
        ("G1-3-2-502", "create", [2]), ("G1-3-2-503", "create", [3, 4]),
        ("G2-7-1-301", "create", [5])]
    assert (summary.created, summary.problems) == (3, 0)
    assert households(couch, "G1") == {} and households(couch, "G2") == {}


def test_import_writes_each_household_as_the_data_model_says(couch, directory, tmp_path):
    summary, _ = run(couch, write_csv(tmp_path / "l.csv", GOOD))
    assert (summary.created, summary.rows, summary.problems) == (3, 4, 0)
    g1 = households(couch, "G1")
    alone = g1["household:G1-3-2-502"]
    assert alone["address"] == {"building": "3", "unit": "2", "floor": 5, "room": "502"}
    assert alone["micro_grid"] == "G1-M1"
    assert alone["tags"] == ["elderly_alone"]
    assert alone["members"]["m1"]["birth_year"] == 1941  # read from the ID number
    assert alone["clock"] == {}
    family = g1["household:G1-3-2-503"]
    assert family["address"]["floor"] == 5  # read from room 503
    assert (family["housing"], family["residency"]) == ("rented", "floating")
    assert family["phone"] == "13900139000"  # the head's phone, spaces removed
    assert [m["name"] for m in family["members"].values()] == ["李建国", "李欣怡"]
    assert family["members"]["m2"]["tags"] == ["left_behind_child"]
    assert family["tags"] == ["left_behind_child"]
    veteran = households(couch, "G2")["household:G2-7-1-301"]
    assert veteran["members"]["m1"]["phone"] == "0571-87654321"
    assert veteran["tags"] == ["veteran"]


def test_importing_the_same_file_again_changes_nothing(couch, directory, tmp_path):
    path = write_csv(tmp_path / "l.csv", GOOD)
    run(couch, path)
    before = {**households(couch, "G1"), **households(couch, "G2")}
    summary, outcomes = run(couch, path)
    assert {o.action for o in outcomes} == {"unchanged"}
    assert (summary.unchanged, summary.created, summary.updated) == (3, 0, 0)
    after = {**households(couch, "G1"), **households(couch, "G2")}
    assert {k: d["_rev"] for k, d in after.items()} == {k: d["_rev"] for k, d in before.items()}


def test_a_changed_file_updates_only_what_changed_stamped_and_audited(couch, directory,
                                                                      tmp_path):
    run(couch, write_csv(tmp_path / "l.csv", GOOD))
    changed = [list(r) for r in GOOD]
    changed[1][9] = "13700137000"  # new phone for 李建国
    changed.insert(3, ["", "", "", "", "", "", "张丽", "儿媳", "1988", "", "", "", "", ""])
    summary, outcomes = run(couch, write_csv(tmp_path / "l2.csv", changed))
    assert [o.action for o in outcomes] == ["unchanged", "update", "unchanged"]
    update = outcomes[1]
    assert set(update.changed) >= {"phone", "members.m1.phone", "members.m3.name"}
    doc = households(couch, "G1")["household:G1-3-2-503"]
    assert doc["members"]["m1"]["phone"] == "13700137000"
    assert doc["members"]["m3"]["name"] == "张丽"
    assert doc["members"]["m2"]["name"] == "李欣怡"  # matched by ID number, id kept
    stamp = doc["clock"]["members.m1.phone"]
    assert (stamp["device"], stamp["by"], list(stamp["vv"])) == ("import", "import", ["import"])
    audits = couch.all_docs(grid_db(couch, "G1"), startkey="audit:", endkey="audit:\ufff0",
                            include_docs=True)
    assert [(a["doc"]["household"], a["doc"]["source"]) for a in audits] == [
        ("G1-3-2-503", "import")]
    assert {"path": "members.m1.phone", "old": "13900139000", "new": "13700137000"} in \
        audits[0]["doc"]["changes"]


def test_an_update_keeps_a_field_edited_by_a_worker_since(couch, directory, tmp_path):
    run(couch, write_csv(tmp_path / "l.csv", GOOD))
    db = grid_db(couch, "G1")
    doc = couch.get(db, "household:G1-3-2-502")
    couch.put(db, clock.edit(doc, "phone", "13600136000", "w_zhang", "dev-a1",
                             "2026-11-20T09:00:00Z"))
    changed = [list(r) for r in GOOD]
    changed[0][9], changed[0][12] = "13500135000", "租住"
    _, outcomes = run(couch, write_csv(tmp_path / "l2.csv", changed))
    assert outcomes[0].action == "update"
    assert outcomes[0].kept == ("phone",)
    stored = couch.get(db, "household:G1-3-2-502")
    assert stored["phone"] == "13600136000"  # the worker's newer value
    assert stored["housing"] == "rented"  # what nobody edited in the field follows the file


BAD_CASES = {
    "unknown_grid": (["G7", "", "3", "2", "5", "502", "王秀英", "户主", "", "", "", "", "", ""],
                     None),
    "missing_value": (["G1", "", "", "2", "5", "502", "王秀英", "户主", "", "", "", "", "", ""],
                      None),
    "bad_phone": (["G1", "", "3", "2", "5", "502", "王秀英", "户主", "", "1380013800", "", "",
                   "", ""], None),
    "bad_id_number": (["G1", "", "3", "2", "5", "502", "王秀英", "户主", "",
                       "", "110101194103070025", "", "", ""], None),
    "unknown_tag": (["G1", "", "3", "2", "5", "502", "王秀英", "户主", "", "", "", "孤寡", "",
                     ""], None),
    "bad_value": (["G1", "", "3", "2", "5", "502", "王秀英", "户主", "", "", "", "", "借住", ""],
                  None),
    "unknown_micro_grid": (["G1", "G1-M9", "3", "2", "5", "502", "王秀英", "户主", "", "", "",
                            "", "", ""], None),
    "inconsistent_household": (["G1", "", "3", "2", "5", "502", "王秀英", "户主", "", "", "",
                                "", "自住", ""],
                               ["", "", "", "", "", "", "李明", "子", "", "", "", "", "租住", ""]),
    "duplicate_person": (["G1", "", "3", "2", "5", "502", "王秀英", "户主", "", "", ID_1941, "",
                          "", ""],
                         ["", "", "", "", "", "", "王秀", "姐妹", "", "", ID_1941, "", "", ""]),
}


@pytest.mark.parametrize("kind", sorted(BAD_CASES))
def test_each_kind_of_bad_row_is_reported_and_its_household_skipped_whole(
        couch, directory, tmp_path, kind):
    first, second = BAD_CASES[kind]
    # The bad household has a good member row too: none of it may be written.
    member = second or ["", "", "", "", "", "", "李明", "子", "", "", "", "", "", ""]
    rows = [first, member, GOOD[3]]
    summary, outcomes = run(couch, write_csv(tmp_path / "bad.csv", rows))
    bad, good = outcomes
    assert bad.action == "error"
    assert [p.kind for p in bad.problems] == [kind]
    assert bad.problems[0].row == (3 if second else 2)
    assert good.action == "create"
    assert (summary.rejected, summary.created) == (1, 1)
    assert households(couch, "G1") == {}
    assert "household:G2-7-1-301" in households(couch, "G2")


def test_a_household_split_across_the_file_is_a_duplicate(couch, directory, tmp_path):
    rows = [GOOD[0], GOOD[3], ["G1", "", "3", "2", "5", "502", "王明", "子", "", "", "", "", "",
                               ""]]
    summary, outcomes = run(couch, write_csv(tmp_path / "split.csv", rows), dry_run=True)
    assert [o.action for o in outcomes] == ["create", "create", "error"]
    assert outcomes[2].problems[0].kind == "duplicate_household"
    assert outcomes[2].problems[0].row == 4


def test_unknown_headers_are_named_and_nothing_is_read(couch, directory, tmp_path):
    path = write_csv(tmp_path / "l.csv", GOOD, header=HEADER[:-1] + ["宠物"])
    with pytest.raises(LedgerFileError, match="宠物"):
        run(couch, path)
    assert households(couch, "G1") == {}


def test_header_variants_title_rows_and_gbk_csv_are_read(couch, directory, tmp_path):
    path = tmp_path / "gbk.csv"
    with path.open("w", encoding="gb18030", newline="") as f:
        w = csv.writer(f)
        w.writerow(["桂花社区人口台账（2026年）"])
        w.writerow(["序号", " 网格 ", "楼号", "单元号", "房间号", "姓名*", "关系", "手机号码",
                    "身份证号码（18位）", "人员类别"])
        w.writerow(["1", "第一网格", "3", "2", "502", "王秀英", "户主", "13800138000", ID_1941,
                    "独居老人"])
    summary, _ = run(couch, path)
    assert (summary.created, summary.problems) == (1, 0)
    doc = households(couch, "G1")["household:G1-3-2-502"]  # the grid named by its name
    assert doc["members"]["m1"]["name"] == "王秀英"
    assert doc["tags"] == ["elderly_alone"]


def excel_style_xlsx(path: Path, rows: list[list[object]]) -> Path:
    """A workbook laid out as Excel saves it: text in the shared-string table, numbers as
    numbers (openpyxl itself writes inline strings, so it cannot make one)."""
    strings: dict[str, int] = {}
    cells = []
    for r, row in enumerate(rows, 1):
        out = []
        for c, value in enumerate(row):
            ref = f"{chr(65 + c)}{r}"
            if isinstance(value, int | float):
                out.append(f'<c r="{ref}"><v>{value}</v></c>')
            elif value:
                i = strings.setdefault(str(value), len(strings))
                out.append(f'<c r="{ref}" t="s"><v>{i}</v></c>')
        cells.append(f'<row r="{r}">{"".join(out)}</row>')
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006/relationships"
    # A rich-text string with a phonetic guide (rPh), which is not part of the value.
    sst = "".join(f"<si><r><t>{s[:1]}</t></r><r><t>{s[1:]}</t></r><rPh><t>x</t></rPh></si>"
                  for s in strings)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("xl/workbook.xml", f'<workbook xmlns="{ns}" xmlns:r="{rel}"><sheets>'
                   '<sheet name="台账" sheetId="1" r:id="rId1"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels", f'<Relationships xmlns="{pkg}">'
                   f'<Relationship Id="rId1" Type="{rel}/worksheet" '
                   'Target="worksheets/sheet1.xml"/>'
                   f'<Relationship Id="rId2" Type="{rel}/sharedStrings" '
                   'Target="sharedStrings.xml"/></Relationships>')
        z.writestr("xl/sharedStrings.xml", f'<sst xmlns="{ns}">{sst}</sst>')
        z.writestr("xl/worksheets/sheet1.xml", f'<worksheet xmlns="{ns}"><dimension ref="A1:N'
                   f'{len(rows)}"/><sheetData>{"".join(cells)}</sheetData></worksheet>')
    return path


def test_an_excel_workbook_with_shared_strings_and_numeric_cells(couch, directory, tmp_path):
    rows: list[list[object]] = [["桂花社区台账"], HEADER,
                                ["G1", "", 3, 2, 5, 502, "王秀英", "户主", "", 13800138000,
                                 ID_1941, "独居老人", "自住", "户籍"],
                                ["G1", "", 3, 2, 5, 503, "李建国", "户主", "", "", 1.101011943e17,
                                 "", "", ""]]
    summary, outcomes = run(couch, excel_style_xlsx(tmp_path / "excel.xlsx", rows))
    assert outcomes[0].action == "create"
    doc = households(couch, "G1")["household:G1-3-2-502"]
    assert (doc["members"]["m1"]["name"], doc["phone"]) == ("王秀英", "13800138000")
    assert outcomes[1].action == "error"  # an ID number Excel turned into a number
    assert outcomes[1].problems[0].kind == "bad_id_number"
    assert "as a number" in outcomes[1].problems[0].message


def test_the_ledger_of_a_loaded_demo_imports_as_unchanged(couch, tmp_path):
    """The template, the import and the demo agree on every field of a household."""
    spec = demo.Spec(seed=5, grids=1, households_per_grid=60, visit_months=1)
    demo.load(couch, spec, with_accounts=False)
    labels = {k: t["zh"] for k, t in DEFAULT_TAGS["tags"].items()}
    path = tmp_path / "demo.xlsx"
    write_ledger(path, (row for _, content in demo.ledgers(spec)
                        for h in content.households for row in household_rows(h, labels)))
    summary, outcomes = run(couch, path)
    assert summary.households >= 50
    assert {o.action for o in outcomes} == {"unchanged"}


# --- the command line ---------------------------------------------------------------------


def doorstep(couch_server: CouchServer, prefix: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DOORSTEP_COUCHDB_URL": couch_server.url,
           "DOORSTEP_COUCHDB_USER": couch_server.user,
           "DOORSTEP_COUCHDB_PASSWORD": couch_server.password, "DOORSTEP_DB_PREFIX": prefix}
    return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_cli_dry_run_prints_rows_and_exit_code_says_errors_were_found(
        couch_server, couch, directory, prefix, tmp_path):
    path = write_csv(tmp_path / "l.csv", [BAD_CASES["bad_phone"][0], GOOD[3]])
    report = tmp_path / "report.csv"
    r = doorstep(couch_server, prefix, "import", str(path), "--dry-run", "--report", str(report))
    assert r.returncode == 1, r.stderr
    assert "row 2" in r.stdout and "bad_phone" in r.stdout
    assert "row 3" in r.stdout and "create" in r.stdout
    assert "dry run" in r.stdout.splitlines()[-1]
    with report.open(encoding="utf-8-sig") as f:
        lines = list(csv.DictReader(f))
    assert [(x["row"], x["action"], x["kind"]) for x in lines] == [
        ("2", "error", "bad_phone"), ("3", "create", "")]
    assert households(couch, "G2") == {}


def test_cli_clean_import_exits_zero_and_a_missing_file_is_one_line(
        couch_server, couch, directory, prefix, tmp_path):
    r = doorstep(couch_server, prefix, "import", str(write_csv(tmp_path / "l.csv", GOOD)))
    assert r.returncode == 0, r.stderr
    assert "3 created" in r.stdout
    assert len(households(couch, "G1")) == 2
    r = doorstep(couch_server, prefix, "import", str(tmp_path / "nope.xlsx"))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "nope.xlsx" in r.stderr
    r = doorstep(couch_server, prefix, "import",
                 str(write_csv(tmp_path / "h.csv", GOOD, header=HEADER[:-1] + ["宠物"])))
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "宠物" in r.stderr and "Traceback" not in r.stderr


def test_the_shipped_examples_import_into_the_demo(couch, tmp_path):
    demo.load_directory(couch, demo.DEMO, with_accounts=False)
    examples = ROOT / "examples"
    summary, outcomes = run(couch, examples / "ledger-example.xlsx", dry_run=True)
    assert summary.problems == 0 and summary.created == summary.households > 20
    summary, _ = run(couch, examples / "ledger-example.csv")
    assert summary.problems == 0 and summary.created == len(outcomes)
    _, outcomes = run(couch, examples / "ledger-errors.csv", dry_run=True)
    kinds = sorted(p.kind for o in outcomes for p in o.problems)
    assert kinds == sorted(["unknown_grid", "missing_value", "bad_phone", "bad_id_number",
                            "unknown_tag", "bad_value", "unknown_micro_grid",
                            "duplicate_household"])


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_self_overwriting_line_on_a_terminal_only():
    term = _Terminal()
    progress = Progress(term)
    progress.update(12_000, 48_000)
    assert "25%" in term.getvalue() and "12,000 rows" in term.getvalue()
    assert term.getvalue().startswith("\r\033[K")
    progress.clear()
    assert term.getvalue().endswith("\r\033[K")
    piped = io.StringIO()
    Progress(piped).update(12_000, 48_000)
    assert piped.getvalue() == ""


def test_a_household_moved_away_in_doorstep_is_not_recreated(couch, directory, tmp_path):
    path = write_csv(tmp_path / "l.csv", GOOD)
    run(couch, path)
    db = grid_db(couch, "G1")
    doc = couch.get(db, "household:G1-3-2-502")
    couch.put(db, {"_id": doc["_id"], "_rev": doc["_rev"], "_deleted": True, "moved_to": "G2"})
    summary, outcomes = run(couch, path)
    assert outcomes[0].action == "error" and outcomes[0].problems[0].kind == "moved"
    assert couch.get(db, "household:G1-3-2-502") is None
    assert (summary.unchanged, summary.rejected) == (2, 1)


def test_duplicate_detection_holds_across_table_growth():
    seen = _SeenHouseholds(slots=16)
    assert all(seen.add(f"G{i % 7}", f"h{i}") for i in range(20_000))
    assert not any(seen.add(f"G{i % 7}", f"h{i}") for i in range(0, 20_000, 13))
    assert seen.add("G1", "h0")  # same household id, another grid: a different household
