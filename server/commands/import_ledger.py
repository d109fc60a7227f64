"""`doorstep import FILE [--dry-run] [--report FILE.csv]`: load a grid office's ledger.

Prints, row by row, what is (or in a dry run would be) created or updated and every error;
unchanged rows only go to the report file. Exit code 0: no errors; 1: errors were found (the
valid households were still written, unless --dry-run); 2: the command could not run.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path
from typing import IO, Any, TextIO

from server import settings as settings_mod
from server.errors import ConfigError
from server.runtime import couch_connection
from sync.ledger_import import LedgerFileError, Outcome, Summary, run_import
from sync.provision import provision

REPORT_HEADER = ("row", "household", "name", "action", "kind", "message")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="import a household ledger spreadsheet (.xlsx or .csv)",
                       description="Import a household ledger spreadsheet; see "
                       "docs/import-template.md for the template.")
    p.add_argument("file", type=Path, help="the ledger, .xlsx or .csv")
    p.add_argument("--dry-run", action="store_true",
                   help="check and report what would change, write nothing")
    p.add_argument("--report", type=Path, metavar="FILE.csv",
                   help="also write every row's outcome to this CSV file")
    p.add_argument("--quiet", action="store_true", help="print only errors and the summary")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise ConfigError(f"{args.file} does not exist or is not a file")
    if args.file.suffix.lower() not in (".xlsx", ".csv"):
        raise ConfigError(f"{args.file.name}: only .xlsx and .csv ledgers can be imported "
                          "(save an .xls file as .xlsx first)")
    settings = settings_mod.from_env()
    with couch_connection(settings) as couch, _report_file(args.report) as report:
        provision(couch)  # databases and the tag configuration, if this is a new install
        progress = Progress(sys.stderr)
        printer = OutcomePrinter(sys.stdout, report, args.quiet, progress)
        try:
            summary = run_import(couch, args.file, dry_run=args.dry_run,
                                 on_outcome=printer.print, on_progress=progress.update)
        except LedgerFileError as exc:
            progress.done()
            print(f"doorstep: {exc}", file=sys.stderr)
            return 1
    progress.done()
    print(summary_line(summary, args.dry_run, progress.elapsed()))
    return 1 if summary.problems else 0


class _report_file:
    """An optional CSV report, UTF-8 with BOM so that Excel shows Chinese names."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.file: IO[str] | None = None

    def __enter__(self) -> Any:  # a csv writer, or None
        if self.path is None:
            return None
        try:
            self.file = self.path.open("w", encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise ConfigError(f"cannot write the report {self.path} ({exc.strerror})") from None
        writer = csv.writer(self.file)
        writer.writerow(REPORT_HEADER)
        return writer

    def __exit__(self, *exc: object) -> None:
        if self.file:
            self.file.close()


class OutcomePrinter:
    """One line per row: what happens to the person (or the household) on that row."""

    def __init__(self, out: TextIO, report: Any, quiet: bool, progress: Progress) -> None:
        self.out = out
        self.report = report
        self.quiet = quiet
        self.progress = progress

    def print(self, o: Outcome) -> None:
        lines = list(row_lines(o))
        if self.report is not None:
            self.report.writerows(lines)
        shown = [line for line in lines
                 if line[3] == "error" or (not self.quiet and line[3] in ("create", "update"))]
        if shown:
            self.progress.clear()
            for row, hid, name, action, kind, message in shown:
                detail = f"{kind}: {message}" if kind else message
                self.out.write(f"row {row:<7} {action:<9} {hid:<22} {name}"
                               f"{'  ' + detail if detail else ''}\n")


def row_lines(o: Outcome) -> list[tuple[int, str, str, str, str, str]]:
    """(row, household, name, action, kind, message) for every row of one household."""
    by_row: dict[int, list[tuple[str, str]]] = {}
    for p in o.problems:
        by_row.setdefault(p.row, []).append((p.kind, p.message))
    lines = []
    for i, row in enumerate(o.rows):
        name = row.get("name")
        if row.get("relation"):
            name += f" ({row.get('relation')})"
        if row.number in by_row:
            lines += [(row.number, o.household_id, name, "error", kind, msg)
                      for kind, msg in by_row[row.number]]
        elif o.action == "error":
            lines.append((row.number, o.household_id, name, "skipped", "",
                          "another row of this household has an error"))
        else:
            message = ""
            if i == 0 and o.changed:
                message = "changes " + ", ".join(o.changed)
            if i == 0 and o.kept:
                message += ("; " if message else "") + "kept field edits of " + ", ".join(o.kept)
            lines.append((row.number, o.household_id, name, o.action, "", message))
    return lines


def summary_line(s: Summary, dry_run: bool, seconds: float) -> str:
    verb = "would be " if dry_run else ""
    rate = f", {s.households / seconds:,.0f} households/s" if seconds > 0 else ""
    return (f"{'dry run: ' if dry_run else ''}{s.rows:,} rows, {s.households:,} households: "
            f"{s.created:,} {verb}created, {s.updated:,} {verb}updated, "
            f"{s.unchanged:,} unchanged, {s.rejected:,} rejected with {s.problems:,} error(s)"
            f" in {seconds:.1f} s{rate}")


class Progress:
    """A self-overwriting line on stderr, only when stderr is a terminal."""

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.live = err.isatty()
        self.start = time.monotonic()
        self.shown = False
        self.last = 0.0

    def update(self, rows: int, total: int | None) -> None:
        now = time.monotonic()
        if not self.live or now - self.last < 0.2:
            return
        self.last = now
        rate = rows / max(now - self.start, 1e-6)
        bar = ""
        if total:
            done = min(rows / total, 1.0)
            bar = f"[{'#' * int(done * 30):<30}] {done:4.0%} "
        self.err.write(f"\r\033[Kimporting {bar}{rows:,} rows, {rate:,.0f} rows/s")
        self.err.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.err.write("\r\033[K")
            self.err.flush()
            self.shown = False

    def done(self) -> None:
        self.clear()

    def elapsed(self) -> float:
        return time.monotonic() - self.start
