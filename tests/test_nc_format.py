"""North Carolina's normalization rules (services.ingest.nc.format), end to end
from raw bytes: lines are written in the state's padded CR LF format by the
synthetic writer, read back with rawfile.line_batches (NUL and CR handling),
parsed by NcRows into COPY text, with a real rejects file. No database."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.ingest import rawfile
from services.ingest.agencies import AgencyIds
from services.ingest.errors import ImportFailed
from services.ingest.idset import BITMAP_LIMIT, IdSet
from services.ingest.nc.format import (
    CONTRABAND_FILE,
    FILES,
    PERSON_FILE,
    SEARCH_BASIS_FILE,
    SEARCH_FILE,
    STOP_FILE,
    NcRows,
)
from services.ingest.nc.synthetic import (
    PERSON_WIDTHS,
    SEARCH_WIDTHS,
    STOP_WIDTHS,
    RawReleaseWriter,
    format_line,
    generate_release,
)
from services.ingest.rawfile import line_batches
from services.ingest.rejects import Rejects

ALDER = "Alder Police Department"
BIRCHWOOD = "Birchwood Police Department"
PATROL = "NC State Highway Patrol"
DATE = "2015-03-01 08:30:00.000"
N = "\\N"
NO_FLAGS = ["0"] * 7


@dataclass
class Parsed:
    rows: dict[str, list[list[str]]]
    rejected: list[dict[str, str]]
    rejects: Rejects
    parser: NcRows
    agencies: AgencyIds

    def fields(self, file_name: str) -> list[list[str]]:
        """Rows with every field stripped (the fast path hands PostgreSQL
        dates still padded; its input functions trim them)."""
        return [[value.strip() for value in row] for row in self.rows[file_name]]

    def ids(self, file_name: str) -> list[int]:
        return [int(row[0]) for row in self.rows[file_name]]


def copy_rows(text: str) -> list[list[str]]:
    """COPY text as rows of fields; every row ends with a newline."""
    if not text:
        return []
    assert text.endswith("\n")
    return [line.split("\t") for line in text[:-1].split("\n")]


def read_rejects(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def parse(tmp_path: Path, write, min_stop_id=None, max_stop_id=None,
          cr_only: bool = False) -> Parsed:
    """Write a raw release with `write(writer)` and parse all five files
    (with `cr_only`, after turning every CR LF into a CR alone)."""
    folder = tmp_path / "release"
    with RawReleaseWriter(folder) as writer:
        write(writer)
    if cr_only:
        for name in FILES:
            path = folder / name
            path.write_bytes(path.read_bytes().replace(b"\r\n", b"\r"))
    rejects = Rejects(tmp_path / "rejects.csv")
    agencies = AgencyIds("nc", {})
    parser = NcRows(rejects, agencies.id_for, min_stop_id, max_stop_id)
    rows = {}
    for name in FILES:
        rows[name] = copy_rows("".join(parser.rows_for(name)(line_batches(folder / name))))
    rejects.close()
    return Parsed(rows, read_rejects(rejects.path), rejects, parser, agencies)


def stop_row(stop_id, agency_id=1, when=DATE, purpose="1", action="3", flags=NO_FLAGS,
             officer="1000", county="Alder", city="Alder") -> list[str]:
    return [str(stop_id), str(agency_id), when, purpose, action, *flags, officer, county,
            city]


def full_stop(writer, stop_id, agency=ALDER, date=DATE, person_id=None, search_id=None):
    """A stop with a driver, a search, contraband and a search basis, all
    numbered after the stop unless told."""
    person_id = person_id or stop_id
    search_id = search_id or stop_id
    writer.stop(stop_id, agency, date)
    writer.person(person_id, stop_id)
    writer.search(search_id, stop_id, person_id)
    writer.contraband(search_id, search_id, person_id, stop_id, ounces="1.5")
    writer.search_basis(search_id, search_id, person_id, stop_id, "OB")


def raw_stop_line(values) -> bytes:
    return format_line(values, STOP_WIDTHS)


def stop_values(stop_id, agency=ALDER, date=DATE, officer="1000", county="Alder",
                city="Alder"):
    return [stop_id, agency, date, 1, 3, 0, 0, 0, 0, 0, 0, 0, officer, county, city]


# -- values: padding, NUL bytes, CR LF, quoting, escaping -----------------------------


def test_padding_is_trimmed_from_every_value(tmp_path):
    def write(writer):
        writer.stop(1, ALDER, DATE, purpose=2, action=4, driver_arrest=1, officer_id="A17",
                    county="Cedar", city="Fern Valley")
        writer.person(11, 1, "D", age=30, gender="F", ethnicity="H", race="B")
        writer.search(21, 1, 11, search_type=3, vehicle=1, driver=1)
        writer.contraband(31, 21, 11, 1, ounces="1.50", dollar_amount="200")
        writer.search_basis(41, 21, 11, 1, "TIP")

    parsed = parse(tmp_path, write)

    (stop,) = parsed.rows[STOP_FILE]
    # Every column PostgreSQL would keep as text is trimmed here; the date
    # may keep its padding (timestamp input skips it) but nothing else.
    assert stop[:2] + stop[3:] == ["1", "1", "2", "4", "1", "0", "0", "0", "0", "0", "0",
                                   "A17", "Cedar", "Fern Valley"]
    assert stop[2].strip() == DATE and stop[2].startswith(DATE)
    assert parsed.rows[PERSON_FILE] == [["11", "1", "D", "30", "F", "H", "B"]]
    assert parsed.rows[SEARCH_FILE] == [["21", "1", "11", "3", "1", "1", "0", "0", "0", "0",
                                         "0"]]
    assert parsed.rows[CONTRABAND_FILE] == [["31", "21", "11", "1", "1.50", N, N, N, N, N, N,
                                             N, N, "200"]]
    assert parsed.rows[SEARCH_BASIS_FILE] == [["41", "21", "11", "1", "TIP"]]
    assert parsed.rejects.total == 0
    assert parsed.agencies.used == {ALDER: 1}


def test_padding_is_trimmed_on_the_slow_path_too(tmp_path):
    # A quoted value sends the line through the full rules.
    def write(writer):
        writer.stop(1, f'"{ALDER}"', DATE, officer_id="A17", county="Cedar",
                    city="Fern Valley")

    parsed = parse(tmp_path, write)

    assert parsed.rows[STOP_FILE] == [stop_row(1, officer="A17", county="Cedar",
                                               city="Fern Valley")]


def test_nul_bytes_are_dropped_even_inside_a_value(tmp_path):
    def write(writer):
        line = raw_stop_line(stop_values(12, city="Fern Valley"))
        line = line.replace(b"12 ", b"1\x002 ", 1)
        line = line.replace(b"Alder Police", b"Alder \x00\x00Police", 1)
        line = line.replace(b"Fern Valley", b"Fern\x00 Valley", 1)
        writer.raw(STOP_FILE, b"\x00" + line)
        quoted = raw_stop_line(stop_values(13, agency=f'"{ALDER}"', officer="10\x0000"))
        writer.raw(STOP_FILE, quoted)
        writer.raw(PERSON_FILE, format_line([7, 12, "D", 40, "M", "N", "W"], PERSON_WIDTHS)
                   .replace(b"40", b"4\x000"))

    parsed = parse(tmp_path, write)

    assert parsed.fields(STOP_FILE) == [stop_row(12, city="Fern Valley"),
                                        stop_row(13, officer="1000")]
    assert parsed.agencies.used == {ALDER: 1}
    assert parsed.rows[PERSON_FILE] == [["7", "12", "D", "40", "M", "N", "W"]]
    assert parsed.rejects.total == 0


def test_cr_lf_line_endings_leave_no_carriage_return(tmp_path):
    def write(writer):
        writer.stop(1, ALDER, DATE, city="Ironwood")
        # A line ending in LF alone is read the same.
        writer.raw(STOP_FILE, raw_stop_line(stop_values(2, city="Dogwood"))[:-2] + b"\n")
        writer.stop(3, f'"{ALDER}"', DATE, city="Elm Grove")
        writer.person(1, 1)
        writer.person(2, 2)

    parsed = parse(tmp_path, write)

    assert [row[-1] for row in parsed.rows[STOP_FILE]] == ["Ironwood", "Dogwood", "Elm Grove"]
    assert [row[-1] for row in parsed.rows[PERSON_FILE]] == ["W", "W"]
    for rows in parsed.rows.values():
        assert not any("\r" in value for row in rows for value in row)
    assert parsed.rejects.total == 0


def test_cr_only_line_endings_read_as_lines(tmp_path):
    # Old Mac line endings: every line ends in CR alone. Read as lines, with
    # the same rows as the CR LF release, not as one line of the whole file.
    def write(writer):
        for stop_id in range(1, 6):
            writer.stop(stop_id, ALDER, DATE, city="Ironwood")
            writer.person(stop_id * 10, stop_id)

    expected = parse(tmp_path / "crlf", write)
    parsed = parse(tmp_path / "cr", write, cr_only=True)

    assert parsed.rows == expected.rows
    assert len(parsed.rows[STOP_FILE]) == 5 and parsed.rejects.total == 0


def test_a_file_without_line_endings_is_refused_with_memory_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(rawfile, "BLOCK", 64 << 10)
    monkeypatch.setattr(rawfile, "MAX_LINE", 256 << 10)
    path = tmp_path / STOP_FILE
    path.write_bytes(b"x" * (4 << 20))

    with pytest.raises(ImportFailed) as refused:
        for _ in line_batches(path):
            pass

    assert refused.value.phase == f"load {STOP_FILE}"
    assert str(refused.value) == (f"{STOP_FILE}: line 1 runs past 262,144 bytes without a "
                                  "line ending; the file is not a release's text file (or "
                                  "its line endings are not newlines)")


def test_cr_only_lines_come_in_batches_not_at_the_end(tmp_path, monkeypatch):
    monkeypatch.setattr(rawfile, "BLOCK", 64 << 10)
    path = tmp_path / STOP_FILE
    path.write_bytes(b"".join(b"line %d\r" % number for number in range(100_000)))

    batches = list(line_batches(path))

    assert len(batches) > 10, "a CR-only file must be read block by block"
    lines = [line for _, batch in batches for line in batch]
    assert lines == [f"line {number}" for number in range(100_000)]
    assert [first for first, _ in batches][:2] == [1, 1 + len(batches[0][1])]


def test_extra_trailing_columns_are_ignored(tmp_path):
    def write(writer):
        writer.stop(1, ALDER, DATE, city="Dogwood", extra=("", "0", "spill"))
        writer.stop(2, f'"{ALDER}"', DATE, city="Dogwood", extra=("", "0"))

    parsed = parse(tmp_path, write)

    assert parsed.fields(STOP_FILE) == [stop_row(1, city="Dogwood"),
                                        stop_row(2, city="Dogwood")]
    assert parsed.rejects.total == 0


def test_quoted_field_is_unquoted(tmp_path):
    def write(writer):
        writer.stop(1, f'"{ALDER}"', DATE, city='"Fern Valley"', county='"Cedar"')
        writer.stop(2, ALDER, DATE)

    parsed = parse(tmp_path, write)

    assert parsed.fields(STOP_FILE) == [stop_row(1, county="Cedar", city="Fern Valley"),
                                        stop_row(2)]
    # The quoted and unquoted spellings are one agency.
    assert parsed.agencies.used == {ALDER: 1}


def test_backslash_in_a_city_is_escaped_for_copy(tmp_path):
    def write(writer):
        writer.stop(1, ALDER, DATE, county="Cedar\\North", city="Elm\\Grove")

    parsed = parse(tmp_path, write)

    (row,) = parsed.rows[STOP_FILE]
    assert row[-2:] == ["Cedar\\\\North", "Elm\\\\Grove"]
    assert row[-1].encode() == b"Elm\\\\Grove"


def test_blank_last_line_is_not_a_reject(tmp_path):
    def write(writer):
        writer.stop(1, ALDER, DATE)
        writer.raw(STOP_FILE, b"    \r\n")
        writer.stop(2, ALDER, DATE)
        writer.raw(STOP_FILE, b"\r\n")
        writer.person(1, 1)
        writer.raw(PERSON_FILE, b"\r\n")
        writer.raw(SEARCH_FILE, b"\r\n")

    parsed = parse(tmp_path, write)

    assert parsed.ids(STOP_FILE) == [1, 2]
    assert parsed.ids(PERSON_FILE) == [1]
    assert parsed.rejects.total == 0
    assert parsed.rejected == []
    assert parsed.parser.lines[STOP_FILE] == 2


def test_empty_yes_no_flags_become_null(tmp_path):
    def write(writer):
        writer.stop(1, ALDER, DATE, driver_arrest="", passenger_injury="", engage_force=1)
        writer.stop(2, f'"{ALDER}"', DATE, passenger_arrest="")
        writer.person(1, 1)
        writer.search(1, 1, 1, vehicle="", driver=1, other_seized="")

    parsed = parse(tmp_path, write)

    first, second = parsed.fields(STOP_FILE)
    assert first[5:12] == [N, "0", "0", "1", "0", "0", N]
    assert second[5:12] == ["0", N, "0", "0", "0", "0", "0"]
    assert parsed.rows[SEARCH_FILE] == [["1", "1", "1", "1", N, "1", "0", "0", "0", "0", N]]
    assert parsed.rejects.total == 0


def test_empty_officer_id_becomes_null(tmp_path):
    def write(writer):
        writer.stop(1, ALDER, DATE, officer_id="")
        writer.stop(2, f'"{ALDER}"', DATE, officer_id="")
        writer.stop(3, ALDER, DATE, officer_id="0042")

    parsed = parse(tmp_path, write)

    assert [row[12] for row in parsed.rows[STOP_FILE]] == [N, N, "0042"]


def test_stop_date_without_fractions_is_accepted(tmp_path):
    def write(writer):
        writer.stop(1, ALDER, "2015-03-01 08:30:00")
        writer.stop(2, f'"{ALDER}"', "2016-02-29 23:59:59")

    parsed = parse(tmp_path, write)

    assert [row[2].strip() for row in parsed.rows[STOP_FILE]] == ["2015-03-01 08:30:00",
                                                                  "2016-02-29 23:59:59"]
    assert parsed.rejects.total == 0


def test_agencies_get_ids_in_order_of_first_appearance(tmp_path):
    def write(writer):
        writer.stop(1, BIRCHWOOD, DATE)
        writer.stop(2, ALDER, DATE)
        writer.stop(3, BIRCHWOOD, DATE)

    parsed = parse(tmp_path, write)

    assert [row[1] for row in parsed.rows[STOP_FILE]] == ["1", "2", "1"]
    assert parsed.agencies.new == {BIRCHWOOD: 1, ALDER: 2}


# -- stops the rules drop ------------------------------------------------------------


def test_stops_before_2002_are_dropped_except_the_highway_patrols(tmp_path):
    def write(writer):
        full_stop(writer, 1, ALDER, "2001-12-31 23:59:59.000")
        full_stop(writer, 2, PATROL, "1999-06-01 12:00:00.000")
        full_stop(writer, 3, ALDER, "2002-01-01 00:00:00.000")
        full_stop(writer, 4, f'"{BIRCHWOOD}"', "2000-05-05 05:05:05")

    parsed = parse(tmp_path, write)

    assert parsed.ids(STOP_FILE) == [2, 3]
    for name in (PERSON_FILE, SEARCH_FILE, CONTRABAND_FILE, SEARCH_BASIS_FILE):
        assert parsed.ids(name) == [2, 3], name
    # Dropped, not rejected: their rows follow silently and are counted.
    assert parsed.rejects.total == 0
    assert parsed.rejected == []
    assert parsed.parser.dropped == Counter({
        "stops before 2002": 2, "persons of dropped stops": 2,
        "searches of dropped stops": 2, "contraband of dropped stops": 2,
        "search bases of dropped stops": 2})
    assert parsed.agencies.used == {PATROL: 1, ALDER: 2}


def test_stop_id_range_drops_stops_outside_it_and_their_rows_silently(tmp_path):
    def write(writer):
        for stop_id in (1, 2, 3, 4):
            full_stop(writer, stop_id)
        full_stop(writer, 5, f'"{ALDER}"')
        # A person of a stop outside the range that never appeared follows too.
        writer.person(99, 50)

    parsed = parse(tmp_path, write, min_stop_id=2, max_stop_id=3)

    for name in FILES:
        assert parsed.ids(name) == [2, 3], name
    assert parsed.rejects.total == 0
    assert parsed.parser.dropped == Counter({
        "outside stop id range": 3, "persons of dropped stops": 4,
        "searches of dropped stops": 3, "contraband of dropped stops": 3,
        "search bases of dropped stops": 3})


def test_open_ended_stop_id_range(tmp_path):
    def write(writer):
        for stop_id in (1, 2, 3):
            full_stop(writer, stop_id)

    assert parse(tmp_path / "min", write, min_stop_id=2).ids(STOP_FILE) == [2, 3]
    assert parse(tmp_path / "max", write, max_stop_id=2).ids(STOP_FILE) == [1, 2]


# -- lines that break a rule -----------------------------------------------------


def _bad_stop(**changes):
    def write(writer):
        values = {"stop_id": 2, "agency": ALDER, "date": DATE} | changes
        writer.stop(values.pop("stop_id"), values.pop("agency"), values.pop("date"), **values)
    return STOP_FILE, write


def _short_stop(writer):
    writer.raw(STOP_FILE, format_line([2, ALDER, DATE], STOP_WIDTHS))


def _bad_person(**changes):
    def write(writer):
        values = {"person_id": 2, "stop_id": 1} | changes
        writer.person(values.pop("person_id"), values.pop("stop_id"), **values)
    return PERSON_FILE, write


def _bad_search(**changes):
    def write(writer):
        writer.search(2, 1, 1, **changes)
    return SEARCH_FILE, write


STOP_CASES = {
    "short line": (STOP_FILE, _short_stop,
                   "expected 15 tab-separated columns, found 3"),
    "non-numeric StopID": (*_bad_stop(stop_id="X2"), "StopID 'X2' is not an id number"),
    "negative StopID": (*_bad_stop(stop_id="-2"), "StopID '-2' is not an id number"),
    "February 30": (*_bad_stop(date="2015-02-30 08:30:00.000"),
                    "StopDate '2015-02-30 08:30:00.000' is not a date and time "
                    "(YYYY-MM-DD HH:MM:SS)"),
    "month 13": (*_bad_stop(date="2015-13-01 08:30:00.000"),
                 "StopDate '2015-13-01 08:30:00.000' is not a date and time "
                 "(YYYY-MM-DD HH:MM:SS)"),
    "date only": (*_bad_stop(date="2015-03-01"),
                  "StopDate '2015-03-01' is not a date and time (YYYY-MM-DD HH:MM:SS)"),
    "empty agency": (*_bad_stop(agency=""), "AgencyDescription is empty"),
    "purpose 11": (*_bad_stop(purpose=11), "Purpose '11' is not a purpose code (1-10)"),
    "action 0": (*_bad_stop(action=0), "Action '0' is not an action code (1-5)"),
    "flag 2": (*_bad_stop(engage_force=2), "EngageForce '2' is not 0 or 1"),
    "flag Y": (*_bad_stop(passenger_injury="Y"), "PassengerInjury 'Y' is not 0 or 1"),
    "person type X": (*_bad_person(kind="X"), "Type 'X' is not D (driver) or P (passenger)"),
    "race X": (*_bad_person(race="X"), "Race 'X' is not one of A, B, I, U, W"),
    "ethnicity Q": (*_bad_person(ethnicity="Q"), "Ethnicity 'Q' is not H or N"),
    "gender Z": (*_bad_person(gender="Z"), "Gender 'Z' is not M or F"),
    "age abc": (*_bad_person(age="abc"), "Age 'abc' is not a number"),
    "age 12345": (*_bad_person(age="12345"), "Age '12345' is not a number"),
    "non-numeric PersonID": (*_bad_person(person_id="P2"),
                             "PersonID 'P2' is not an id number"),
    "search type 6": (*_bad_search(search_type=6),
                      "Type '6' is not a search type code (1-5)"),
    "search flag 2": (*_bad_search(driver=2), "DriverSearch '2' is not 0 or 1"),
}


@pytest.mark.parametrize("case", list(STOP_CASES), ids=list(STOP_CASES))
def test_malformed_line_is_rejected_naming_the_column_and_line(tmp_path, case):
    file_name, write_bad, reason = STOP_CASES[case]

    def write(writer):
        # Line 1 of each file is good, line 2 the bad one.
        writer.stop(1, ALDER, DATE)
        writer.person(1, 1)
        writer.search(1, 1, 1)
        write_bad(writer)

    parsed = parse(tmp_path, write)

    assert parsed.rejects.total == 1
    assert parsed.rejects.by_file == Counter({file_name: 1})
    (rejected,) = parsed.rejected
    assert rejected["file"] == file_name
    assert rejected["line"] == "2"
    assert rejected["reason"] == reason
    assert rejected["content"]  # the line itself, for the operator
    assert "\r" not in rejected["content"]
    for name in (STOP_FILE, PERSON_FILE, SEARCH_FILE):
        assert parsed.ids(name) == [1], name


def test_reject_line_numbers_count_across_batches(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    lines = [raw_stop_line(stop_values(i)) for i in range(1, 6)]
    lines[3] = raw_stop_line(stop_values("bad"))
    (folder / STOP_FILE).write_bytes(b"".join(lines))
    rejects = Rejects(tmp_path / "rejects.csv")
    parser = NcRows(rejects, AgencyIds("nc", {}).id_for)
    all_lines = [line for _, batch in line_batches(folder / STOP_FILE) for line in batch]
    batches = [(1, all_lines[:2]), (3, all_lines[2:])]

    rows = copy_rows("".join(parser.stop_rows(batches)))
    rejects.close()

    assert [int(row[0]) for row in rows] == [1, 2, 3, 5]
    assert [(r["line"], r["reason"]) for r in read_rejects(rejects.path)] == [
        ("4", "StopID 'bad' is not an id number")]


def test_duplicate_stop_id_is_rejected(tmp_path):
    def write(writer):
        writer.stop(1, ALDER, DATE)
        writer.stop(2, ALDER, "2001-01-01 00:00:00.000")  # dropped, before 2002
        writer.stop(1, BIRCHWOOD, DATE)
        writer.stop(2, ALDER, DATE)
        writer.stop(1, f'"{ALDER}"', DATE)

    parsed = parse(tmp_path, write)

    assert parsed.fields(STOP_FILE) == [stop_row(1)]
    assert [(r["line"], r["reason"]) for r in parsed.rejected] == [
        ("3", "StopID 1 appears more than once"),
        ("4", "StopID 2 appears more than once"),
        ("5", "StopID 1 appears more than once")]
    assert parsed.rejects.by_file == Counter({STOP_FILE: 3})


def test_duplicate_person_id_is_rejected(tmp_path):
    def write(writer):
        writer.stop(1, ALDER, DATE)
        writer.person(1, 1)
        writer.person(1, 1, "P")

    parsed = parse(tmp_path, write)

    assert parsed.rows[PERSON_FILE] == [["1", "1", "D", "30", "M", "N", "W"]]
    assert [(r["file"], r["line"], r["reason"]) for r in parsed.rejected] == [
        (PERSON_FILE, "2", "PersonID 1 appears more than once")]


def test_rows_of_a_rejected_stop_are_rejected_mentioning_the_stop(tmp_path):
    def write(writer):
        writer.stop(1, ALDER, DATE, purpose=11)
        writer.stop(2, ALDER, DATE)
        writer.person(1, 1)
        writer.person(2, 2)
        writer.search(1, 1, 1)
        writer.contraband(1, 1, 1, 1)
        writer.search_basis(1, 1, 1, 1)

    parsed = parse(tmp_path, write)

    assert parsed.ids(STOP_FILE) == [2]
    assert parsed.ids(PERSON_FILE) == [2]
    assert [(r["file"], r["line"], r["reason"]) for r in parsed.rejected] == [
        (STOP_FILE, "1", "Purpose '11' is not a purpose code (1-10)"),
        (PERSON_FILE, "1", "its stop 1 was rejected"),
        (SEARCH_FILE, "1", "its stop 1 was rejected"),
        (CONTRABAND_FILE, "1", "its stop 1 was rejected"),
        (SEARCH_BASIS_FILE, "1", "its stop 1 was rejected")]
    assert parsed.rejects.total == 5
    assert parsed.parser.dropped == Counter()


def test_person_of_a_stop_that_never_appeared_is_rejected(tmp_path):
    def write(writer):
        writer.stop(1, ALDER, DATE)
        writer.person(1, 1)
        writer.person(2, 99)

    parsed = parse(tmp_path, write)

    assert parsed.ids(PERSON_FILE) == [1]
    assert [(r["file"], r["line"], r["reason"]) for r in parsed.rejected] == [
        (PERSON_FILE, "2", "StopID 99 is not in Stop.txt")]


def test_search_whose_person_is_missing_is_rejected(tmp_path):
    def write(writer):
        writer.stop(1, ALDER, DATE)
        writer.person(1, 1)
        writer.search(1, 1, 1)
        writer.search(2, 1, 42)
        writer.contraband(1, 2, 1, 1)  # its search was rejected
        writer.search_basis(1, 1, 42, 1)

    parsed = parse(tmp_path, write)

    assert parsed.ids(SEARCH_FILE) == [1]
    assert parsed.ids(CONTRABAND_FILE) == []
    assert parsed.ids(SEARCH_BASIS_FILE) == []
    assert [(r["file"], r["line"], r["reason"]) for r in parsed.rejected] == [
        (SEARCH_FILE, "2", "PersonID 42 is not in PERSON.txt"),
        (CONTRABAND_FILE, "1", "SearchID 2 is not in Search.txt"),
        (SEARCH_BASIS_FILE, "1", "PersonID 42 is not in PERSON.txt")]
    assert parsed.rejects.by_file == Counter(
        {SEARCH_FILE: 1, CONTRABAND_FILE: 1, SEARCH_BASIS_FILE: 1})


def test_empty_contraband_amounts_are_null_and_bad_amounts_are_rejected(tmp_path):
    def write(writer):
        writer.stop(1, ALDER, DATE)
        writer.person(1, 1)
        writer.search(1, 1, 1)
        writer.contraband(1, 1, 1, 1, ounces="1.50")
        writer.contraband(2, 1, 1, 1, pounds="lots")
        writer.contraband(3, 1, 1, 1, grams=".75", weapons="2", dollar_amount="-3.5")
        writer.contraband(4, 1, 1, 1)
        writer.contraband(4, 1, 1, 1, kilos="1")

    parsed = parse(tmp_path, write)

    assert parsed.rows[CONTRABAND_FILE] == [
        ["1", "1", "1", "1", "1.50", N, N, N, N, N, N, N, N, N],
        ["3", "1", "1", "1", N, N, N, N, N, ".75", N, N, "2", "-3.5"],
        ["4", "1", "1", "1", N, N, N, N, N, N, N, N, N, N]]
    assert [(r["line"], r["reason"]) for r in parsed.rejected] == [
        ("2", "Pounds 'lots' is not a number"),
        ("5", "ContrabandID 4 appears more than once")]
    assert parsed.rejects.by_file == Counter({CONTRABAND_FILE: 2})


def test_search_basis_must_be_one_of_the_known_codes(tmp_path):
    codes = ("ER", "OB", "OI", "SM", "TIP", "WTNS")

    def write(writer):
        writer.stop(1, ALDER, DATE)
        writer.person(1, 1)
        writer.search(1, 1, 1)
        for basis_id, code in enumerate(codes, 1):
            writer.search_basis(basis_id, 1, 1, 1, code)
        writer.search_basis(7, 1, 1, 1, "XX")
        writer.search_basis(8, 1, 1, 1, "er")

    parsed = parse(tmp_path, write)

    assert [row[4] for row in parsed.rows[SEARCH_BASIS_FILE]] == list(codes)
    assert [(r["line"], r["reason"]) for r in parsed.rejected] == [
        ("7", "Basis 'XX' is not one of ER, OB, OI, SM, TIP, WTNS"),
        ("8", "Basis 'er' is not one of ER, OB, OI, SM, TIP, WTNS")]
    assert parsed.rejects.by_file == Counter({SEARCH_BASIS_FILE: 2})


def test_short_lines_of_the_other_files_are_rejected(tmp_path):
    def write(writer):
        writer.stop(1, ALDER, DATE)
        writer.raw(PERSON_FILE, format_line([1, 1, "D"], PERSON_WIDTHS))
        writer.raw(SEARCH_FILE, format_line([1, 1, 1, 1], SEARCH_WIDTHS))

    parsed = parse(tmp_path, write)

    assert [(r["file"], r["reason"]) for r in parsed.rejected] == [
        (PERSON_FILE, "expected 7 tab-separated columns, found 3"),
        (SEARCH_FILE, "expected 11 tab-separated columns, found 4")]


# -- fast path and slow path agree -----------------------------------------------------


def _add_tricky_lines(folder: Path) -> int:
    """Append lines each path handles differently; returns how many of the
    stop and person lines must be rejected."""
    stops = [
        stop_values(5001, agency=f'"{ALDER}"'),            # quoted: slow path
        stop_values(5002, city="Elm\\Grove"),              # backslash: slow path
        stop_values(5003, agency=PATROL, date="1999-01-02 03:04:05.000"),
        stop_values(5004, date="1999-01-02 03:04:05.000"),  # dropped
        stop_values(5003),                                  # duplicate: rejected
        stop_values(5005, date="2016-02-30 10:00:00.000"),  # rejected
        stop_values(5006, date="2016-02-29 10:00:00"),
        stop_values("   5007"),
        stop_values(5008, officer=""),
        stop_values(5009, agency=""),                       # rejected
        [5010, ALDER, DATE, 11, 3, 0, 0, 0, 0, 0, 0, 0, "1", "Alder", "Alder"],  # rejected
        [5011, ALDER, DATE, 1, 3, "", 0, "", 0, 0, 0, 0, "1", "Alder", "Alder"],
        stop_values(5012, date=" 2015-01-01 00:00:00.000"),
    ]
    persons = [
        [9001, 5001, "D", 20, "F", "H", "A"],
        [9002, 5004, "D", 20, "F", "H", "A"],   # dropped stop: silent
        [9003, 5005, "D", 20, "F", "H", "A"],   # rejected stop: rejected
        [9004, 7777, "D", 20, "F", "H", "A"],   # unknown stop: rejected
        [9005, 5006, "P", "", "", "N", "U"],
        [9006, 5006, "P", 200, "M", "N", "I"],
        [9001, 5006, "D", 20, "F", "H", "A"],   # duplicate: rejected
        [9007, 5007, "D", 20, "F", "H", "A", "extra"],
        [9008, 5008, "D", "1000", "F", "H", "A"],  # age too long: rejected
    ]
    with open(folder / STOP_FILE, "ab") as handle:
        for values in stops:
            handle.write(format_line(values, STOP_WIDTHS))
    with open(folder / PERSON_FILE, "ab") as handle:
        for values in persons:
            handle.write(format_line(values, PERSON_WIDTHS))
        handle.write(b"\r\n")
    return 4 + 4


def _numbered_lines(path: Path) -> list[tuple[int, str]]:
    return [(line_no, line) for first, lines in line_batches(path)
            for line_no, line in enumerate(lines, first)]


@pytest.mark.parametrize("limits", [{}, {"min_stop_id": 500, "max_stop_id": 2500}],
                         ids=["all stops", "stop id range"])
def test_fast_and_slow_paths_agree_on_a_generated_release(tmp_path, limits):
    folder = tmp_path / "generated"
    summary = generate_release(folder, 3000, seed=11, dirty=True)
    tricky_rejects = _add_tricky_lines(folder)
    assert summary.dirty_lines  # some NUL, extra-column and malformed lines

    fast_agencies, slow_agencies = AgencyIds("nc", {}), AgencyIds("nc", {})
    fast_rejects = Rejects(tmp_path / "fast.csv")
    slow_rejects = Rejects(tmp_path / "slow.csv")
    fast = NcRows(fast_rejects, fast_agencies.id_for, **limits)
    slow = NcRows(slow_rejects, slow_agencies.id_for, **limits)

    def normalized(row: list[str], agencies: AgencyIds) -> list[str]:
        names = {str(agency_id): name for name, agency_id in agencies.used.items()}
        fields = [value.strip() for value in row]
        fields[1] = names[fields[1]]
        return fields

    fast_stops = {int(row[0]): normalized(row, fast_agencies) for row in
                  copy_rows("".join(fast.stop_rows(line_batches(folder / STOP_FILE))))}
    slow_stop_ids = []
    for line_no, line in _numbered_lines(folder / STOP_FILE):
        row = slow._stop_slow(line_no, line)
        if isinstance(row, str):
            stop_id = int(row.split("\t")[0])
            slow_stop_ids.append(stop_id)
            assert fast_stops.get(stop_id) == normalized(row.split("\t"), slow_agencies), line
    assert sorted(fast_stops) == sorted(slow_stop_ids)

    fast_persons = {int(row[0]): row for row in
                    copy_rows("".join(fast.person_rows(line_batches(folder / PERSON_FILE))))}
    slow_person_ids = []
    for line_no, line in _numbered_lines(folder / PERSON_FILE):
        row = slow._person_slow(line_no, line)
        if isinstance(row, str):
            person_id = int(row.split("\t")[0])
            slow_person_ids.append(person_id)
            assert fast_persons.get(person_id) == row.split("\t"), line
    assert sorted(fast_persons) == sorted(slow_person_ids)

    fast_rejects.close()
    slow_rejects.close()
    assert read_rejects(fast_rejects.path) == read_rejects(slow_rejects.path)
    assert fast_rejects.by_file == slow_rejects.by_file
    assert fast.dropped == slow.dropped
    assert len(fast.stops) == len(slow.stops) == len(fast_stops)
    assert len(fast.persons) == len(slow.persons) == len(fast_persons)
    malformed = sum(summary.dirty_lines.get(kind, 0) for kind in ("short", "date", "id"))
    if not limits:
        assert malformed > 0
        assert fast_rejects.by_file[STOP_FILE] + fast_rejects.by_file[PERSON_FILE] == (
            malformed + tricky_rejects)
        assert len(fast_stops) > 2500
        assert fast.dropped["stops before 2002"] > 0
    else:
        assert set(fast_stops) <= set(range(500, 2501))
        assert fast.dropped["outside stop id range"] > 0


# -- bugs: inputs the parser mishandles ---------------------------------------------


def test_stop_loaded_through_the_slow_path_past_the_initial_bitmap(tmp_path):
    # A quoted line (slow path) with a stop id past the first 8,388,608 grows
    # the loaded-stops bitmap but not the dropped-stops one; the next
    # ordinary line then indexes the dropped bitmap past its end.
    def write(writer):
        writer.stop(9_000_000, f'"{ALDER}"', DATE)
        writer.stop(9_000_001, ALDER, DATE)
        writer.stop(8_500_000, ALDER, DATE)

    parsed = parse(tmp_path, write)

    assert parsed.ids(STOP_FILE) == [9_000_000, 9_000_001, 8_500_000]
    assert parsed.rejects.total == 0


def test_stop_id_with_a_superscript_digit_is_rejected(tmp_path):
    # Byte 0xB2 of a Windows-1252 export reads as "²": str.isdigit() accepts
    # it but int() does not.
    def write(writer):
        writer.stop(1, ALDER, DATE)
        writer.raw(STOP_FILE, raw_stop_line(stop_values("2?")).replace(b"2?", b"2\xb2"))

    parsed = parse(tmp_path, write)

    assert parsed.ids(STOP_FILE) == [1]
    assert [(r["line"], r["reason"]) for r in parsed.rejected] == [
        ("2", "StopID '2²' is not an id number")]


def test_person_id_with_a_superscript_digit_is_rejected(tmp_path):
    def write(writer):
        writer.stop(1, ALDER, DATE)
        writer.raw(PERSON_FILE, format_line(["7?", 1, "D", 30, "M", "N", "W"], PERSON_WIDTHS)
                   .replace(b"7?", b"7\xb2"))

    parsed = parse(tmp_path, write)

    assert parsed.ids(PERSON_FILE) == []
    assert [(r["file"], r["reason"]) for r in parsed.rejected] == [
        (PERSON_FILE, "PersonID '7²' is not an id number")]


def test_age_with_a_superscript_digit_is_rejected(tmp_path):
    # Loaded as is, "3²" would make PostgreSQL's COPY fail the whole import.
    def write(writer):
        writer.stop(1, ALDER, DATE)
        writer.raw(PERSON_FILE, format_line([7, 1, "D", "3?", "M", "N", "W"], PERSON_WIDTHS)
                   .replace(b"3?", b"3\xb2"))

    parsed = parse(tmp_path, write)

    assert parsed.rows[PERSON_FILE] == []
    assert [(r["file"], r["reason"]) for r in parsed.rejected] == [
        (PERSON_FILE, "Age '3²' is not a number")]


@pytest.mark.parametrize("stop_text", ["+7", "1_000"])
def test_stop_id_with_a_sign_or_underscore_is_rejected_on_the_fast_path_too(tmp_path,
                                                                            stop_text):
    # The slow path rejects these ("not an id number"); the fast path's int()
    # takes them, so the same line is loaded or rejected depending on which
    # path it happens to go through.
    def write(writer):
        writer.stop(stop_text, ALDER, DATE)      # fast path
        writer.stop(stop_text, f'"{ALDER}"', DATE)  # slow path (quoted)

    parsed = parse(tmp_path, write)

    assert parsed.rows[STOP_FILE] == []
    assert [r["reason"] for r in parsed.rejected] == [
        f"StopID {stop_text!r} is not an id number"] * 2


def test_person_id_with_a_sign_is_rejected_on_the_fast_path_too(tmp_path):
    def write(writer):
        writer.stop(1, ALDER, DATE)
        writer.person("+5", 1)

    parsed = parse(tmp_path, write)

    assert parsed.rows[PERSON_FILE] == []
    assert [r["reason"] for r in parsed.rejected] == ["PersonID '+5' is not an id number"]


def test_tab_inside_a_quoted_value_does_not_add_a_copy_column(tmp_path):
    # Double quotes are the format's quote character, so a quoted value may
    # hold a tab; copy_text assumes it cannot, and the row gets 16 columns,
    # which fails the COPY of the whole file.
    def write(writer):
        writer.stop(1, ALDER, DATE, city='"Fern\tValley"')

    parsed = parse(tmp_path, write)

    assert all(len(row) == 15 for row in parsed.rows[STOP_FILE])
    assert len(parsed.rows[STOP_FILE]) + parsed.rejects.total == 1


# -- IdSet -------------------------------------------------------------------------------


def test_idset_add_returns_false_on_a_duplicate():
    ids = IdSet()
    assert ids.add(0) is True
    assert ids.add(12345) is True
    assert ids.add(12345) is False
    assert ids.add(0) is False
    assert len(ids) == 2
    assert 12345 in ids and 0 in ids
    assert 12344 not in ids and 12346 not in ids


def test_idset_grows_past_its_initial_bitmap():
    ids = IdSet()
    initial_ids = (1 << 20) * 8
    far = 5 * initial_ids + 3
    assert far not in ids  # past the end: simply absent
    assert ids.add(far) is True
    assert far in ids
    assert far - 1 not in ids and far + 1 not in ids
    assert ids.add(far) is False
    assert ids.add(initial_ids) is True
    assert initial_ids in ids
    assert len(ids) == 2


def test_idset_keeps_ids_past_the_bitmap_limit():
    ids = IdSet()
    huge = BITMAP_LIMIT + 17
    assert ids.add(BITMAP_LIMIT) is True
    assert ids.add(huge) is True
    assert ids.add(huge) is False
    assert ids.add(2**62) is True
    assert BITMAP_LIMIT in ids and huge in ids and 2**62 in ids
    assert huge + 1 not in ids
    assert len(ids) == 3


def test_idset_ensure_and_mark_account_for_inline_bits():
    ids = IdSet()
    value = 20_000_000
    bits = ids.ensure(value)
    bits[value >> 3] |= 1 << (value & 7)
    ids.mark(1)
    assert value in ids
    assert len(ids) == 1
    assert ids.add(value) is False
