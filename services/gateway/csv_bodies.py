"""CSV answers of the aggregate and analytics endpoints (API.md, "CSV").

A client asks with `format=csv` or `Accept: text/csv`. The body is RFC 4180
(CRLF line ends), its header row the JSON rows' keys in order:

- a list of rows is the table itself;
- an object whose values are all lists (stops_by_reason, arrests, ...)
  gets a first column `table` naming the list each row comes from;
- an object with one list beside scalars (disparities' `groups`, officers'
  `officers`) is that list's rows; the scalars (reference group, range) are
  what the request said;
- an interval {"value", "low", "high"} becomes three columns `name`,
  `name_low`, `name_high`; null is an empty field.

    /nc/api/agency/78/stops/?format=csv  ->  nc-78-stops.csv
"""

from __future__ import annotations

import csv
import io

CSV_TYPE = "text/csv; charset=utf-8"
JSON_TYPE = "application/json"


def wants_csv(req) -> bool:
    chosen = req.get_param("format")
    if chosen:
        return chosen == "csv"
    accept = req.get_header("Accept")
    return bool(accept) and "text/csv" in accept and \
        req.client_prefers([JSON_TYPE, "text/csv"]) == "text/csv"


def filename(path: str) -> str:
    """/{state}/api/agency/{id}/{endpoint}/ -> {state}-{id}-{endpoint}.csv
    (statewide paths: {state}-statewide-{endpoint}.csv)."""
    parts = [part for part in path.split("/") if part]
    state, endpoint = parts[0], parts[-1]
    where = "statewide" if parts[2] == "statewide" else parts[3]
    return f"{state}-{where}-{endpoint}.csv"


def set_csv_headers(req, resp) -> None:
    resp.content_type = CSV_TYPE
    resp.set_header("Content-Disposition", f'attachment; filename="{filename(req.path)}"')


def _flat(row: dict) -> dict:
    flat = {}
    for key, value in row.items():
        if isinstance(value, dict):
            # An interval; a null one leaves its three columns (named by the
            # resource's header) empty.
            flat[key], flat[f"{key}_low"], flat[f"{key}_high"] = (
                value["value"], value["low"], value["high"])
        else:
            flat[key] = value
    return flat


def rows_of(body) -> list[dict]:
    if isinstance(body, list):
        return [_flat(row) for row in body]
    lists = {key: value for key, value in body.items() if isinstance(value, list)}
    if len(lists) == len(body):
        return [{"table": name, **_flat(row)} for name, rows in lists.items() for row in rows]
    (rows,) = lists.values()
    return [_flat(row) for row in rows]


def to_csv(body, header: list[str] | None = None) -> str:
    """The CSV text of `body`; `header` names the columns in order, also
    when the body has no row to take them from (rows add any it lacks)."""
    rows = rows_of(body)
    out = io.StringIO()
    header = list(header or [])
    for row in rows:
        header += [key for key in row if key not in header]
    if not header:
        return ""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if row.get(key) is None else _text(row.get(key)) for key in header])
    return out.getvalue()


def _text(value) -> str:
    # As in the JSON: true/false, not Python's True/False.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
