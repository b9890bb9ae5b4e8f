"""Storing census profiles: a year's profiles are replaced whole, inside the
caller's transaction, so a failure anywhere leaves the previous ones."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from shared.tables import CENSUS_COUNTS, census_profiles

COLUMNS = ("year", "geoid", "state", "name", *CENSUS_COUNTS)
# Serializes replacements: two loads of the same year never interleave their
# delete and insert (an arbitrary constant of this service's own).
LOCK_KEY = 0x63656E737573  # "census"


def replace(conn: Connection, years, rows: list[dict]) -> int:
    """Delete the profiles of `years` and insert `rows` (each of one of those
    years) in the caller's transaction; returns how many were inserted."""
    years = sorted({int(year) for year in years})
    strays = {row["year"] for row in rows} - set(years)
    if strays:
        raise ValueError(f"profiles of {sorted(strays)} given to replace those of {years}")
    conn.execute(select(func.pg_advisory_xact_lock(LOCK_KEY)))
    conn.execute(delete(census_profiles).where(census_profiles.c.year.in_(years)))
    if rows:
        conn.execute(census_profiles.insert(),
                     [{column: row[column] for column in COLUMNS} for row in rows])
    return len(rows)


def counts_by_year(conn: Connection) -> dict[int, int]:
    """How many profiles each stored year has."""
    return dict(conn.execute(select(census_profiles.c.year, func.count())
                             .group_by(census_profiles.c.year)).all())
