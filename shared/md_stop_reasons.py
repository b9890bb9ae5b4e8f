"""Maryland's stop-reason table: a citation's title-section stem -> purpose.

STOP_REASON holds a Maryland Transportation Article citation; the md parser
cleans it to its stem (`21-801.1(b)` -> `21-801`) and looks the stem up
here. An unmapped stem is Other/Unknown; a stem mapped to one of
MD_DROPPED_PURPOSES drops the stop.

The product ships a default table (shared/data/md_stop_reasons.csv, written
by this project from the Transportation Article, header `stem,purpose`).
An operator replaces it through the admin service, which checks it with
`parse` and sends it to ingest (services/ingest/md/stop_reasons.py).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from shared.states import MD_DROPPED_PURPOSES, MD_PURPOSES

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "md_stop_reasons.csv"
HEADER = ("stem", "purpose")
STEM = re.compile(r"\d+(?:-\d+)?", re.ASCII)
PURPOSES = (*MD_PURPOSES.values(), *MD_DROPPED_PURPOSES)
_LABELS = {label.casefold(): label for label in PURPOSES}


def parse(content: str) -> dict[str, str]:
    """{stem: purpose} of a mapping CSV; a ValueError names the line and
    column of the first problem. Purposes are matched case-insensitively
    and given back as their labels; blank lines are skipped."""
    if content.startswith("\ufeff"):
        content = content[1:]
    mapping: dict[str, str] = {}
    first_line: dict[str, int] = {}
    header_seen = False
    reader = csv.reader(io.StringIO(content, newline=""))
    line_no = 0
    for fields in reader:
        line_no = reader.line_num
        if not any(field.strip() for field in fields):
            continue
        if not header_seen:
            header_seen = True
            names = tuple(field.strip().lower() for field in fields)
            if names[:2] != HEADER or any(names[2:]):
                column = next((i for i, name in enumerate(HEADER, 1)
                               if i > len(names) or names[i - 1] != name), len(HEADER) + 1)
                raise ValueError(f"line {line_no}, column {column}: the header must be "
                                 f"'stem,purpose', not {','.join(fields)!r}")
            continue
        if len(fields) < 2:
            raise ValueError(f"line {line_no}, column 2: purpose is missing")
        if len(fields) > 2 and any(field.strip() for field in fields[2:]):
            raise ValueError(f"line {line_no}, column 3: only two columns are expected "
                             f"(stem, purpose)")
        stem, purpose = fields[0].strip(), fields[1].strip()
        if not STEM.fullmatch(stem):
            raise ValueError(f"line {line_no}, column 1: stem {stem!r} is not a "
                             f"title-section stem such as 21-801 or 64")
        if stem in mapping:
            raise ValueError(f"line {line_no}, column 1: stem {stem!r} is already mapped "
                             f"on line {first_line[stem]}")
        label = _LABELS.get(purpose.casefold())
        if label is None:
            raise ValueError(f"line {line_no}, column 2: purpose {purpose!r} is not one of "
                             f"{', '.join(PURPOSES)}")
        mapping[stem] = label
        first_line[stem] = line_no
    if not header_seen:
        raise ValueError(f"line {max(line_no, 1)}, column 1: the mapping is empty; it must "
                         f"start with the header 'stem,purpose'")
    return mapping


def default() -> dict[str, str]:
    """The mapping the product ships."""
    return parse(DEFAULT_PATH.read_text(encoding="utf-8"))




def to_csv(table: dict[str, str]) -> str:
    """The table as the CSV `parse` reads, stems in order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(sorted(table.items()))
    return out.getvalue()
