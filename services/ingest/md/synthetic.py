"""Synthetic Maryland releases: Excel workbooks of stops.

The sample release, the benchmark's large releases and the tests' hand-built
workbooks are written here. Rows are lists in MD_HEADER order; a cell is
text, a number, a `datetime.date`/`datetime`/`time` (written as a real
Excel date or time cell) or None (an empty cell). Agency codes, officer
ids and places are made up by this project.

    rows = [MD_HEADER, stop_row(STOPDATE="3/1/2015", AGENCY="AACOPD")]
    write_xlsx(folder / "stops.xlsx", [rows])
    zip_release(folder / "stops.xlsx", folder / "md.zip")

    write_xlsx(path, sheets_of(generate_rows(1_000_000), rows_per_sheet=500_000))
"""

from __future__ import annotations

import random
import zipfile
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta
from itertools import chain, islice
from pathlib import Path

MD_HEADER = ["STOPDATE", "TIME_OF_STOP", "LOCATION", "DURATION", "STOP_REASON",
             "SEARCH_CONDUCTED", "SEARCH_REASON", "WHATSEARCHED", "SEIZED", "STOPOUTCOME",
             "CRIME_CHARGED", "REGISTRATION_STATE", "GENDER", "DOB", "RESIDENCE_STATE",
             "MD_COUNTY", "ETHNICITY", "OFFICERID", "AGENCY"]
XLS_MAX_ROWS = 65535
XLSX_MAX_ROWS = 1_048_576

SAMPLE_AGENCIES = ("AACOPD", "BCOPD", "MSP", "HCPD", "FCSO", "ANNAPD", "CCSO", "TPPD")

DEFAULTS = {
    "STOPDATE": "3/1/2015",
    "TIME_OF_STOP": "8:30",
    "LOCATION": "RT 50 AT RIVA RD",
    "DURATION": "10",
    "STOP_REASON": "21-801.1(b)",
    "SEARCH_CONDUCTED": "N",
    "SEARCH_REASON": "",
    "WHATSEARCHED": "",
    "SEIZED": "",
    "STOPOUTCOME": "Citation",
    "CRIME_CHARGED": "",
    "REGISTRATION_STATE": "MD",
    "GENDER": "M",
    "DOB": "5/12/1985",
    "RESIDENCE_STATE": "MD",
    "MD_COUNTY": "Anne Arundel",
    "ETHNICITY": "WHITE",
    "OFFICERID": "1234",
    "AGENCY": "AACOPD",
}


def stop_row(**values) -> list:
    """One stop's row in MD_HEADER order: DEFAULTS with `values` (keyed by
    column name, any case) in their place."""
    row = dict(DEFAULTS)
    for name, value in values.items():
        key = name.upper()
        if key not in row:
            raise TypeError(f"stop_row: no column {name!r}")
        row[key] = value
    return [row[name] for name in MD_HEADER]


def sheets_of(rows: Iterable[list], rows_per_sheet: int = XLSX_MAX_ROWS - 1,
              header: list | None = MD_HEADER, repeat_header: bool = True
              ) -> Iterator[Iterator[list]]:
    """Cut `rows` (no header) into sheets of at most `rows_per_sheet` data
    rows, the first starting with `header` and, when `repeat_header`, the
    others too. Streams: consume each sheet before asking for the next."""
    rows = iter(rows)
    first = True
    while True:
        peek = next(rows, None)
        if peek is None and not first:
            return
        lead = [header] if header is not None and (first or repeat_header) else []
        body = [] if peek is None else chain([peek], islice(rows, rows_per_sheet - 1))
        yield chain(lead, body)
        if peek is None:
            return
        first = False


