"""The operators' tables, uploaded as CSV and checked line by line: the
agency mapping (header `code,name,geoid`), which replaces a state's whole
mapping, and Maryland's stop reasons (header `stem,purpose`).

A mapping names the display name and census GEO_ID of each raw agency code
(md, il) or raw agency description (nc). Admin stores it and announces the
whole new mapping in `agency_mapping_updated`; stats applies it to the
agencies it publishes at once, and to every later import.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

from sqlalchemy import delete, select, text

from shared import md_stop_reasons, outbox
from shared.db import advisory_key
from shared.events import ADMIN_SOURCE, AGENCY_MAPPING_UPDATED, STOP_REASONS_UPDATED
from shared.operator import InvalidInput
from shared.tables import admin_agency_mappings, admin_md_stop_reasons, admin_outbox

HEADER = ("code", "name", "geoid")
# A census GEO_ID: summary level, "US", then the state's and the place's codes,
# as in 0500000US37063 (Durham County) or 1600000US3719000 (Durham city).
GEOID = re.compile(r"^\d{7}US\d{2,12}$")
MAX_ROWS = 100_000


def _lock(conn, name: str) -> None:
    """Two uploads of one table at once take turns (a delete does not see
    the other's uncommitted rows, and the inserts would collide)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(name)})


def parse_csv(body: str, header: tuple[str, ...] = HEADER) -> list[dict]:
    """Rows as dicts keyed by `header`; InvalidInput naming the line and
    column of the first problems."""
    reader = csv.reader(io.StringIO(body.lstrip("\ufeff")))
    problems: list[str] = []
    try:
        first = next(reader, None)
        if first is None or tuple(cell.strip().lower() for cell in first) != header:
            raise InvalidInput({"body": f"line 1: the header must be {','.join(header)}"})
        rows = []
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                problems.append(f"line {line}: {len(row)} columns where {len(header)} "
                                f"({','.join(header)}) are expected")
                continue
            rows.append((line, dict(zip(header, (cell.strip() for cell in row), strict=True))))
            if len(rows) > MAX_ROWS:
                raise InvalidInput({"body": f"more than {MAX_ROWS:,} rows"})
    except csv.Error as error:
        raise InvalidInput({"body": f"line {reader.line_num}: not valid CSV ({error})"}) from None
    if problems:
        raise InvalidInput({"body": "; ".join(problems[:10])})
    return rows


def parse_mapping(body: str) -> list[dict]:
    problems = []
    seen: dict[str, int] = {}
    mapping = []
    for line, row in parse_csv(body):
        if not row["code"]:
            problems.append(f"line {line}, column code: must not be empty")
        elif row["code"] in seen:
            problems.append(f"line {line}, column code: {row['code']!r} is already mapped "
                            f"on line {seen[row['code']]}")
        seen.setdefault(row["code"], line)
        if not row["name"]:
            problems.append(f"line {line}, column name: must not be empty")
        if row["geoid"] and not GEOID.match(row["geoid"]):
            problems.append(f"line {line}, column geoid: {row['geoid']!r} is not a census "
                            "GEO_ID such as 0500000US37063")
        mapping.append({"code": row["code"], "name": row["name"],
                        "geoid": row["geoid"] or None})
    if problems:
        raise InvalidInput({"body": "; ".join(problems[:10])})
    return mapping


def replace_mapping(conn, state: str, rows: list[dict]) -> dict:
    """Replace the state's mapping and announce it (caller's transaction)."""
    _lock(conn, f"admin-mapping:{state}")
    conn.execute(delete(admin_agency_mappings).where(admin_agency_mappings.c.state == state))
    if rows:
        conn.execute(admin_agency_mappings.insert(), [{"state": state, **row} for row in rows])
    outbox.record(conn, ADMIN_SOURCE, AGENCY_MAPPING_UPDATED,
                  {"state": state, "rows": rows,
                   "updated_at": datetime.now(UTC).isoformat()}, table=admin_outbox)
    return {"state": state, "rows": len(rows)}


def current_mapping(conn, state: str) -> list[dict]:
    return [dict(row._mapping) for row in conn.execute(
        select(admin_agency_mappings.c.code, admin_agency_mappings.c.name,
               admin_agency_mappings.c.geoid)
        .where(admin_agency_mappings.c.state == state)
        .order_by(admin_agency_mappings.c.code))]


def replace_stop_reasons(conn, body: str) -> dict:
    """Replace Maryland's stop-reason table and send it to ingest, which
    applies it from the next md import (caller's transaction)."""
    try:
        table = md_stop_reasons.parse(body)
    except ValueError as error:
        raise InvalidInput({"body": str(error)}) from None
    rows = [{"stem": stem, "purpose": purpose} for stem, purpose in sorted(table.items())]
    _lock(conn, "admin-stop-reasons:md")
    conn.execute(delete(admin_md_stop_reasons))
    if rows:
        conn.execute(admin_md_stop_reasons.insert(), rows)
    outbox.record(conn, ADMIN_SOURCE, STOP_REASONS_UPDATED,
                  {"state": "md", "rows": rows, "updated_at": datetime.now(UTC).isoformat()},
                  table=admin_outbox)
    return {"state": "md", "stems": len(rows)}


def stop_reasons_csv(conn) -> str:
    """The table in force, as CSV: the operators' upload, else the default."""
    rows = conn.execute(select(admin_md_stop_reasons.c.stem, admin_md_stop_reasons.c.purpose)
                        .order_by(admin_md_stop_reasons.c.stem)).all()
    table = {row.stem: row.purpose for row in rows} or md_stop_reasons.default()
    return md_stop_reasons.to_csv(table)
