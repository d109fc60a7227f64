"""Writes the example ledgers in this folder (run from the project root):

    .venv/bin/python examples/make_examples.py

ledger-example.xlsx / .csv: 3 new buildings (101幢) of the demo grids G001–G003, in the
template, ready to import into the demo that `./start` loads (they are new households, not yet
in a micro-grid). ledger-errors.csv: the same kind of ledger with one mistake of each kind
the import reports, to try `doorstep import examples/ledger-errors.csv --dry-run`.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sync import demo  # noqa: E402
from sync.directory import DEFAULT_TAGS  # noqa: E402
from sync.ledger_template import COLUMNS, household_rows, write_ledger  # noqa: E402

SPEC = demo.Spec(seed=7, grids=3, households_per_grid=8, first_building=101, visit_months=0)
COL = {c.field: i for i, c in enumerate(COLUMNS)}


def rows() -> list[list[str]]:
    labels = {k: t["zh"] for k, t in DEFAULT_TAGS["tags"].items()}
    out = []
    for _, content in demo.ledgers(SPEC):
        for h in content.households:
            for row in household_rows(h, labels):
                row[COL["micro_grid"]] = ""  # new buildings: no micro-grid yet
                out.append(row)
    return out


def with_errors(good: list[list[str]]) -> list[list[str]]:
    """One mistake per kind, each on the first row of a different household."""
    heads = [i for i, r in enumerate(good) if r[COL["grid"]]]
    bad = [list(r) for r in good]
    mistakes = [
        ("grid", "G404"),  # unknown_grid
        ("building", ""),  # missing_value
        ("phone", "1380013800"),  # bad_phone: ten digits
        ("id_number", "110101194103070025"),  # bad_id_number: wrong check digit
        ("person_tags", "孤寡老人"),  # unknown_tag
        ("housing", "借住"),  # bad_value
        ("micro_grid", "G001-M99"),  # unknown_micro_grid
    ]
    for (column, value), i in zip(mistakes, heads, strict=False):
        bad[i][COL[column]] = value
    # duplicate_household: an untouched household's first row again at the end.
    bad.append(list(good[heads[len(mistakes)]]))
    return bad


def main() -> None:
    good = rows()
    write_ledger(HERE / "ledger-example.xlsx", good)
    write_ledger(HERE / "ledger-example.csv", good)
    write_ledger(HERE / "ledger-errors.csv", with_errors(good))
    print(f"wrote {len(good)} rows to {HERE}")


if __name__ == "__main__":
    main()
