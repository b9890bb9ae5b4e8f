"""Turn summary counts into the rows API.md shows:

    {"year": 2006, "purpose": "Speed Limit Violation",
     "asian": 5, "black": 126, "hispanic": 35, "native_american": 0,
     "non-hispanic": 170, "other": 1, "white": 73}

Each driver is counted once by race and once by ethnicity, so each family
sums to the row's total. A row exists only for a group with a stop.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

RACE_KEYS = {"A": "asian", "B": "black", "I": "native_american", "U": "other", "W": "white"}
ETHNICITY_KEYS = {"H": "hispanic", "N": "non-hispanic"}
COUNT_KEYS = tuple(sorted((*RACE_KEYS.values(), *ETHNICITY_KEYS.values())))


def count_rows(counts: Iterable, group: str | None = None,
               labels: Mapping[int, str] | None = None, period: str = "year") -> list[dict]:
    """`counts` are (period, code, race, ethnicity, stops); `period` names
    the period's key (year, or month as "2015-03"), `group` the code's (None:
    rows by period alone), `labels` its label."""
    rows: dict[tuple, dict] = {}
    for year, code, race, ethnicity, stops in counts:
        row = rows.get((year, code))
        if row is None:
            row = {period: year}
            if group is not None:
                row[group] = labels.get(code, str(code)) if labels else code
            row.update(dict.fromkeys(COUNT_KEYS, 0))
            rows[(year, code)] = row
        if race in RACE_KEYS:
            row[RACE_KEYS[race]] += stops
        if ethnicity in ETHNICITY_KEYS:
            row[ETHNICITY_KEYS[ethnicity]] += stops
    return [rows[key] for key in sorted(rows)]
