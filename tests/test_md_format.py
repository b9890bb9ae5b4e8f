"""Maryland's normalization rules (services.ingest.md.format), end to end from
workbooks: rows are written as .xlsx or .xls files by the synthetic writer,
read back with workbook_batches (python-calamine), parsed by MdRows into
COPY text, with a real rejects file. No database."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

import pytest

from services.ingest.agencies import AgencyIds
from services.ingest.errors import ImportFailed
from services.ingest.md import stop_reasons
from services.ingest.md.format import (
    REQUIRED_COLUMNS,
    WORKBOOK,
    MdRows,
    cell_text,
    reason_stem,
    workbook_batches,
)
from services.ingest.md.release import MdRelease
from services.ingest.md.synthetic import (
    MD_HEADER,
    XLS_MAX_ROWS,
    generate_rows,
    sheets_of,
    stop_row,
    write_xls,
    write_xlsx,
    zip_release,
)
from services.ingest.rejects import Rejects
from shared import md_stop_reasons
from shared.states import MD, MD_DROPPED_PURPOSES, MD_PURPOSES

N = "\\N"
COLUMNS = ("stop_id", "agency_id", "date", "purpose", "race", "gender", "age", "searched",
           "contraband", "officer_id", "stop_reason")
CODE = {label: str(code) for code, label in MD_PURPOSES.items()}
WRITERS = {"xlsx": write_xlsx, "xls": write_xls}


@dataclass
class Parsed:
    rows: list[dict[str, str]]
    rejected: list[dict[str, str]]
    parser: MdRows
    agencies: AgencyIds
    chunks: list[str]

    @property
    def row(self) -> dict[str, str]:
        assert len(self.rows) == 1, self.rows
        return self.rows[0]


def copy_rows(text: str) -> list[list[str]]:
    """COPY text as rows of fields; every chunk ends with a newline."""
    assert text.endswith("\n")
    return [line.split("\t") for line in text[:-1].split("\n")]


def read_rejects(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_book(tmp_path: Path, sheets, kind: str = "xlsx") -> Path:
    path = tmp_path / f"stops.{kind}"
    WRITERS[kind](path, sheets)
    return path


def parse_book(tmp_path: Path, path: Path, mapping=None, batch_rows: int = 10_000) -> Parsed:
    rejects = Rejects(tmp_path / "rejects.csv")
    agencies = AgencyIds(MD.code, {})
    parser = MdRows(rejects, agencies.id_for,
                    md_stop_reasons.default() if mapping is None else mapping)
    chunks = list(parser.rows_for(WORKBOOK)(workbook_batches(path, batch_rows=batch_rows)))
    rejects.close()
    rows = [dict(zip(COLUMNS, fields, strict=True))
            for chunk in chunks for fields in copy_rows(chunk)]
    return Parsed(rows, read_rejects(rejects.path), parser, agencies, chunks)


def parse_rows(tmp_path: Path, *rows, kind: str = "xlsx", header=MD_HEADER, **options
               ) -> Parsed:
    """Parse one sheet: `header` then `rows`."""
    return parse_book(tmp_path, write_book(tmp_path, [[header, *rows]], kind), **options)


def one(tmp_path: Path, **values) -> dict[str, str]:
    """The COPY fields of a single stop row."""
    return parse_rows(tmp_path, stop_row(**values)).row


# -- the coded columns ----------------------------------------------------------

@pytest.mark.parametrize(("value", "race"), [
    ("WHITE", "W"), ("W", "W"), ("W.", "W"), ("white", "W"), (" White ", "W"),
    ("BLACK", "B"), ("BLK", "B"), ("blk", "B"), (" black", "B"),
    ("HISPANIC", "H"), ("Hispanic", "H"),
    ("ASIAN", "A"), ("asian", "A"),
    ("NATIVE AMERICAN", "I"), ("Native American", "I"),
    ("UNKNOWN", "U"), ("OTHER", "U"), ("", "U"), ("B", "U"), ("WHITE HISPANIC", "U"),
])
def test_ethnicity_spellings(tmp_path, value, race):
    assert one(tmp_path, ETHNICITY=value)["race"] == race


@pytest.mark.parametrize(("value", "gender"), [
    ("M", "M"), ("m", "M"), ("male", "M"), ("MALE", "M"), (" Male ", "M"),
    ("F", "F"), ("f", "F"), ("female", "F"), ("FEMALE", "F"), ("w", "F"), ("W", "F"),
    ("U", "U"), ("", "U"), ("X", "U"), ("unknown", "U"),
])
def test_gender_spellings(tmp_path, value, gender):
    assert one(tmp_path, GENDER=value)["gender"] == gender


@pytest.mark.parametrize(("value", "seized"), [
    ("Contraband Only", "t"), ("Contraband and Property", "t"), ("CONTRABAND", "t"),
    ("contraband only", "t"), ("paraphernalia", "t"), ("Paraphernalia Only", "t"),
    ("Both", "t"), ("BOTH", "t"), (" both ", "t"),
    ("Property Only", "f"), ("Nothing", "f"), ("None", "f"), ("", "f"),
    ("Both Property", "f"), ("No Contraband", "f"),
])
def test_seized_spellings(tmp_path, value, seized):
    assert one(tmp_path, SEIZED=value)["contraband"] == seized


@pytest.mark.parametrize(("value", "searched"), [
    ("Y", "t"), ("Yes", "t"), ("YES", "t"), ("y", "t"), (" Yes ", "t"),
    ("N", "f"), ("No", "f"), ("NO", "f"), ("", "f"), ("Unknown", "f"),
])
def test_search_conducted_spellings(tmp_path, value, searched):
    assert one(tmp_path, SEARCH_CONDUCTED=value)["searched"] == searched


# -- stop reasons -------------------------------------------------------------------

@pytest.mark.parametrize(("citation", "stem"), [
    ("21-801.1(b)", "21-801"), ("22-412.3", "22-412"), ("13-401(b)", "13-401"),
    ("64*", "64"), ("64", "64"), (" 21-202(h)(1) ", "21-202"), ("21-1124.2(d)", "21-1124"),
    ("21 - 801.1", "21-801"), ("21-", "21"), ("", ""), ("Speeding", ""), ("TA 21-801", ""),
])
def test_reason_stems(citation, stem):
    assert reason_stem(citation) == stem


@pytest.mark.parametrize(("citation", "purpose"), [
    ("21-801.1(b)", "Speed Limit Violation"),
    ("21-801(a)", "Speed Limit Violation"),
    ("22-412.3(b)", "Seat Belt Violation"),
    ("21-202(h)(1)", "Stop Light/Sign Violation"),
    ("21-707(a)", "Stop Light/Sign Violation"),
    ("21-902(a)(1)", "Driving While Impaired"),
    ("21-309(b)", "Safe Movement Violation"),
    ("22-204(f)", "Vehicle Equipment Violation"),
    ("13-401(b)", "Vehicle Regulatory Violation"),
    ("16-303(c)", "Vehicle Regulatory Violation"),
    ("21-1207", "Non-motor Vehicle Violations"),
    ("21-1124.2(d)", "Other Motor Vehicle Violation"),
    ("99-999", "Other/Unknown"),
    ("", "Other/Unknown"),
    ("OTHER", "Other/Unknown"),
])
def test_reasons_map_to_purposes(tmp_path, citation, purpose):
    row = one(tmp_path, STOP_REASON=citation)
    assert row["purpose"] == CODE[purpose]
    assert row["stop_reason"] == (citation.strip() or N)


@pytest.mark.parametrize(("citation", "label"), [
    ("64*", "Investigation"), ("64", "Investigation"), ("5-601", "Investigation"),
    ("20-102", "Failure to remain at scene of accident"),
    ("20-104(b)", "Failure to remain at scene of accident"),
])
def test_stops_of_dropped_reasons_are_not_loaded(tmp_path, citation, label):
    parsed = parse_rows(tmp_path, stop_row(STOP_REASON=citation), stop_row(AGENCY="BCOPD"))
    assert [row["stop_id"] for row in parsed.rows] == ["2"]
    assert parsed.parser.dropped == {f"stop reason {label}": 1}
    assert parsed.parser.lines[WORKBOOK] == 2
    assert parsed.parser.loaded[WORKBOOK] == 1
    assert parsed.rejected == []
    # An agency is named only by the stops that are loaded.
    assert list(parsed.agencies.used) == ["BCOPD"]


def test_an_operators_mapping_replaces_the_default(tmp_path):
    mapping = {"21-801": "Other Motor Vehicle Violation", "99": "Investigation"}
    parsed = parse_rows(tmp_path, stop_row(STOP_REASON="21-801.1(b)"),
                        stop_row(STOP_REASON="99(a)"), stop_row(STOP_REASON="22-412.3"),
                        mapping=mapping)
    assert [row["purpose"] for row in parsed.rows] == [CODE["Other Motor Vehicle Violation"],
                                                       CODE["Other/Unknown"]]
    assert parsed.parser.dropped == {"stop reason Investigation": 1}


def test_a_mapping_to_an_unknown_purpose_fails(tmp_path):
    with pytest.raises(ImportFailed, match="'21-801' to 'Speeding'"):
        MdRows(Rejects(tmp_path / "rejects.csv"), lambda name: 1, {"21-801": "Speeding"})


# -- dates, times and ages ---------------------------------------------------------------

@pytest.mark.parametrize(("value", "day"), [
    ("3/1/2015", "2015-03-01"), ("3/1/15", "2015-03-01"), ("03/01/2015", "2015-03-01"),
    ("12/31/13", "2013-12-31"), ("1/1/2013", "2013-01-01"), (" 2/29/16 ", "2016-02-29"),
    ("1/2/99", "2099-01-02"),             # YY is always 20YY
    ("3/1/2015 0:00", "2015-03-01"), ("3/1/2015 14:30", "2015-03-01"),
    (date(2015, 3, 1), "2015-03-01"), (datetime(2015, 3, 1, 14, 30), "2015-03-01"),
])
def test_stop_dates(tmp_path, value, day):
    row = one(tmp_path, STOPDATE=value, TIME_OF_STOP="8:30")
    assert row["date"] == f"{day} 08:30:00"


@pytest.mark.parametrize("value", ["12/31/2012", "12/31/12", "1/1/2001", "6/15/12",
                                   date(2012, 12, 31)])
def test_stops_before_2013_are_dropped(tmp_path, value):
    parsed = parse_rows(tmp_path, stop_row(STOPDATE=value), stop_row(STOPDATE="1/1/13"))
    assert [row["date"] for row in parsed.rows] == ["2013-01-01 08:30:00"]
    assert parsed.parser.dropped == {"stops before 2013": 1}
    assert parsed.rejected == []


@pytest.mark.parametrize(("value", "clock"), [
    ("8:30", "08:30:00"), ("08:30", "08:30:00"), ("0:05", "00:05:00"), ("23:59", "23:59:00"),
    ("8:30 AM", "08:30:00"), ("8:30 PM", "20:30:00"), ("8:30PM", "20:30:00"),
    ("08:30 pm", "20:30:00"), ("11:59 PM", "23:59:00"), ("8:30 a.m.", "08:30:00"),
    ("12:00 AM", "00:00:00"), ("12:15 AM", "00:15:00"), ("12:15 PM", "12:15:00"),
    ("12:00 pm", "12:00:00"), ("13:45 PM", "13:45:00"), ("0:30 AM", "00:30:00"),
    ("8:30:15", "08:30:15"), (" 8:30 ", "08:30:00"),
    ("24:00", "00:00:00"), ("25:10", "00:00:00"), ("7:75", "00:00:00"), ("7:60", "00:00:00"),
    ("99:99", "00:00:00"), ("", "00:00:00"), ("1830", "00:00:00"), ("8:3", "00:00:00"),
    ("noon", "00:00:00"), ("8:30 XM", "00:00:00"),
    (time(14, 5), "14:05:00"), (time(0, 0), "00:00:00"),
])
def test_times_of_stop(tmp_path, value, clock):
    assert one(tmp_path, STOPDATE="3/1/2015", TIME_OF_STOP=value)["date"] == f"2015-03-01 {clock}"


@pytest.mark.parametrize(("dob", "stop", "age"), [
    ("5/12/1985", "3/1/2015", "29"),
    ("3/1/1985", "3/1/2015", "30"),       # the birthday itself
    ("3/2/1985", "3/1/2015", "29"),       # the day before the birthday
    ("5/12/85", "3/1/2015", "29"),        # 1985: 2085 would be after the stop
    ("5/12/85", "3/1/15", "29"),
    ("12/31/99", "3/1/2015", "15"),
    ("1/1/00", "3/1/2015", "15"),         # 2000
    ("1/1/14", "3/1/2015", "1"),          # 2014
    ("1/1/15", "3/1/2015", "0"),          # 2015, the stop's own year
    ("6/1/15", "3/1/2015", "0"),          # born after the stop: unknown
    ("2/29/96", "2/28/2016", "19"),
    ("2/29/96", "3/1/2016", "20"),
    ("1/15/1930", "3/1/2015", "85"),
    ("1/15/30", "3/1/2015", "85"),        # 1930 (2030 is after the stop)
    (date(1985, 5, 12), "3/1/2015", "29"),
    (datetime(1985, 5, 12), "3/1/2015", "29"),
    ("", "3/1/2015", "0"),
    ("   ", "3/1/2015", "0"),
    ("00/00/00", "3/1/2015", "0"),
    ("2/30/1985", "3/1/2015", "0"),
    ("1985", "3/1/2015", "0"),
    ("unknown", "3/1/2015", "0"),
])
def test_age_from_date_of_birth(tmp_path, dob, stop, age):
    assert one(tmp_path, DOB=dob, STOPDATE=stop)["age"] == age


def test_excel_date_cells_give_the_rows_text_gives(tmp_path):
    typed = stop_row(STOPDATE="3/1/2015", TIME_OF_STOP="14:05", DOB="5/12/1985",
                     OFFICERID="1234", DURATION="10")
    cells = stop_row(STOPDATE=date(2015, 3, 1), TIME_OF_STOP=time(14, 5),
                     DOB=date(1985, 5, 12), OFFICERID=1234, DURATION=10)
    for kind in WRITERS:
        folder = tmp_path / kind
        folder.mkdir()
        parsed = parse_rows(folder, typed, cells, kind=kind)
        first, second = parsed.rows
        assert first.pop("stop_id") == "1" and second.pop("stop_id") == "2"
        assert first == second
        assert first["date"] == "2015-03-01 14:05:00"
        assert first["age"] == "29"
        assert first["officer_id"] == "1234"


# -- officers, agencies, rejects ------------------------------------------------------------

@pytest.mark.parametrize(("value", "officer"), [
    ("1234", "1234"), (" 1234 ", "1234"), (1234, "1234"), (1234.0, "1234"),
    ("A-17", "A-17"), ("", N), ("  ", N), (None, N), ("007", "007"),
    ("a\\b", "a\\\\b"),
])
def test_officer_ids(tmp_path, value, officer):
    assert one(tmp_path, OFFICERID=value)["officer_id"] == officer


def test_agency_codes_are_trimmed_and_keep_their_ids(tmp_path):
    parsed = parse_rows(tmp_path, stop_row(AGENCY="AACOPD"), stop_row(AGENCY=" MSP "),
                        stop_row(AGENCY="AACOPD "), stop_row(AGENCY="MSP"))
    ids = parsed.agencies.used
    assert ids == {"AACOPD": 1, "MSP": 2}
    assert [row["agency_id"] for row in parsed.rows] == ["1", "2", "1", "2"]


def test_empty_agency_and_bad_dates_are_rejected_naming_the_column(tmp_path):
    parsed = parse_rows(
        tmp_path,
        stop_row(AGENCY=""),
        stop_row(AGENCY="MSP"),
        stop_row(STOPDATE="13/45/2015"),
        stop_row(STOPDATE="2/30/2015"),
        stop_row(STOPDATE="2015-03-01"),
        stop_row(STOPDATE=""),
        stop_row(AGENCY="   ", STOPDATE="1/1/2012"),
    )
    assert [row["stop_id"] for row in parsed.rows] == ["2"]
    assert [(r["file"], r["line"]) for r in parsed.rejected] == [
        (WORKBOOK, str(n)) for n in (1, 3, 4, 5, 6, 7)]
    reasons = [r["reason"] for r in parsed.rejected]
    assert reasons[0] == "AGENCY is empty"
    assert reasons[1] == "STOPDATE '13/45/2015' is not a date (M/D/YY or M/D/YYYY)"
    assert reasons[2].startswith("STOPDATE '2/30/2015'")
    assert reasons[3].startswith("STOPDATE '2015-03-01'")
    assert reasons[4] == "STOPDATE is empty"
    assert reasons[5] == "AGENCY is empty"
    assert parsed.rejected[0]["content"] == "\t".join(
        cell_text(value) for value in stop_row(AGENCY="")).rstrip()
    assert parsed.parser.lines[WORKBOOK] == 7
    assert parsed.parser.loaded[WORKBOOK] == 1
    assert parsed.parser.dropped == {}
    assert list(parsed.agencies.used) == ["MSP"]


def test_copy_text_is_escaped(tmp_path):
    row = one(tmp_path, STOP_REASON="21-801\\1", OFFICERID="12\\34")
    assert row["stop_reason"] == "21-801\\\\1"
    assert row["officer_id"] == "12\\\\34"


def test_a_whole_row(tmp_path):
    assert one(tmp_path, STOPDATE="7/4/16", TIME_OF_STOP="9:05 PM", STOP_REASON="21-902(a)",
               SEARCH_CONDUCTED="Yes", SEIZED="Contraband Only", GENDER="female",
               DOB="12/25/90", ETHNICITY="BLK", OFFICERID="4321", AGENCY="ANNAPD") == {
        "stop_id": "1", "agency_id": "1", "date": "2016-07-04 21:05:00",
        "purpose": CODE["Driving While Impaired"], "race": "B", "gender": "F", "age": "25",
        "searched": "t", "contraband": "t", "officer_id": "4321", "stop_reason": "21-902(a)"}


# -- the header -----------------------------------------------------------------------------

def test_header_names_are_case_insensitive_and_trimmed_in_any_order(tmp_path):
    header = [f"  {name.lower()} " for name in reversed(MD_HEADER)]
    row = list(reversed(stop_row(STOPDATE="3/1/2015", AGENCY="MSP", GENDER="F")))
    parsed = parse_rows(tmp_path, row, header=header)
    assert parsed.row["date"] == "2015-03-01 08:30:00"
    assert parsed.row["gender"] == "F"
    assert list(parsed.agencies.used) == ["MSP"]


def test_only_the_required_columns_are_needed(tmp_path):
    header = list(REQUIRED_COLUMNS)
    full = dict(zip(MD_HEADER, stop_row(), strict=True))
    parsed = parse_rows(tmp_path, [full[name] for name in header], header=header)
    assert parsed.row["purpose"] == CODE["Speed Limit Violation"]


def test_missing_columns_are_named(tmp_path):
    header = [name for name in MD_HEADER if name not in ("DOB", "AGENCY", "SEIZED")]
    with pytest.raises(ImportFailed) as failure:
        parse_rows(tmp_path, ["x"] * len(header), header=header)
    assert failure.value.phase == "load workbook"
    assert "has no SEIZED, DOB, AGENCY columns" in failure.value.message


def test_a_missing_header_row_is_named(tmp_path):
    with pytest.raises(ImportFailed, match="has no STOPDATE, TIME_OF_STOP"):
        parse_rows(tmp_path, stop_row(), header=stop_row())


def test_a_header_without_rows_loads_nothing(tmp_path):
    parsed = parse_rows(tmp_path)
    assert parsed.rows == [] and parsed.parser.lines[WORKBOOK] == 0
    assert parsed.parser.loaded[WORKBOOK] == 0


def test_an_empty_workbook_fails(tmp_path):
    path = write_book(tmp_path, [[]])
    with pytest.raises(ImportFailed, match="holds no rows"):
        parse_book(tmp_path, path)


# -- sheets ---------------------------------------------------------------------------------------

def _stops(first: int, count: int) -> list[list]:
    return [stop_row(OFFICERID=str(n), DOB="1/1/1980") for n in range(first, first + count)]


@pytest.mark.parametrize("kind", ["xlsx", "xls"])
def test_sheets_are_read_in_order_with_later_headers_skipped(tmp_path, kind):
    second_header = [f" {name.lower()}" for name in MD_HEADER]
    sheets = [
        [MD_HEADER, *_stops(1, 5)],
        [second_header, *_stops(6, 3), [None] * len(MD_HEADER), *_stops(9, 4)],
        [],                                   # an empty sheet
        _stops(13, 2),                        # a later sheet without a header
    ]
    parsed = parse_book(tmp_path, write_book(tmp_path, sheets, kind), batch_rows=4)
    assert [row["stop_id"] for row in parsed.rows] == [str(n) for n in range(1, 15)]
    assert [row["officer_id"] for row in parsed.rows] == [str(n) for n in range(1, 15)]
    assert parsed.parser.lines[WORKBOOK] == 14
    assert parsed.parser.loaded[WORKBOOK] == 14
    assert parsed.rejected == []
    assert {row["age"] for row in parsed.rows} == {"35"}


def test_batches_start_with_the_header_and_number_the_rows(tmp_path):
    path = write_book(tmp_path, [[MD_HEADER, *_stops(1, 3)], [MD_HEADER, *_stops(4, 2)]])
    reports = []
    batches = list(workbook_batches(path, lambda done, total: reports.append((done, total)),
                                    batch_rows=2))
    assert [(first, len(rows)) for first, rows in batches] == [(0, 2), (2, 2), (4, 2)]
    assert batches[0][1][0] == MD_HEADER
    assert [rows[-1][17] for _, rows in batches] == ["1", "3", "5"]
    assert reports[-1] == (7, 7)          # rows of the sheets, the headers included
    assert all(done <= total for done, total in reports)


@pytest.mark.parametrize("kind", ["xlsx", "xls"])
def test_a_later_sheet_of_another_width_fails(tmp_path, kind):
    first = [MD_HEADER, *_stops(1, 5)]
    narrow = [row[:-1] for row in [MD_HEADER, *_stops(6, 2)]]
    path = write_book(tmp_path, [first, narrow], kind)
    with pytest.raises(ImportFailed) as failure:
        parse_book(tmp_path, path)
    assert failure.value.phase == "load workbook"
    assert failure.value.message == (
        "sheet 'Sheet2' has 18 columns where the first sheet has 19; every sheet must have "
        "the first sheet's columns")
    headerless = write_book(tmp_path, [first, [row + ["extra"] for row in _stops(6, 2)]],
                            kind)
    with pytest.raises(ImportFailed, match="sheet 'Sheet2' has 20 columns where the first "
                                           "sheet has 19"):
        parse_book(tmp_path, headerless)


def test_a_later_sheet_with_another_header_fails(tmp_path):
    swapped = [MD_HEADER[1], MD_HEADER[0], *MD_HEADER[2:]]
    path = write_book(tmp_path, [[MD_HEADER, *_stops(1, 2)], [swapped, *_stops(3, 2)]])
    with pytest.raises(ImportFailed, match="sheet 'Sheet2' starts with a header row that is "
                                           "not the first sheet's"):
        parse_book(tmp_path, path)


def test_blank_rows_are_skipped(tmp_path):
    blank = [None] * len(MD_HEADER)
    spaces = ["  "] * len(MD_HEADER)
    parsed = parse_rows(tmp_path, blank, stop_row(OFFICERID="1"), spaces, blank,
                        stop_row(OFFICERID="2"))
    assert [(row["stop_id"], row["officer_id"]) for row in parsed.rows] == [("1", "1"),
                                                                            ("2", "2")]
    assert parsed.parser.lines[WORKBOOK] == 2


@pytest.mark.parametrize(("value", "text"), [
    ("text", "text"), (" padded ", " padded "), (1234.0, "1234"), (1234, "1234"),
    (12.5, "12.5"), (0.1 + 0.2, "0.3"), (-3.0, "-3"), (True, "TRUE"), (False, "FALSE"),
    (date(2015, 3, 1), "3/1/2015"), (datetime(2015, 3, 1), "3/1/2015"),
    (datetime(2015, 3, 1, 8, 30), "3/1/2015 8:30"), (time(8, 5), "8:05"),
    (time(20, 5, 9), "20:05:09"), (None, ""),
])
def test_cells_read_as_typed(value, text):
    assert cell_text(value) == text


def test_a_file_that_is_not_a_workbook_fails(tmp_path):
    path = tmp_path / "stops.xlsx"
    path.write_bytes(b"not a workbook")
    with pytest.raises(ImportFailed, match="stops.xlsx is not an Excel workbook"):
        list(workbook_batches(path))


def test_xls_sheets_are_limited(tmp_path):
    with pytest.raises(ValueError, match="at most 65535 rows"):
        write_xls(tmp_path / "big.xls", [[["x"]] * (XLS_MAX_ROWS + 1)])


# -- the release ------------------------------------------------------------------------------

def test_the_release_finds_the_largest_workbook(tmp_path):
    release = MdRelease()
    assert release.find_files(tmp_path) == {}
    (tmp_path / "sub").mkdir()
    small = write_book(tmp_path, [[MD_HEADER]], "xls")
    big = tmp_path / "sub" / "Stops.XLSX"
    write_xlsx(big, [[MD_HEADER, *_stops(1, 500)]])
    (tmp_path / "sub" / "~$Stops.xlsx").write_bytes(b"x" * 100_000)
    (tmp_path / "notes.txt").write_text("x" * 100_000)
    assert small.stat().st_size < big.stat().st_size
    assert release.find_files(tmp_path) == {WORKBOOK: big}
    big.unlink()
    assert release.find_files(tmp_path) == {WORKBOOK: small}


def test_the_release_contract():
    release = MdRelease()
    assert release.state is MD
    assert release.files == (WORKBOOK,)
    assert release.copy_tables == {WORKBOOK: "stop"}
    assert release.count_names == {WORKBOOK: "stops"}
    assert set(release.table_keys) == set(release.foreign_keys) == {"stop"}
    for name in COLUMNS:
        assert f"    {name} " in release.tables_sql


def test_a_zipped_release_holds_the_workbook(tmp_path):
    import zipfile

    path = write_book(tmp_path, [[MD_HEADER, *_stops(1, 2)]])
    archive = zip_release(path, tmp_path / "md.zip")
    assert zipfile.ZipFile(archive).namelist() == ["stops.xlsx"]


# -- the stop-reason mapping ----------------------------------------------------------------------

def test_the_default_mapping():
    mapping = md_stop_reasons.default()
    assert 40 <= len(mapping) <= 80
    valid = set(MD_PURPOSES.values()) | set(MD_DROPPED_PURPOSES)
    assert set(mapping.values()) <= valid
    assert set(mapping.values()) >= set(MD_PURPOSES.values()) - {"Other/Unknown"}
    assert all(reason_stem(stem) == stem for stem in mapping)
    assert mapping["21-801"] == "Speed Limit Violation"
    assert mapping["21-202"] == "Stop Light/Sign Violation"
    assert mapping["21-707"] == "Stop Light/Sign Violation"
    assert mapping["21-902"] == "Driving While Impaired"
    assert mapping["22-412"] == "Seat Belt Violation"
    assert mapping["13-401"] == "Vehicle Regulatory Violation"
    assert mapping["20-102"] == "Failure to remain at scene of accident"
    assert mapping["64"] == "Investigation"
    assert md_stop_reasons.DEFAULT_PATH.read_text().splitlines()[0] == "stem,purpose"


def test_parse_reads_a_mapping():
    text = "\ufeffStem, Purpose\n21-801,speed limit violation\n\n64,Investigation\n"
    assert md_stop_reasons.parse(text) == {"21-801": "Speed Limit Violation",
                                        "64": "Investigation"}


@pytest.mark.parametrize(("text", "message"), [
    ("", "line 1, column 1: the mapping is empty"),
    ("code,purpose\n", "line 1, column 1: the header must be 'stem,purpose'"),
    ("stem,label\n", "line 1, column 2: the header must be 'stem,purpose'"),
    ("stem\n", "line 1, column 2: the header must be 'stem,purpose'"),
    ("stem,purpose,note\n", "line 1, column 3: the header must be 'stem,purpose'"),
    ("stem,purpose\n21-801,Speeding\n",
     "line 2, column 2: purpose 'Speeding' is not one of Seat Belt Violation"),
    ("stem,purpose\n21-801,Speed Limit Violation\n21-801.1,Speed Limit Violation\n",
     "line 3, column 1: stem '21-801.1' is not a title-section stem"),
    ("stem,purpose\n\n21-801,Speed Limit Violation\n21-801,Investigation\n",
     "line 4, column 1: stem '21-801' is already mapped on line 3"),
    ("stem,purpose\n21-801\n", "line 2, column 2: purpose is missing"),
    ("stem,purpose\n21-801,Investigation,why\n", "line 2, column 3: only two columns"),
    ("stem,purpose\n,Investigation\n", "line 2, column 1: stem '' is not"),
])
def test_parse_errors_name_line_and_column(text, message):
    with pytest.raises(ValueError) as failure:
        md_stop_reasons.parse(text)
    assert str(failure.value).startswith(message)


class _FakeConnection:
    def __init__(self, table):
        self.table = table

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, statement):
        sql = str(statement)
        table = self.table

        class Result:
            def scalar(self):
                assert "to_regclass('ingest.md_stop_reasons')" in sql
                return None if table is None else "ingest.md_stop_reasons"

            def all(self):
                assert "FROM ingest.md_stop_reasons" in sql
                return table

        return Result()


class _FakeEngine:
    def __init__(self, table):
        self.table = table

    def connect(self):
        return _FakeConnection(self.table)


def test_load_prefers_the_operators_table():
    default = md_stop_reasons.default()
    assert stop_reasons.load(None) == default
    assert stop_reasons.load(_FakeEngine(None)) == default
    assert stop_reasons.load(_FakeEngine([])) == default
    assert stop_reasons.load(_FakeEngine([("21-801", "Investigation")])) == {
        "21-801": "Investigation"}


# -- generated rows -------------------------------------------------------------------------------

def test_generated_rows_are_dirty_and_load(tmp_path):
    rows = list(generate_rows(3000, seed=3))
    assert rows == list(generate_rows(3000, seed=3))
    assert all(len(row) == len(MD_HEADER) for row in rows)
    columns = dict(zip(MD_HEADER, zip(*rows, strict=True), strict=True))
    assert {"W.", "BLK", "NATIVE AMERICAN", "UNKNOWN"} <= set(columns["ETHNICITY"])
    assert {"male", "w", "MALE"} <= set(columns["GENDER"])
    assert any(type(v) is str and v.endswith("PM") for v in columns["TIME_OF_STOP"])
    assert "" in columns["DOB"]
    path = write_book(tmp_path, sheets_of(rows, rows_per_sheet=1200))
    parsed = parse_book(tmp_path, path)
    parser = parsed.parser
    assert parser.lines[WORKBOOK] == 3000
    assert parser.loaded[WORKBOOK] + sum(parser.dropped.values()) + len(parsed.rejected) == 3000
    assert parser.dropped["stops before 2013"] > 30
    assert parser.dropped["stop reason Investigation"] > 30
    assert parser.dropped["stop reason Failure to remain at scene of accident"] > 5
    assert 0 < len(parsed.rejected) < 30
    assert {row["race"] for row in parsed.rows} == set("WBHAIU")
    assert {row["gender"] for row in parsed.rows} == set("MFU")
    assert {row["purpose"] for row in parsed.rows} == {str(code) for code in MD_PURPOSES}
    assert {row["date"][:4] for row in parsed.rows} == {"2013", "2014", "2015", "2016"}
    assert "00:00:00" in {row["date"][11:] for row in parsed.rows}
    assert [row["stop_id"] for row in parsed.rows] == sorted(
        (row["stop_id"] for row in parsed.rows), key=int)


def test_a_sheet_may_start_below_and_right_of_a1(tmp_path):
    sheets = [[[], [None, *MD_HEADER], [None, *stop_row(OFFICERID="7")]],
              [[None, *MD_HEADER], [], [None, *stop_row(OFFICERID="8")]]]
    parsed = parse_book(tmp_path, write_book(tmp_path, sheets))
    assert [(row["stop_id"], row["officer_id"]) for row in parsed.rows] == [("1", "7"),
                                                                            ("2", "8")]


def test_the_header_is_checked_before_the_first_chunk_is_asked_for(tmp_path):
    """So that a bad header fails the import before COPY starts (an error
    raised while COPY reads the chunks reaches the pipeline wrapped by
    psycopg2)."""
    header = [name for name in MD_HEADER if name != "ETHNICITY"]
    path = write_book(tmp_path, [[header, stop_row()[:-1]]])
    parser = MdRows(Rejects(tmp_path / "rejects.csv"), lambda name: 1, {})
    with pytest.raises(ImportFailed, match="has no ETHNICITY column;"):
        parser.rows_for(WORKBOOK)(workbook_batches(path))
