"""Illinois' normalization rules (services.ingest.il.format), end to end from
raw bytes: CSVs are written by the synthetic writer (or line by line for
malformed ones), read back with rawfile.line_batches, parsed by IlRows into
COPY text, with a real rejects file. No database."""

from __future__ import annotations

import csv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.ingest import rawfile
from services.ingest.agencies import AgencyIds
from services.ingest.errors import ImportFailed
from services.ingest.il.format import CSV_FILE, IlRows
from services.ingest.il.release import IlRelease
from services.ingest.il.synthetic import (
    BAD_ROWS,
    IL_HEADER,
    SAMPLE_AGENCIES,
    csv_line,
    generate_rows,
    write_csv,
    zip_release,
)
from services.ingest.rawfile import line_batches
from services.ingest.rejects import Rejects
from shared.states import IL, IL_PURPOSES

STOP_COLUMNS = ("stop_id", "agency_id", "year", "purpose", "race", "gender", "searched",
                "contraband")
CLEAN = {"agencycode": "13100", "agencyname": "Alder Police", "Gender": "M", "Race": "W",
         "Search": "N", "Contraband": "N", "StopPurpose": "Moving Violation", "year": "2015"}


def stop(**values) -> dict[str, str]:
    """A CSV row: the clean one with `values` changed."""
    return {**CLEAN, **values}


@dataclass
class Parsed:
    rows: list[dict[str, str]]
    rejected: list[dict[str, str]]
    parser: IlRows
    agencies: AgencyIds

    @property
    def row(self) -> dict[str, str]:
        (row,) = self.rows
        return row

    @property
    def reasons(self) -> list[str]:
        return [reject["reason"] for reject in self.rejected]


def copy_rows(text: str) -> list[dict[str, str]]:
    """COPY text as rows of named fields; every row ends with a newline."""
    if not text:
        return []
    assert text.endswith("\n")
    rows = []
    for line in text[:-1].split("\n"):
        fields = line.split("\t")
        assert len(fields) == len(STOP_COLUMNS), line
        rows.append(dict(zip(STOP_COLUMNS, fields, strict=True)))
    return rows


def parse_file(tmp_path: Path, path: Path, agencies: AgencyIds | None = None) -> Parsed:
    agencies = agencies or AgencyIds("il", {})
    rejects = Rejects(tmp_path / "rejects.csv")
    parser = IlRows(rejects, agencies.id_for)
    text = "".join(parser.rows_for(CSV_FILE)(line_batches(path)))
    rejects.close()
    with open(rejects.path, newline="", encoding="utf-8") as handle:
        rejected = list(csv.DictReader(handle))
    assert all(reject["file"] == CSV_FILE for reject in rejected)
    return Parsed(copy_rows(text), rejected, parser, agencies)


def parse(tmp_path: Path, rows, header=IL_HEADER, agencies=None, **options) -> Parsed:
    path = write_csv(tmp_path / "stops.csv", rows, header=header, **options)
    return parse_file(tmp_path, path, agencies)


def parse_lines(tmp_path: Path, lines: list[str], header=IL_HEADER) -> Parsed:
    """A CSV written line by line, exactly as given (for malformed lines)."""
    path = tmp_path / "stops.csv"
    path.write_text("\n".join([csv_line(header), *lines]) + "\n", encoding="utf-8")
    return parse_file(tmp_path, path)


# -- the rules, with their dirty spellings ------------------------------------------


@pytest.mark.parametrize(("raw", "race"), [
    ("W", "W"), ("B", "B"), ("H", "H"), ("A", "A"), ("I", "I"),
    ("w", "W"), (" b ", "B"), ("h ", "H"), ("a", "A"), (" i", "I"),
    ("O", "U"), ("o", "U"), ("U", "U"), ("u ", "U"),
    # Anything else is Other/Unknown too: empty, a word, a code of another state.
    ("", "U"), ("White", "U"), ("X", "U"), ("N", "U"),
])
def test_race_codes_stay_and_the_rest_become_unknown(tmp_path, raw, race):
    parsed = parse(tmp_path, [stop(Race=raw)])
    assert parsed.row["race"] == race
    assert parsed.rejected == []


@pytest.mark.parametrize(("raw", "gender"), [
    ("M", "M"), ("m", "M"), ("Male", "M"), ("MALE", "M"), (" male ", "M"),
    ("F", "F"), ("f", "F"), ("Female", "F"), ("FEMALE ", "F"),
    ("", "U"), ("U", "U"), ("X", "U"), ("Unknown", "U"),
])
def test_gender_spellings(tmp_path, raw, gender):
    parsed = parse(tmp_path, [stop(Gender=raw)])
    assert parsed.row["gender"] == gender
    assert parsed.rejected == []


