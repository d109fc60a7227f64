"""The ledger spreadsheet template: its columns, their Chinese headers, and value words.

One row per person, the household's rows adjacent, head of household (户主) first. The import
reads this template and the demo writes it; docs/import-template.md explains it to offices.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl


@dataclass(frozen=True)
class Column:
    field: str
    header: str  # the header we write and document
    aliases: tuple[str, ...] = ()  # other headers offices use for the same column
    required: bool = False
    household: bool = False  # describes the household, not the person


COLUMNS: tuple[Column, ...] = (
    Column("grid", "网格编号", ("网格", "网格号", "网格编码", "所属网格", "网格名称"), True, True),
    Column("micro_grid", "微网格", ("微网格编号", "微网格号", "微网格名称"), household=True),
    Column("building", "楼栋", ("楼栋号", "楼号", "幢", "幢号", "栋", "栋号"), True, True),
    Column("unit", "单元", ("单元号",), household=True),
    Column("floor", "楼层", ("层", "所在楼层", "层数"), household=True),
    Column("room", "房号", ("房间号", "室", "室号", "门牌号"), True, True),
    Column("name", "姓名", ("人员姓名", "居民姓名"), True),
    Column("relation", "与户主关系", ("与户主的关系", "关系")),
    Column("birth_year", "出生年份", ("出生年", "出生日期", "出生年月")),
    Column("phone", "联系电话", ("电话", "手机", "手机号", "手机号码", "联系方式", "电话号码")),
    Column("id_number", "身份证号", ("身份证号码", "公民身份号码", "证件号码", "身份证")),
    Column("person_tags", "人员标签", ("标签", "人员类别", "特殊人群")),
    Column("household_tags", "户标签", ("户类别", "家庭标签"), household=True),
    Column("housing", "住房性质", ("房屋性质", "居住性质", "住房类型"), household=True),
    Column("residency", "户籍性质", ("户口性质", "人口类型", "户籍类型"), household=True),
    Column("note", "备注", ("户备注",), household=True),
)
BY_FIELD = {c.field: c for c in COLUMNS}
IGNORED_HEADERS = ("序号",)  # a running number many offices keep in column A
ADDRESS_FIELDS = ("grid", "building", "unit", "room")  # blank on every later row of a household

HOUSING_WORDS = {"owner": "自住", "rented": "租住", "vacant": "空置"}
HOUSING_ALIASES = {"自有": "owner", "自有住房": "owner", "自购": "owner", "租赁": "rented",
                   "出租": "rented", "租房": "rented", "租户": "rented", "空房": "vacant",
                   "闲置": "vacant"}
RESIDENCY_WORDS = {"registered": "户籍", "floating": "流动"}
RESIDENCY_ALIASES = {"户籍人口": "registered", "常住": "registered", "本地": "registered",
                     "流动人口": "floating", "外来": "floating", "暂住": "floating"}
HEAD = "户主"
TAG_SEPARATORS = re.compile(r"[,，、;；/|\s]+")
_WHOLE_FLOAT = re.compile(r"-?\d+\.0+")
_HEADER_NOISE = re.compile(r"[\s*＊:：]|[（(][^）)]*[）)]")


def normalize_header(text: str) -> str:
    """`联系电话（手机）*` → `联系电话`: offices mark required columns and add hints."""
    return _HEADER_NOISE.sub("", unicodedata.normalize("NFKC", text))


def header_lookup() -> dict[str, str]:
    """Every accepted header (normalized) → field name; "" for columns we ignore."""
    out = {normalize_header(h): "" for h in IGNORED_HEADERS}
    for c in COLUMNS:
        for h in (c.header, *c.aliases):
            out[normalize_header(h)] = c.field
    return out


def cell_text(value: Any) -> str:
    """One cell as clean text: NFKC (full-width digits, ideographic spaces), `5.0` → `5`."""
    if value is None:
        return ""
    text = str(value)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    text = text.strip()
    if "." in text and _WHOLE_FLOAT.fullmatch(text):
        text = text.split(".", 1)[0]
    return text


def word_for(mapping: dict[str, str], aliases: dict[str, str], text: str) -> str | None:
    """Read a Chinese (or English) value word; None when it is not one we know."""
    if text in mapping:
        return text
    by_word = {zh: code for code, zh in mapping.items()}
    return by_word.get(text) or aliases.get(text)


def split_tags(text: str) -> list[str]:
    return [t for t in TAG_SEPARATORS.split(text) if t]


# --- writing ------------------------------------------------------------------------------


def household_rows(doc: dict[str, Any], tag_labels: dict[str, str]) -> Iterator[list[str]]:
    """A household document as template rows (the inverse of what the import builds)."""
    address = doc["address"]
    member_tags = {t for m in doc["members"].values() for t in m.get("tags", [])}
    own_tags = [t for t in doc["tags"] if t not in member_tags]
    first = {
        "grid": doc["grid"], "micro_grid": doc.get("micro_grid") or "",
        "building": address["building"], "unit": address.get("unit", ""),
        "floor": str(address["floor"]), "room": address["room"],
        "household_tags": "、".join(tag_labels.get(t, t) for t in own_tags),
        "housing": HOUSING_WORDS[doc["housing"]], "residency": RESIDENCY_WORDS[doc["residency"]],
        "note": doc.get("note", ""),
    }
    people = list(doc["members"].values()) or [None]
    for i, member in enumerate(people):
        row = dict(first) if i == 0 else {}
        if member is not None:
            row.update({
                "name": member["name"], "relation": member.get("relation", ""),
                "birth_year": str(member.get("birth_year") or ""),
                "phone": member.get("phone", ""), "id_number": member.get("id_number", ""),
                "person_tags": "、".join(tag_labels.get(t, t) for t in member.get("tags", [])),
            })
        yield [row.get(c.field, "") for c in COLUMNS]


def write_ledger(path: Path, rows: Iterable[list[str]]) -> int:
    """Write template rows to .xlsx or .csv (UTF-8 with BOM, so Excel shows the Chinese)."""
    headers = [c.header for c in COLUMNS]
    count = 0
    if path.suffix.lower() == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(headers)
            for row in rows:
                writer.writerow(row)
                count += 1
        return count
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("台账")
    ws.freeze_panes = "A2"
    ws.append(headers)
    for row in rows:
        # Phone and ID numbers stay text: as numbers Excel would round an ID number.
        ws.append(row)
        count += 1
    wb.save(path)
    return count
