"""Ledger import: households/s and peak memory, for a 10k and a 100k-household spreadsheet.

    .venv/bin/python bench/import_bench.py [--sizes 10000,100000] [--keep-files DIR]

For each size: the demo generator writes a ledger laid out as Excel saves it (text in the
shared-string table); a fresh embedded CouchDB gets the directory of those grids; a child
process (so each size has its own peak) runs the import and reports wall time and VmHWM.
Baselines in the same run: the same household documents written straight with _bulk_docs
(the most CouchDB takes), and, at the first size, openpyxl's read-only mode reading the
same file (what a plain reader costs). Bounded: at most two sizes, 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.embedded_couch import EmbeddedCouch  # noqa: E402
from server.settings import Settings  # noqa: E402
from sync import demo, naming  # noqa: E402
from sync.couch import Couch  # noqa: E402
from sync.directory import DEFAULT_TAGS  # noqa: E402
from sync.ledger_template import COLUMNS, household_rows  # noqa: E402
from sync.provision import provision  # noqa: E402

PER_GRID = 370  # a county: 270 grids × 370 ≈ 100k households
NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"


def spec_for(households: int) -> demo.Spec:
    return demo.Spec(seed=42, grids=max(1, round(households / PER_GRID)),
                     households_per_grid=PER_GRID, visit_months=0)


def write_excel_style(spec: demo.Spec, path: Path) -> tuple[int, int]:
    """The ledger as Excel writes it: sheet rows refer to a shared-string table."""
    labels = {k: t["zh"] for k, t in DEFAULT_TAGS["tags"].items()}
    strings: dict[str, int] = {}
    households = rows = 0
    sheet = path.with_suffix(".sheet.xml")
    with sheet.open("w", encoding="utf-8") as f:
        f.write(f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{NS}"><sheetData>')

        def row(r: int, values: list[str]) -> None:
            cells = []
            for c, v in enumerate(values):
                if not v:
                    continue
                ref = f"{chr(65 + c)}{r}"
                if v.isdigit() and len(v) < 12:  # floors, years, phones: numbers, as typed
                    cells.append(f'<c r="{ref}"><v>{v}</v></c>')
                else:
                    cells.append(f'<c r="{ref}" t="s"><v>{strings.setdefault(v, len(strings))}'
                                 "</v></c>")
            f.write(f'<row r="{r}">{"".join(cells)}</row>')

        row(1, [c.header for c in COLUMNS])
        for _, content in demo.ledgers(spec):
            for h in content.households:
                households += 1
                for values in household_rows(h, labels):
                    rows += 1
                    row(rows + 1, values)
        f.write("</sheetData></worksheet>")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0" encoding="UTF-8"?><Types xmlns='
                   '"http://schemas.openxmlformats.org/package/2006/content-types"><Default '
                   'Extension="rels" ContentType="application/vnd.openxmlformats-package.relation'
                   'ships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
                   '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxml'
                   'formats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName='
                   '"/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
                   'officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/shared'
                   'Strings.xml" ContentType="application/vnd.openxmlformats-officedocument.'
                   'spreadsheetml.sharedStrings+xml"/></Types>')
        z.writestr("_rels/.rels", f'<Relationships xmlns="{PKG}"><Relationship Id="rId1" '
                   f'Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", f'<workbook xmlns="{NS}" xmlns:r="{REL}"><sheets><sheet '
                   'name="台账" sheetId="1" r:id="rId1"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels", f'<Relationships xmlns="{PKG}"><Relationship '
                   f'Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>'
                   f'<Relationship Id="rId2" Type="{REL}/sharedStrings" '
                   'Target="sharedStrings.xml"/></Relationships>')
        z.writestr("xl/sharedStrings.xml", f'<sst xmlns="{NS}" uniqueCount="{len(strings)}">'
                   + "".join(f"<si><t>{escape(s)}</t></si>" for s in strings) + "</sst>")
        z.write(sheet, "xl/worksheets/sheet1.xml")
    sheet.unlink()
    return households, rows


def child(mode: str, path: str) -> None:
    """Runs in its own process: one import (or one read), then its figures as JSON."""
    started = time.monotonic()
    out: dict[str, object] = {}
    if mode == "import":
        from sync.ledger_import import run_import

        couch = Couch(os.environ["BENCH_COUCH_URL"], os.environ["BENCH_COUCH_USER"],
                      os.environ["BENCH_COUCH_PASSWORD"], os.environ["BENCH_PREFIX"])
        summary = run_import(couch, Path(path), dry_run=False)
        out = {"households": summary.households, "created": summary.created,
               "problems": summary.problems}
    elif mode == "openpyxl":
        import openpyxl

        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        out = {"rows": sum(1 for _ in wb.worksheets[0].iter_rows(values_only=True))}
    elif mode == "baseline":
        pass  # the interpreter and our imports, nothing else: the floor of the peak
    out["seconds"] = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_s"] = usage.ru_utime + usage.ru_stime
    out["peak_mb"] = _vm_hwm_mb()
    print(json.dumps(out))


def _vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_child(mode: str, path: Path, env: dict[str, str]) -> dict[str, float]:
    r = subprocess.run([sys.executable, __file__, "--child", mode, str(path)], env=env,
                       capture_output=True, text=True, timeout=900, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def raw_bulk_rate(couch: Couch, spec: demo.Spec, limit: int) -> float:
    """Households/s of plain _bulk_docs batches of 500 of the same documents (no checks)."""
    docs = [h for _, content in demo.ledgers(spec) for h in content.households][:limit]
    prefix_couch = Couch(couch.url, *couch.auth, prefix="raw_")
    dbs = {h["grid"] for h in docs}
    for g in dbs:
        prefix_couch.ensure_db(naming.grid_db_name(g, "raw_"))
    started = time.monotonic()
    for i in range(0, len(docs), 500):
        chunk = docs[i:i + 500]
        by_db: dict[str, list[dict]] = {}
        for d in chunk:
            by_db.setdefault(naming.grid_db_name(d["grid"], "raw_"), []).append(d)
        for db, batch in by_db.items():
            prefix_couch.bulk_docs(db, batch)
    return len(docs) / (time.monotonic() - started)


def measure(size: int, files: Path, first: bool) -> dict[str, object]:
    spec = spec_for(size)
    path = files / f"ledger-{size}.xlsx"
    t = time.monotonic()
    households, rows = write_excel_style(spec, path)
    made = time.monotonic() - t
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-") as var:
        couch_proc = EmbeddedCouch(Settings(var_dir=Path(var)))
        couch_proc.start()
        try:
            prefix = "bench_"
            couch = Couch(couch_proc.url, couch_proc.user, couch_proc.password, prefix)
            provision(couch)
            demo.load_directory(couch, spec, with_accounts=False)
            env = {**os.environ, "BENCH_COUCH_URL": couch_proc.url,
                   "BENCH_COUCH_USER": couch_proc.user,
                   "BENCH_COUCH_PASSWORD": couch_proc.password, "BENCH_PREFIX": prefix}
            couch_cpu = cpu_seconds(couch_proc.pid)
            result = run_child("import", path, env)
            result["couch_cpu_s"] = cpu_seconds(couch_proc.pid) - couch_cpu
            again = run_child("import", path, env)  # re-import: reads and compares only
            baseline = run_child("baseline", path, env)
            raw = raw_bulk_rate(couch, spec, min(households, 20000))
            reader = run_child("openpyxl", path, env) if first else None
        finally:
            couch_proc.stop()
    assert result["created"] == households and result["problems"] == 0, result
    return {"households": households, "rows": rows, "file_mb": path.stat().st_size / 2**20,
            "made_s": made, "import_s": result["seconds"],
            "rate": households / result["seconds"], "peak_mb": result["peak_mb"],
            "cpu_s": result["cpu_s"], "couch_cpu_s": result["couch_cpu_s"],
            "reimport_rate": households / again["seconds"], "baseline_mb": baseline["peak_mb"],
            "raw_rate": raw, "openpyxl_rows_s": reader and reader["rows"] / reader["seconds"],
            "openpyxl_peak_mb": reader and reader["peak_mb"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000",
                        help="households per spreadsheet, comma-separated (at most two)")
    parser.add_argument("--keep-files", type=Path, default=None,
                        help="keep the generated spreadsheets in this folder")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    sizes = [int(s) for s in args.sizes.split(",")][:2]
    with tempfile.TemporaryDirectory(prefix="doorstep-ledgers-") as tmp:
        files = args.keep_files or Path(tmp)
        files.mkdir(parents=True, exist_ok=True)
        results = [measure(size, files, i == 0) for i, size in enumerate(sizes)]
    print(f"{'households':>10} {'rows':>8} {'file MB':>8} {'import s':>9} {'hh/s':>7} "
          f"{'re-import hh/s':>15} {'raw bulk hh/s':>14} {'ratio':>6} {'peak MB':>8} "
          f"{'(interp.)':>9}")
    for r in results:
        print(f"{r['households']:>10,} {r['rows']:>8,} {r['file_mb']:>8.1f} {r['import_s']:>9.1f}"
              f" {r['rate']:>7,.0f} {r['reimport_rate']:>15,.0f} {r['raw_rate']:>14,.0f}"
              f" {r['rate'] / r['raw_rate']:>6.2f} {r['peak_mb']:>8.1f} {r['baseline_mb']:>9.1f}")
    print("CPU time of the import (the machine is shared, so wall time is noisy; CPU time is "
          "not):")
    for r in results:
        # Two cores: Python parses and checks on one while CouchDB writes on the other.
        bound = max(r["cpu_s"], r["couch_cpu_s"], (r["cpu_s"] + r["couch_cpu_s"]) / 2)
        print(f"  {r['households']:>8,} households: python {r['cpu_s']:.1f} s, couchdb "
              f"{r['couch_cpu_s']:.1f} s → on two idle cores at most "
              f"{r['households'] / bound:,.0f} households/s")
    first = results[0]
    if first["openpyxl_rows_s"]:
        ours = first["rows"] / first["import_s"]
        print(f"reading alone, openpyxl read-only: {first['openpyxl_rows_s']:,.0f} rows/s, peak "
              f"{first['openpyxl_peak_mb']:.1f} MB (the whole import: {ours:,.0f} rows/s)")
    if len(results) == 2:
        a, b = results
        print(f"peak memory growth {a['households']:,} → {b['households']:,} households: "
              f"{b['peak_mb'] - a['peak_mb']:+.1f} MB ({b['peak_mb'] / a['peak_mb']:.2f}×)")


if __name__ == "__main__":
    main()