@pytest.mark.parametrize(("raw", "purpose"), [
    ("Moving Violation", "1"), ("moving violation", "1"), (" MOVING  VIOLATION ", "1"),
    ("Equipment", "2"), ("equipment ", "2"), ("EQUIPMENT", "2"),
    ("Registration", "3"), (" registration", "3"),
    ("", "4"), ("Other", "4"), ("Seat Belt", "4"), ("Unknown", "4"), ("Moving", "4"),
])
def test_stop_purposes(tmp_path, raw, purpose):
    parsed = parse(tmp_path, [stop(StopPurpose=raw)])
    assert parsed.row["purpose"] == purpose
    assert parsed.rejected == []


def test_purpose_codes_are_the_shared_labels():
    assert IL_PURPOSES == {1: "Moving Violation", 2: "Equipment", 3: "Registration",
                           4: "Unknown"}


@pytest.mark.parametrize(("raw", "code"), [
    ("Y", "Y"), ("y", "Y"), ("Yes", "Y"), ("YES", "Y"), (" y ", "Y"),
    ("N", "N"), ("n", "N"), ("No", "N"), ("no ", "N"),
    ("", "U"), ("  ", "U"),
])
@pytest.mark.parametrize(("column", "field"), [("Search", "searched"),
                                               ("Contraband", "contraband")])
def test_search_and_contraband_spellings(tmp_path, column, field, raw, code):
    parsed = parse(tmp_path, [stop(**{column: raw})])
    assert parsed.row[field] == code
    assert parsed.rejected == []


@pytest.mark.parametrize("raw", ["Maybe", "1", "0", "X", "T", "Yess", "N/A"])
@pytest.mark.parametrize("column", ["Search", "Contraband"])
def test_other_search_and_contraband_values_are_rejected_naming_the_column(
        tmp_path, column, raw):
    parsed = parse(tmp_path, [stop(), stop(**{column: raw}), stop()])
    assert [row["stop_id"] for row in parsed.rows] == ["1", "3"]
    (reject,) = parsed.rejected
    assert reject["line"] == "3"
    assert reject["reason"].startswith(f"{column} {raw!r} ")
    assert f",{raw}," in reject["content"]


@pytest.mark.parametrize(("raw", "year"), [
    ("2015", "2015"), (" 2004 ", "2004"), ("1990", "1990"), ("2100", "2100"),
])
def test_years(tmp_path, raw, year):
    assert parse(tmp_path, [stop(year=raw)]).row["year"] == year


@pytest.mark.parametrize("raw", ["", "15", "20x5", "1989", "2101", "2015.0", "02015",
                                 "２０１５", "year"])
def test_a_bad_year_is_rejected_naming_year(tmp_path, raw):
    parsed = parse(tmp_path, [stop(year=raw)])
    assert parsed.rows == []
    assert parsed.reasons == [f"year {raw!r} is not a year (four digits, 1990-2100)"]
    assert parsed.rejected[0]["line"] == "2"


@pytest.mark.parametrize("raw", ["", "   "])
def test_an_empty_agencycode_is_rejected_naming_agencycode(tmp_path, raw):
    parsed = parse(tmp_path, [stop(agencycode=raw), stop()])
    assert [row["stop_id"] for row in parsed.rows] == ["2"]
    assert parsed.reasons == ["agencycode is empty"]
    # An agency is only named by a row that loads.
    assert parsed.agencies.used == {"13100": 1}


def test_agencies_are_their_trimmed_code_and_the_name_column_is_ignored(tmp_path):
    agencies = AgencyIds("il", {"13101": 7})  # a code an earlier import named
    parsed = parse(tmp_path, [
        stop(agencycode="13100", agencyname="Alder Police"),
        stop(agencycode=" 13100 ", agencyname="ALDER POLICE DEPT"),
        stop(agencycode="13101", agencyname="Birchwood Police"),
        stop(agencycode="13102", agencyname=""),
    ], agencies=agencies)
    assert [row["agency_id"] for row in parsed.rows] == ["8", "8", "7", "9"]
    assert agencies.used == {"13100": 8, "13101": 7, "13102": 9}
    assert agencies.new_agencies() == [{"id": 8, "name": "13100"}, {"id": 9, "name": "13102"}]


# -- the header -----------------------------------------------------------------------