def write_xlsx(path: Path, sheets: Iterable[Iterable[list]],
               names: Iterable[str] | None = None) -> Path:
    """Write the rows of each sheet, exactly as given (headers included), as
    an .xlsx workbook (openpyxl's write-only mode: rows stream to disk)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    names = iter(names or ())
    for number, rows in enumerate(sheets, 1):
        sheet = book.create_sheet(next(names, f"Sheet{number}"))
        append = sheet.append
        for row in rows:
            append(row)
    if not book.worksheets:
        book.create_sheet("Sheet1")
    book.save(path)
    return Path(path)


def write_xls(path: Path, sheets: Iterable[Iterable[list]],
              names: Iterable[str] | None = None) -> Path:
    """Write the rows of each sheet, exactly as given, as an .xls workbook
    (xlwt; at most XLS_MAX_ROWS rows a sheet). Dates and times become real
    Excel date cells."""
    import xlwt

    styles = {
        date: xlwt.easyxf(num_format_str="M/D/YYYY"),
        datetime: xlwt.easyxf(num_format_str="M/D/YYYY h:mm"),
        time: xlwt.easyxf(num_format_str="h:mm"),
    }
    book = xlwt.Workbook()
    names = iter(names or ())
    written = 0
    for number, rows in enumerate(sheets, 1):
        sheet = book.add_sheet(next(names, f"Sheet{number}"))
        written += 1
        row_no = -1
        for row_no, row in enumerate(rows):
            if row_no >= XLS_MAX_ROWS:
                raise ValueError(f"an .xls sheet holds at most {XLS_MAX_ROWS} rows")
            for column, value in enumerate(row):
                if value is None:
                    continue
                style = styles.get(type(value))
                if style is not None:
                    sheet.write(row_no, column, value, style)
                else:
                    sheet.write(row_no, column, value)
            if row_no % 1000 == 999:
                sheet.flush_row_data()
    if not written:
        book.add_sheet("Sheet1")
    book.save(str(path))
    return Path(path)


def zip_release(workbook: Path, zip_path: Path) -> Path:
    """Pack a workbook the way the state ships it: a zip holding the one file."""
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED,
                         compresslevel=1) as archive:
        archive.write(workbook, arcname=Path(workbook).name)
    return Path(zip_path)


# -- generated releases -----------------------------------------------------------

def _weighted(pairs) -> list:
    """A list in which each value appears `weight` times, for rng.choice."""
    return [value for value, weight in pairs for _ in range(weight)]


REASONS = _weighted([
    ("21-801.1(b)", 120), ("21-801(a)", 40), ("21-801.1", 40), ("21-202(h)(1)", 40),
    ("21-707(a)", 25), ("21-902(a)(1)", 12), ("21-902(b)", 6), ("22-412.3(b)", 40),
    ("22-412.3", 15), ("13-401(b)", 60), ("13-401(h)", 20), ("13-411(d)", 30),
    ("16-101(a)", 30), ("16-303(c)", 25), ("17-107(a)", 10), ("22-204(f)", 35),
    ("22-203(b)", 15), ("22-406(i)", 15), ("21-309(b)", 30), ("21-310(a)", 10),
    ("21-1124.2(d)", 25), ("21-604", 8), ("21-1207", 2), ("21-502(a)", 3),
    ("21-403", 8), ("21-901.1(b)", 5), ("25-111", 4), ("64*", 14), ("64", 6),
    ("5-601", 2), ("20-102", 3), ("20-104", 2), ("99-999", 4), ("", 4), ("OTHER", 2),
])
ETHNICITIES = _weighted([
    ("WHITE", 40), ("W", 8), ("W.", 2), ("white", 2), ("BLACK", 30), ("BLK", 6),
    ("black ", 1), ("HISPANIC", 8), ("ASIAN", 3), ("NATIVE AMERICAN", 1),
    ("UNKNOWN", 2), ("OTHER", 2), ("", 1),
])
GENDER_SPELLINGS = _weighted([
    ("M", 50), ("male", 4), ("MALE", 6), ("F", 28), ("female", 3), ("w", 2), ("U", 1),
    ("", 1),
])
SEARCHED_YES = ("Y", "Yes", "YES", "y")
SEARCHED_NO = _weighted([("N", 70), ("No", 15), ("NO", 10), ("", 5)])
SEIZED_FOUND = ("Contraband Only", "Contraband and Property", "paraphernalia", "Both",
                "BOTH", "CONTRABAND ONLY")
SEIZED_NOT = ("Nothing", "Property Only", "None", "")
SEARCH_REASONS = ("Consent", "Probable Cause", "Incident to Arrest", "K9 Alert", "Other")
SEARCHED_WHAT = ("Person", "Property", "Both")
OUTCOMES = _weighted([("Citation", 45), ("Warning", 40), ("SERO", 8), ("Arrest", 4),
                      ("", 3)])
LOCATIONS = ("RT 50 AT RIVA RD", "I-97 SB NEAR EXIT 5", "MD-2 AT JUMPERS HOLE RD",
             "RITCHIE HWY / OLD MILL RD", "BALTIMORE NATIONAL PIKE", "US-29 AT MD-100",
             "WEST ST AT TAYLOR AVE", "MAIN ST 400 BLK")
COUNTIES = ("Anne Arundel", "Baltimore", "Howard", "Frederick", "Carroll", "Prince George's",
            "Montgomery", "")
STATES = _weighted([("MD", 85), ("VA", 5), ("PA", 3), ("DE", 2), ("DC", 3), ("NY", 2)])


def _day_texts(first: date, last: date) -> list[tuple[date, str, str]]:
    days = []
    day = first
    while day <= last:
        days.append((day, f"{day.month}/{day.day}/{day.year}",
                     f"{day.month}/{day.day}/{day.year % 100:02d}"))
        day += timedelta(days=1)
    return days


def generate_rows(count: int, seed: int = 1, agencies: Iterable[str] = SAMPLE_AGENCIES,
                  first_year: int = 2013, last_year: int = 2016, early_share: float = 0.03,
                  bad_share: float = 0.001) -> Iterator[list]:
    """`count` stops as rows (no header), with the release's dirt: every
    spelling of the coded columns, M/D/YY and M/D/YYYY dates and real date
    cells, AM/PM and invalid times, two-digit birth years, empty DOBs,
    stops of 2012 (`early_share`), Investigation and failure-to-remain
    reasons, and a few rows to reject (`bad_share`: empty AGENCY or a
    STOPDATE that is not a date). The same seed gives the same rows."""
    rng = random.Random(seed)
    random_ = rng.random
    choice = rng.choice
    randrange = rng.randrange
    agencies = tuple(agencies)
    officers = {agency: [f"{1000 + 37 * i + 11 * n}" for i in range(40)]
                for n, agency in enumerate(agencies)}
    days = _day_texts(date(first_year, 1, 1), date(last_year, 12, 31))
    early = _day_texts(date(2012, 1, 1), date(2012, 12, 31))
    births = _day_texts(date(1940, 1, 1), date(1998, 12, 31))
    for _ in range(count):
        roll = random_()
        day, long_text, short_text = choice(early if roll < early_share else days)
        roll = random_()
        stop_date = long_text if roll < 0.6 else short_text if roll < 0.8 else day
        hour, minute = randrange(24), randrange(60)
        roll = random_()
        if roll < 0.55:
            clock = f"{hour}:{minute:02d}"
        elif roll < 0.7:
            clock = f"{hour:02d}:{minute:02d}"
        elif roll < 0.92:
            clock = f"{(hour + 11) % 12 + 1}:{minute:02d} {'AM' if hour < 12 else 'PM'}"
        elif roll < 0.96:
            clock = time(hour, minute)
        else:
            clock = choice(("", "25:10", "7:75", "99:99", "1830"))
        searched = random_() < 0.06
        if searched:
            search_text = choice(SEARCHED_YES)
            seized = choice(SEIZED_FOUND) if random_() < 0.35 else choice(SEIZED_NOT)
            search_reason, what = choice(SEARCH_REASONS), choice(SEARCHED_WHAT)
        else:
            search_text, seized, search_reason, what = choice(SEARCHED_NO), "", "", ""
        roll = random_()
        birth, birth_long, birth_short = choice(births)
        dob = (birth_short if roll < 0.4 else birth_long if roll < 0.8 else
               birth if roll < 0.9 else "" if roll < 0.98 else "00/00/00")
        agency = choice(agencies)
        roll = random_()
        officer = choice(officers[agency])
        if roll < 0.1:
            officer = float(officer)   # a number cell: 1234.0
        elif roll < 0.12:
            officer = ""
        if bad_share and random_() < bad_share:
            if random_() < 0.5:
                agency = ""
            else:
                stop_date = choice(("13/45/2015", "2015-03-01", "N/A"))
        yield [stop_date, clock, choice(LOCATIONS), str(randrange(3, 60)), choice(REASONS),
               search_text, search_reason, what, seized, choice(OUTCOMES), "",
               choice(STATES), choice(GENDER_SPELLINGS), dob, choice(STATES),
               choice(COUNTIES), choice(ETHNICITIES), officer, agency]


def main(argv=None) -> None:
    """`python -m services.ingest.md.synthetic --stops 3000 --sheets 2 --out release.zip`"""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--stops", type=int, default=3000)
    parser.add_argument("--sheets", type=int, default=2,
                        help="sheets to spread the rows over, each with the header")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="zip file to write")
    args = parser.parse_args(argv)
    per_sheet = -(-args.stops // args.sheets)
    with tempfile.TemporaryDirectory() as folder:
        workbook = write_xlsx(Path(folder) / "MD_stops.xlsx",
                              sheets_of(generate_rows(args.stops, seed=args.seed), per_sheet))
        zip_release(workbook, args.out)
    print(f"{args.out}: {args.stops:,} rows on {args.sheets} sheets")


if __name__ == "__main__":
    main()
