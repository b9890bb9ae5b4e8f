"""Zedland's release format, registered with the ingest service."""

from __future__ import annotations

from collections import Counter
from datetime import date

from services.ingest.agencies import AGENCY_TABLE
from services.ingest.errors import ImportFailed
from services.ingest.formats import RELEASES, Release
from tests.support.zz_state import ZZ

CSV_FILE = "stops.csv"
COLUMNS = ["stop_id", "agency", "date", "purpose", "race", "searched", "contraband",
           "officer"]
RACES = frozenset("WBHAIU")


class ZzRows:
    def __init__(self, rejects, agency_id_for):
        self.rejects = rejects
        self.agency_id_for = agency_id_for
        self.lines: Counter = Counter()
        self.loaded: Counter = Counter()
        self.dropped: Counter = Counter()

    def rows_for(self, file_name: str):
        return self.stop_rows

    def stop_rows(self, batches):
        batches = iter(batches)
        first, lines = next(batches, (1, []))
        if not lines or lines[0].strip().split(",") != COLUMNS:
            raise ImportFailed(f"load {CSV_FILE}",
                               f"{CSV_FILE} must start with the header {','.join(COLUMNS)}")
        return self._rows([(first + 1, lines[1:]), *batches])

    def _rows(self, batches):
        for first, lines in batches:
            for line_no, line in enumerate(lines, first):
                if not line.strip():
                    continue
                self.lines[CSV_FILE] += 1
                problem, row = self._parse(line.strip())
                if problem:
                    self.rejects.add(CSV_FILE, line_no, problem, line)
                    continue
                self.loaded[CSV_FILE] += 1
                yield row

    def _parse(self, line: str) -> tuple[str | None, str]:
        values = line.split(",")
        if len(values) != len(COLUMNS):
            return f"{len(values)} fields where {len(COLUMNS)} are expected", ""
        stop_id, agency, day, purpose, race, searched, contraband, officer = values
        if not stop_id.isdigit():
            return f"stop_id {stop_id!r} is not a number", ""
        try:
            date.fromisoformat(day)
        except ValueError:
            return f"date {day!r} is not YYYY-MM-DD", ""
        if purpose not in ("1", "2", "3"):
            return f"purpose {purpose!r} is not 1, 2 or 3", ""
        if race not in RACES:
            return f"race {race!r} is not one of {''.join(sorted(RACES))}", ""
        agency_id = self.agency_id_for(agency)
        flags = ["t" if value == "1" else "f" for value in (searched, contraband)]
        return None, "\t".join([stop_id, str(agency_id), f"{day} 12:00", purpose, race,
                                *flags, officer or "\\N"]) + "\n"


class ZzRelease(Release):
    state = ZZ
    files = (CSV_FILE,)
    tables_sql = AGENCY_TABLE + """
CREATE TABLE {schema}.stop (
    stop_id bigint NOT NULL, agency_id integer NOT NULL, date timestamptz NOT NULL,
    purpose smallint NOT NULL, race char(1) NOT NULL, searched boolean NOT NULL,
    contraband boolean NOT NULL, officer_id text
);
"""
    copy_tables = {CSV_FILE: "stop"}
    table_keys = {"stop": ("ALTER TABLE {schema}.stop ADD PRIMARY KEY (stop_id)",)}
    foreign_keys = {"stop": (
        "ALTER TABLE {schema}.stop ADD FOREIGN KEY (agency_id) REFERENCES {schema}.agency",)}
    count_names = {CSV_FILE: "stops"}

    def parser(self, request, rejects, agencies, engine) -> ZzRows:
        return ZzRows(rejects, agencies.id_for)


RELEASES.register(ZZ.code, ZzRelease())