def test_header_in_another_order_and_case_with_extra_columns(tmp_path):
    header = (" YEAR", "Race ", "stoppurpose", "AgencyName", "DateOfStop", "CONTRABAND",
              "search", "GENDER", "AgencyCode", "Notes")
    parsed = parse(tmp_path, [
        {" YEAR": "2012", "Race ": "b", "stoppurpose": "Equipment", "AgencyName": "Alder",
         "DateOfStop": "nothing", "CONTRABAND": "", "search": "Y", "GENDER": "female",
         "AgencyCode": "13100", "Notes": "ignored, quoted"},
    ], header=header)
    assert parsed.rows == [{"stop_id": "1", "agency_id": "1", "year": "2012", "purpose": "2",
                            "race": "B", "gender": "F", "searched": "Y", "contraband": "U"}]


def test_a_byte_order_mark_before_the_header_is_ignored(tmp_path):
    path = write_csv(tmp_path / "stops.csv", [stop()], encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert parse_file(tmp_path, path).row["agency_id"] == "1"


def test_missing_columns_are_named_before_any_row_is_read(tmp_path):
    header = ("agencycode", "agencyname", "Gender", "Search", "Contraband", "StopPurpose")
    path = write_csv(tmp_path / "stops.csv", [("13100", "Alder", "M", "N", "N", "Other")],
                     header=header)
    parser = IlRows(Rejects(tmp_path / "rejects.csv"), AgencyIds("il", {}).id_for)
    # Raised by the call itself, not while COPY reads the rows (psycopg2
    # would wrap it in a QueryCanceled).
    with pytest.raises(ImportFailed) as failure:
        parser.rows_for(CSV_FILE)(line_batches(path))
    assert failure.value.phase == "load stops.csv"
    assert "stops.csv has no column(s) Race, year " in failure.value.message


def test_an_empty_file_has_no_header(tmp_path):
    path = tmp_path / "stops.csv"
    path.write_bytes(b"\n\n")
    parser = IlRows(Rejects(tmp_path / "rejects.csv"), AgencyIds("il", {}).id_for)
    with pytest.raises(ImportFailed, match="stops.csv is empty: it has no header row"):
        parser.rows_for(CSV_FILE)(line_batches(path))


def test_a_column_named_twice_is_refused(tmp_path):
    path = write_csv(tmp_path / "stops.csv", [], header=(*IL_HEADER, "RACE"))
    parser = IlRows(Rejects(tmp_path / "rejects.csv"), AgencyIds("il", {}).id_for)
    with pytest.raises(ImportFailed, match="has the column Race more than once"):
        parser.rows_for(CSV_FILE)(line_batches(path))


def test_a_quoted_header_is_read(tmp_path):
    header = ",".join(f'"{name}"' for name in IL_HEADER)
    path = tmp_path / "stops.csv"
    path.write_text(f"{header}\n13100,Alder,M,W,Y,Y,Registration,2010\n")
    assert parse_file(tmp_path, path).rows == [
        {"stop_id": "1", "agency_id": "1", "year": "2010", "purpose": "3", "race": "W",
         "gender": "M", "searched": "Y", "contraband": "Y"}]


# -- quoting, field counts, blank lines ----------------------------------------------


def test_quoted_fields_with_commas_and_quotes(tmp_path):
    parsed = parse(tmp_path, [
        stop(agencyname="Elm Grove, Village of"),
        stop(agencycode="13,104", agencyname='The "Best" Police, Inc.'),
        stop(agencyname="Ironwood, City of", StopPurpose="Registration, expired"),
        stop(agencycode="13100", StopPurpose="Equipment"),
    ])
    assert parsed.rejected == []
    assert [(row["agency_id"], row["purpose"]) for row in parsed.rows] == [
        ("1", "1"), ("2", "1"), ("1", "4"), ("1", "2")]
    assert parsed.agencies.used == {"13100": 1, "13,104": 2}


def test_quoting_by_hand_and_by_other_writers(tmp_path):
    parsed = parse_lines(tmp_path, [
        '"13100","Alder Police","M","W","N","N","Equipment","2015"',
        '13100, "Alder, Police",F,B,Y,N,Moving Violation,2016',
        '13100,"Alder ""Police"", Inc",M,H,N,,"",2017',
        '13100,Alder "North" Police,M,A,N,N,Other,2018',
        '"13100",Alder,M,W,N,N,Equipment,"2019"',
    ])
    assert parsed.rejected == []
    assert [(row["stop_id"], row["year"], row["race"], row["purpose"])
            for row in parsed.rows] == [("1", "2015", "W", "2"), ("2", "2016", "B", "1"),
                                        ("3", "2017", "H", "4"), ("4", "2018", "A", "4"),
                                        ("5", "2019", "W", "2")]


def test_a_wrong_number_of_fields_is_rejected(tmp_path):
    parsed = parse_lines(tmp_path, [
        "13100,Alder,M,W,N,N,Equipment,2015",
        "13100,Alder,M,W,N,N,Equipment",
        "13100,Alder,M,W,N,N,Equipment,2015,extra",
        "13100,Alder, Village of,M,W,N,N,Equipment,2015",
        "13100,Alder,M,W,N,N,Equipment,2015",
    ])
    assert [row["stop_id"] for row in parsed.rows] == ["1", "5"]
    assert [(reject["line"], reject["reason"]) for reject in parsed.rejected] == [
        ("3", "expected 8 comma-separated fields (as in the header), found 7"),
        ("4", "expected 8 comma-separated fields (as in the header), found 9"),
        ("5", "expected 8 comma-separated fields (as in the header), found 9"),
    ]
    assert parsed.rejected[1]["content"] == "13100,Alder,M,W,N,N,Equipment,2015,extra"


def test_a_quoted_value_spanning_lines_is_rejected(tmp_path):
    parsed = parse(tmp_path, [stop(), stop(agencyname="Alder\nPolice"), stop()])
    # write_csv quotes the name holding the line break; the line reader cuts
    # it in two lines, each with an unbalanced quote.
    assert [row["stop_id"] for row in parsed.rows] == ["1", "4"]
    assert [reject["line"] for reject in parsed.rejected] == ["3", "4"]
    assert all(reason.startswith("unbalanced quotes") for reason in parsed.reasons)
    assert parsed.parser.lines[CSV_FILE] == 4


def test_a_stray_quote_is_rejected(tmp_path):
    parsed = parse_lines(tmp_path, ['13100,Stray " quote,M,W,N,N,Other,2015',
                                    '13100,"Quoted" and more,M,W,N,N,Other,2015'])
    assert parsed.rows == []
    assert [reason.split(":")[0] for reason in parsed.reasons] == ["unbalanced quotes"] * 2


def test_blank_lines_are_skipped_and_keep_their_number(tmp_path):
    parsed = parse_lines(tmp_path, [
        "13100,Alder,M,W,N,N,Equipment,2015",
        "",
        "   ",
        ",,,,,,,",
        "13100,Alder,M,W,N,N,Equipment,2016",
    ])
    assert [(row["stop_id"], row["year"]) for row in parsed.rows] == [("1", "2015"),
                                                                     ("5", "2016")]
    assert parsed.rejected == []
    assert parsed.parser.lines[CSV_FILE] == 2
    assert parsed.parser.loaded[CSV_FILE] == 2


def test_crlf_nul_bytes_and_windows_1252_are_read(tmp_path):
    path = tmp_path / "stops.csv"
    path.write_bytes(b"\r\n".join([
        csv_line(IL_HEADER).encode(),
        b"13100,Caf\xe9 Police,M,W,N,N,Equipment,2015",
        b"13100,Alder\x00,F,\x00B,Y,Y,Registration,2016",
        b"",
    ]))
    parsed = parse_file(tmp_path, path)
    assert [(row["gender"], row["race"], row["purpose"]) for row in parsed.rows] == [
        ("M", "W", "2"), ("F", "B", "3")]


# -- the COPY text and the counters ---------------------------------------------------


def test_copy_text_parses_back_to_exact_values(tmp_path):
    parsed = parse(tmp_path, [
        stop(),
        stop(agencycode="13101", Gender="female", Race="o", Search="yes", Contraband="",
             StopPurpose=" equipment", year=" 2009"),
        stop(year="1989"),
        stop(agencycode="13102", agencyname="Cedar, County", Gender="", Race="",
             Search="", Contraband="", StopPurpose="", year="2100"),
    ])
    assert parsed.rows == [
        {"stop_id": "1", "agency_id": "1", "year": "2015", "purpose": "1", "race": "W",
         "gender": "M", "searched": "N", "contraband": "N"},
        {"stop_id": "2", "agency_id": "2", "year": "2009", "purpose": "2", "race": "U",
         "gender": "F", "searched": "Y", "contraband": "U"},
        {"stop_id": "4", "agency_id": "3", "year": "2100", "purpose": "4", "race": "U",
         "gender": "U", "searched": "U", "contraband": "U"},
    ]
    assert parsed.parser.lines[CSV_FILE] == 4
    assert parsed.parser.loaded[CSV_FILE] == 3
    assert parsed.parser.dropped == {}
    assert parsed.rejected[0]["line"] == "4"


def test_generated_release_counts_are_exact(tmp_path):
    rows = list(generate_rows(20_000, seed=3, bad=0.01))
    bad = sum(row in BAD_ROWS for row in rows)
    assert 100 < bad < 300
    parsed = parse(tmp_path, rows)
    assert parsed.parser.lines[CSV_FILE] == 20_000
    assert parsed.parser.loaded[CSV_FILE] == len(parsed.rows) == 20_000 - bad
    assert len(parsed.rejected) == bad
    # stop_id is the data row's number: the rejected rows' numbers are unused.
    expected_ids = [str(number) for number, row in enumerate(rows, 1) if row not in BAD_ROWS]
    assert [row["stop_id"] for row in parsed.rows] == expected_ids
    assert {row["race"] for row in parsed.rows} == set("WBHAIU")
    assert {row["gender"] for row in parsed.rows} == set("MFU")
    assert {row["searched"] for row in parsed.rows} == set("YNU")
    assert {row["contraband"] for row in parsed.rows} == set("YNU")
    assert {row["purpose"] for row in parsed.rows} == {"1", "2", "3", "4"}
    assert parsed.agencies.used.keys() == {code for code, _ in SAMPLE_AGENCIES}


def test_small_batches_give_the_same_rows(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "stops.csv", generate_rows(2_000, seed=5, bad=0.02))
    whole = parse_file(tmp_path, path)
    monkeypatch.setattr(rawfile, "BLOCK", 97)  # batches of a line or two
    batched = parse_file(tmp_path, path)
    assert batched.rows == whole.rows
    assert batched.rejected == whole.rejected
    assert batched.parser.lines == whole.parser.lines
    assert batched.parser.loaded == whole.parser.loaded


# -- synthetic releases and finding the file ------------------------------------------


def test_written_rows_read_back_with_the_csv_module(tmp_path):
    rows = list(generate_rows(5_000, seed=9))
    assert rows == list(generate_rows(5_000, seed=9))
    assert any("," in row[1] for row in rows)
    path = write_csv(tmp_path / "stops.csv", rows, line_end="\r\n")
    with open(path, newline="", encoding="utf-8") as handle:
        read = [tuple(row) for row in csv.reader(handle)]
    assert read == [IL_HEADER, *rows]


def test_zip_release_holds_the_csv(tmp_path):
    path = write_csv(tmp_path / "IL_2019.csv", generate_rows(10))
    archive = zip_release(path, tmp_path / "release.zip", arcname="data/IL_2019.csv")
    with zipfile.ZipFile(archive) as opened:
        assert opened.namelist() == ["data/IL_2019.csv"]
        assert opened.read("data/IL_2019.csv") == path.read_bytes()


def test_find_files_chooses_the_largest_csv_in_the_zips_top_folder(tmp_path):
    release = IlRelease()
    assert release.find_files(tmp_path) == {}
    # Deeper than the zip's top folder: another import's files, never taken.
    older = tmp_path / "il" / "earlier-import"
    write_csv(older / "IL_Stops_2018.csv", generate_rows(2000))
    nested = tmp_path / "Traffic Stops 2019"
    write_csv(nested / "IL_Stops_2019.CSV", generate_rows(200))
    write_csv(nested / "agency_list.csv", [], header=("code", "name"))
    (tmp_path / "README.txt").write_text("not a csv, but large" * 1000)
    (tmp_path / "rejects.csv").write_text("file,line,reason,content\n" * 1000)
    macos = tmp_path / "__MACOSX"
    macos.mkdir(parents=True)
    (macos / "._IL_Stops_2019.CSV").write_bytes(b"\0" * 100_000)
    assert release.find_files(tmp_path) == {CSV_FILE: nested / "IL_Stops_2019.CSV"}


def test_the_release_as_the_pipeline_sees_it(tmp_path):
    release = IlRelease()
    assert release.state is IL
    assert release.files == (CSV_FILE,) == ("stops.csv",)
    assert release.copy_tables == {CSV_FILE: "stop"}
    assert release.count_names == {CSV_FILE: "stops"}
    assert set(release.table_keys) == set(release.foreign_keys) == {"stop"}
    assert "{schema}.stop (" in release.tables_sql and "{schema}.agency (" in release.tables_sql
    agencies = AgencyIds("il", {})
    parser = release.parser({}, Rejects(tmp_path / "rejects.csv"), agencies, None)
    assert isinstance(parser, IlRows)
    assert parser.agency_id_for == agencies.id_for
