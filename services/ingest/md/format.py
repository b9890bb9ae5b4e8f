"""Maryland's workbook and the rules that turn its rows into stops.

The release is one Excel workbook (.xls or .xlsx), possibly split over
several sheets with the same columns; the first sheet starts with the
header row. `workbook_batches` streams the rows one sheet at a time as
text, the way a person typed them, and `MdRows` applies DATA-FORMATS.md's
rules ("Maryland (md)") and yields COPY text for `{schema}.stop`.

Row numbers: the header is row 0 and the data rows are numbered 1, 2, ...
across the whole workbook, in sheet order, not counting empty rows or the
repeated headers of later sheets. A stop's id is its row number, and the
rejects file names rows by it.

The loops are written for speed (a release has millions of rows): every
value a rule looks at is mapped once per distinct spelling and cached, so
a row costs a handful of dictionary lookups.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, time, timedelta
from itertools import chain, repeat
from pathlib import Path

from services.ingest.errors import ImportFailed
from services.ingest.rawfile import copy_text
from services.ingest.rejects import Rejects
from shared.states import MD_DROPPED_PURPOSES, MD_FIRST_YEAR, MD_PURPOSES

log = logging.getLogger(__name__)

# The release's one file, by its logical name (the workbook's own name varies).
WORKBOOK = "workbook"
PHASE = f"load {WORKBOOK}"

REQUIRED_COLUMNS = ("STOPDATE", "TIME_OF_STOP", "STOP_REASON", "SEARCH_CONDUCTED", "SEIZED",
                    "GENDER", "DOB", "ETHNICITY", "OFFICERID", "AGENCY")
OTHER_UNKNOWN = "Other/Unknown"
NULL = "\\N"
BATCH_ROWS = 10_000
# How an .xlsx/.xlsm workbook is read: "stream" (xlsx_stream, a few blocks
# of rows at a time) or "calamine" (python-calamine, a whole sheet at a time:
# the reader before the stream, kept to compare against and to fall back
# on). An .xls workbook is always read with python-calamine.
READER_VARIABLE = "ODP_MD_XLSX_READER"
READERS = ("stream", "calamine")

# -- cells as text ------------------------------------------------------------


def _clock(hour: int, minute: int, second: int) -> str:
    return f"{hour}:{minute:02d}:{second:02d}" if second else f"{hour}:{minute:02d}"


def cell_text(value) -> str:
    """A cell as the text a person typed: 1234 for the number 1234.0, dates
    as M/D/YYYY (with H:MM when they carry a time of day), times as H:MM
    (H:MM:SS when the seconds are not zero), booleans as TRUE/FALSE."""
    kind = type(value)
    if kind is str:
        return value
    if kind is float:
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.15g}"
    if kind is int:
        return str(value)
    if kind is datetime:
        day = f"{value.month}/{value.day}/{value.year}"
        if value.hour or value.minute or value.second:
            return f"{day} {_clock(value.hour, value.minute, value.second)}"
        return day
    if kind is date:
        return f"{value.month}/{value.day}/{value.year}"
    if kind is time:
        return _clock(value.hour, value.minute, value.second)
    if kind is bool:
        return "TRUE" if value else "FALSE"
    if kind is timedelta:
        seconds = int(value.total_seconds())
        sign = "-" if seconds < 0 else ""
        hours, rest = divmod(abs(seconds), 3600)
        return sign + _clock(hours, rest // 60, rest % 60)
    if value is None:
        return ""
    return str(value)


def _header_key(row: list[str]) -> list[str]:
    """A header row compared case- and space-insensitively, without its
    trailing empty cells."""
    key = ["".join(cell.split()).upper() for cell in row]
    while key and not key[-1]:
        key.pop()
    return key


def _cannot_open(path: Path, error: BaseException) -> ImportFailed:
    return ImportFailed(PHASE, f"{Path(path).name} is not an Excel workbook this platform "
                               f"can read ({error or type(error).__name__})")


def _cannot_read(name: str, error: BaseException) -> ImportFailed:
    return ImportFailed(PHASE, f"sheet {name!r} cannot be read "
                               f"({error or type(error).__name__})")


class _CalamineBook:
    """A workbook read by python-calamine, a whole sheet at a time: .xls
    files (parsed whole when opened; a sheet holds at most 65,536 rows), and
    .xlsx files when READER_VARIABLE asks for it."""

    def __init__(self, path: Path):
        from python_calamine import CalamineError, CalamineWorkbook

        try:
            self.book = CalamineWorkbook.from_path(str(path))
        except (CalamineError, OSError) as error:
            raise _cannot_open(path, error) from error
        self.heights: list[int] = []
        self.names = self.worksheet_names()
        self.expected = 0

    def worksheet_names(self) -> list[str]:
        """The workbook's sheets of cells, in workbook order (chart and macro
        sheets left out)."""
        try:
            from python_calamine import SheetTypeEnum

            return [meta.name for meta in self.book.sheets_metadata
                    if meta.typ == SheetTypeEnum.WorkSheet]
        except (ImportError, AttributeError):
            return list(self.book.sheet_names)

    def sheet(self, name: str) -> _CalamineSheet:
        try:
            sheet = self.book.get_sheet_by_name(name)
        except Exception as error:  # python-calamine's errors for a broken sheet
            raise _cannot_read(name, error) from error
        sheet = _CalamineSheet(sheet)
        if not sheet.height:
            return sheet
        done = sum(self.heights)
        self.heights.append(sheet.height)
        # Exact for the sheets opened so far, their average for the others.
        self.expected = done + sheet.height + (len(self.names) - len(self.heights)) * (
            sum(self.heights) // len(self.heights))
        return sheet

    def expected_rows(self, done: int) -> int:
        return max(self.expected, done)

    def close(self) -> None:
        self.book.close()


class _CalamineSheet:
    def __init__(self, sheet):
        start = sheet.start
        self.sheet = sheet if start is not None else None   # None: not a single cell
        self.offset = 0 if start is None else start[1]
        self.height = 0 if start is None else sheet.end[0] + 1
        self.width = 0 if start is None else self.offset + sheet.width

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        if self.sheet is None:
            return
        rows = self.sheet.iter_rows()    # from the sheet's first row, blank ones included
        self.sheet = None                # the iterator keeps the sheet while needed
        pad = [""] * self.offset
        for index, raw in enumerate(rows):
            yield index, _texts(pad + raw if pad else raw)


class _StreamBook:
    """An .xlsx/.xlsm workbook read as a stream (xlsx_stream): memory holds
    a block of rows, whatever the size of a sheet."""

    def __init__(self, path: Path):
        from services.ingest.md.xlsx_stream import StreamedWorkbook, XlsxError

        self.error = XlsxError
        try:
            self.book = StreamedWorkbook(path)
        except XlsxError as error:
            raise _cannot_open(path, error) from error
        self.names = self.book.worksheet_names()
        self.sheets: list = []
        self.total_bytes = self.book.worksheet_bytes()

    def sheet(self, name: str) -> _StreamSheet:
        try:
            sheet = self.book.sheet(name)
        except self.error as error:
            raise _cannot_read(name, error) from error
        self.sheets.append(sheet)
        return _StreamSheet(sheet, self.error)

    def expected_rows(self, done: int) -> int:
        # The rows still to come, in proportion to the bytes still to read.
        consumed = sum(sheet.consumed for sheet in self.sheets)
        if not consumed:
            return done
        return max(done, int(done * self.total_bytes / consumed))

    def close(self) -> None:
        self.book.close()


class _StreamSheet:
    def __init__(self, sheet, error):
        self.sheet = sheet
        self.error = error

    @property
    def height(self) -> int:
        return self.sheet.height

    @property
    def width(self) -> int:
        return self.sheet.width

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        try:
            for first, rows in self.sheet.blocks():
                for index, raw in enumerate(rows, first):
                    yield index, _texts(raw)
        except self.error as error:
            raise _cannot_read(self.sheet.name, error) from error


def _texts(values: list) -> list[str]:
    """A row's values as `cell_text`s (the list itself when all are text)."""
    # Most rows are all text: checking that in C costs a fraction of
    # converting them one by one.
    if all(map(isinstance, values, repeat(str))):
        return values
    return [value if type(value) is str else cell_text(value) for value in values]


def _open_book(path: Path, reader: str | None):
    """The workbook, with the reader `reader` names (READERS; by default
    READER_VARIABLE's, else the stream) for an .xlsx/.xlsm file and
    python-calamine for an .xls file."""
    reader = reader or os.environ.get(READER_VARIABLE) or READERS[0]
    if reader not in READERS:
        raise ValueError(f"{READER_VARIABLE}: no reader {reader!r} (one of {READERS})")
    if Path(path).suffix.lower() in (".xlsx", ".xlsm") and reader == "stream":
        return _StreamBook(path)
    return _CalamineBook(path)


def workbook_batches(path: Path, progress: Callable[[int, int], None] = lambda d, t: None,
                     batch_rows: int = BATCH_ROWS, reader: str | None = None
                     ) -> Iterator[tuple[int, list[list[str]]]]:
    """Yield (number of the first row, rows) for the whole workbook, each row
    a list of cell texts (`cell_text`) without its trailing empty cells.

    The first row yielded is the first sheet's header row (row 0). An
    .xlsx/.xlsm sheet is read as a stream (`_StreamBook`; `reader` or
    READER_VARIABLE may ask for python-calamine instead), an .xls sheet by
    python-calamine, one sheet at a time (it parses an .xls file whole when
    opening it, but an .xls sheet holds at most 65,536 rows). Empty sheets
    and rows whose cells are all blank are skipped; a later sheet that
    starts with the header row has that row skipped, and a later sheet of
    another width fails the import (once its last row is read when its
    first row is not a header, since that is when a stream knows the width).

    `progress(done, total)` counts rows of the sheets (blank ones included,
    up to each sheet's last row with a value): `total` is an estimate until
    the last report, which is (total, total).
    """
    book = _open_book(path, reader)
    try:
        names = book.names
        header_key: list[str] | None = None
        width = 0
        number = 0            # the number the next row kept gets
        batch: list[list[str]] = []
        batch_first = 0
        rows_done = 0         # rows of the sheets finished so far
        for name in names:
            sheet = book.sheet(name)
            first_row = True
            check_width = False
            seen = 0
            for index, row in sheet.rows():
                seen = index + 1
                while row and not row[-1]:
                    row.pop()
                if not row or not "".join(row).strip():
                    continue
                if header_key is None:
                    # The workbook's header row: row 0.
                    header_key = _header_key(row)
                    width = len(header_key)
                    first_row = False
                elif first_row:
                    first_row = False
                    key = _header_key(row)
                    if key == header_key:
                        continue
                    if _looks_like_header(key, header_key):
                        if len(key) == width:
                            raise ImportFailed(
                                PHASE, f"sheet {name!r} starts with a header row that is "
                                       f"not the first sheet's ({', '.join(key)}); every "
                                       f"sheet must have the first sheet's columns")
                        raise _other_width(name, len(key), width)
                    check_width = True
                batch.append(row)
                number += 1
                if len(batch) >= batch_rows:
                    yield batch_first, batch
                    batch_first, batch = number, []
                    progress(rows_done + seen, book.expected_rows(rows_done + seen))
            if check_width and sheet.width != width:
                raise _other_width(name, sheet.width, width)
            if sheet.height:
                rows_done += sheet.height
                progress(rows_done, book.expected_rows(rows_done))
        if batch:
            yield batch_first, batch
        progress(rows_done, rows_done)
    finally:
        book.close()


def _other_width(name: str, count: int, width: int) -> ImportFailed:
    return ImportFailed(PHASE, f"sheet {name!r} has {count} columns where the first sheet "
                               f"has {width}; every sheet must have the first sheet's "
                               f"columns")


def _looks_like_header(key: list[str], header_key: list[str]) -> bool:
    """Whether a later sheet's first row is a header of its own: most of
    its cells are names of the first sheet's columns."""
    names = set(header_key) - {""}
    cells = [cell for cell in key if cell]
    return bool(cells) and sum(cell in names for cell in cells) * 2 > len(cells)


# -- the rules ------------------------------------------------------------------

_DATE = re.compile(
    r"\s*(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})"
    # A date cell that also holds a time of day reads "M/D/YYYY H:MM".
    r"(?:\s+\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AaPp]\.?[Mm]\.?)?)?\s*$", re.ASCII)
_TIME = re.compile(
    r"\s*(?:\d{1,2}/\d{1,2}/\d{2,4}\s+)?(\d{1,2}):(\d{2})(?::(\d{2}))?"
    r"\s*(?:([AaPp])\.?[Mm]\.?)?\s*$", re.ASCII)
_STEM = re.compile(r"\s*(\d+)(?:\s*-\s*(\d+))?", re.ASCII)

RACES = {"WHITE": "W", "W": "W", "W.": "W", "BLACK": "B", "BLK": "B", "HISPANIC": "H",
         "ASIAN": "A", "NATIVE AMERICAN": "I"}
GENDERS = {"M": "M", "MALE": "M", "F": "F", "FEMALE": "F", "W": "F"}
SEIZED_PREFIXES = ("CONTRABAND", "PARAPHERNALIA")


def parse_stop_date(text: str) -> tuple[int, int, int] | None:
    """(year, month, day) of an M/D/YY or M/D/YYYY date (YY is 20YY), or None."""
    match = _DATE.match(text)
    if match is None:
        return None
    month, day, year_text = match.groups()
    year = int(year_text) + (2000 if len(year_text) == 2 else 0)
    try:
        date(year, int(month), int(day))
    except ValueError:
        return None
    return year, int(month), int(day)


def parse_birth_date(text: str) -> tuple[int, int, int, bool] | None:
    """(year, month, day, two-digit year) of a DOB, or None. A two-digit
    year's century is chosen against the stop date (`age_at`)."""
    match = _DATE.match(text)
    if match is None:
        return None
    month, day, year_text = match.groups()
    short = len(year_text) == 2
    year = int(year_text)
    try:
        # 2000 is a leap year: 2/29/YY stays possible for any century.
        date(2000 + year if short else year, int(month), int(day))
    except ValueError:
        return None
    return year, int(month), int(day), short


def age_at(birth: tuple[int, int, int, bool] | None, year: int, month: int, day: int) -> int:
    """Whole years from the birth date to the stop date; 0 when the birth
    date is unknown or after the stop. A two-digit birth year takes the
    century that puts it in or before the stop's year."""
    if birth is None:
        return 0
    birth_year, birth_month, birth_day, short = birth
    if short:
        birth_year += year // 100 * 100
        if birth_year > year:
            birth_year -= 100
    age = year - birth_year - ((month, day) < (birth_month, birth_day))
    return age if age > 0 else 0


def parse_time(text: str) -> str:
    """HH:MM:SS of a time of stop: H:MM or HH:MM (seconds allowed), with an
    optional AM/PM (12 AM is hour 0, 12 PM hour 12; an hour over 12 keeps
    its 24-hour meaning). Anything else, or an hour over 23 or a minute over
    59, is 00:00:00."""
    match = _TIME.match(text)
    if match is None:
        return "00:00:00"
    hour, minute = int(match[1]), int(match[2])
    second = int(match[3]) if match[3] else 0
    if hour > 23 or minute > 59 or second > 59:
        return "00:00:00"
    half = match[4]
    if half is not None:
        if half in "Pp" and 1 <= hour <= 11:
            hour += 12
        elif half in "Aa" and hour == 12:
            hour = 0
    return f"{hour:02d}:{minute:02d}:{second:02d}"


def race_code(text: str) -> str:
    return RACES.get(text.strip().upper(), "U")


def gender_code(text: str) -> str:
    return GENDERS.get(text.strip().upper(), "U")


def searched_flag(text: str) -> str:
    return "t" if text.strip()[:1] in ("Y", "y") else "f"


def seized_flag(text: str) -> str:
    value = text.strip().upper()
    return "t" if value.startswith(SEIZED_PREFIXES) or value == "BOTH" else "f"


def reason_stem(text: str) -> str:
    """A citation's title-section stem: `21-801.1(b)` -> `21-801`, `64*` ->
    `64`; "" when it does not start with a number."""
    match = _STEM.match(text)
    if match is None:
        return ""
    title, section = match.groups()
    return f"{title}-{section}" if section is not None else title


def purpose_codes(stop_reasons: dict[str, str]) -> dict[str, int | str]:
    """stem -> MD_PURPOSES code, or -> the dropped purpose's label."""
    labels: dict[str, int | str] = {label.casefold(): code for code, label in MD_PURPOSES.items()}
    labels.update((label.casefold(), label) for label in MD_DROPPED_PURPOSES)
    codes: dict[str, int | str] = {}
    for stem, label in stop_reasons.items():
        code = labels.get(str(label).strip().casefold())
        if code is None:
            raise ImportFailed("load", f"the stop reason mapping sends {stem!r} to {label!r}, "
                                       f"which is not a Maryland purpose")
        codes[str(stem).strip()] = code
    return codes


# -- the parse ---------------------------------------------------------------------


class MdRows:
    """The parse of one workbook: counters and the rejects file."""

    def __init__(self, rejects: Rejects, agency_id_for, stop_reasons: dict[str, str]):
        self.rejects = rejects
        self.agency_id_for = agency_id_for
        self.purposes = purpose_codes(stop_reasons)
        self.other_code = next(code for code, label in MD_PURPOSES.items()
                               if label == OTHER_UNKNOWN)
        self.lines: Counter = Counter()
        self.loaded: Counter = Counter()
        self.dropped: Counter = Counter()

    def rows_for(self, file_name: str):
        return {WORKBOOK: self.stop_rows}[file_name]

    @staticmethod
    def columns(header: list[str]) -> dict[str, int]:
        """Column name -> index, for the header row; fails naming the
        required columns it lacks."""
        index: dict[str, int] = {}
        for position, name in enumerate(header):
            index.setdefault(str(name).strip().upper(), position)
        missing = [name for name in REQUIRED_COLUMNS if name not in index]
        if missing:
            found = ", ".join(name for name in index if name) or "nothing"
            if len(found) > 300:
                found = found[:300] + "..."
            raise ImportFailed(PHASE, f"the workbook's header row (the first row of its first "
                                      f"sheet) has no {', '.join(missing)} column"
                                      f"{'s' if len(missing) > 1 else ''}; it holds {found}")
        return index

    def _reason(self, text: str) -> tuple[int | None, str | None, str]:
        """(purpose code or None, dropped counter or None, COPY text) of a STOP_REASON."""
        code = self.purposes.get(reason_stem(text), self.other_code)
        cleaned = text.strip()
        shown = copy_text(cleaned) if cleaned else NULL
        if isinstance(code, str):
            return None, f"stop reason {code}", shown
        return code, None, shown

    def stop_rows(self, batches: Iterable[tuple[int, list[list[str]]]]) -> Iterator[str]:
        """The COPY text of the workbook's stops. The header row is read and
        checked here, before the first chunk is asked for, so a workbook
        without the needed columns fails before COPY starts."""
        batches = iter(batches)
        batch = next(batches, None)
        while batch is not None and not batch[1]:
            batch = next(batches, None)
        if batch is None:
            raise ImportFailed(PHASE, "the workbook holds no rows; its first sheet must "
                                      "start with a header row")
        first, rows = batch
        index = self.columns(rows[0])
        return self._stop_rows(chain([(first + 1, rows[1:])], batches), index)

    def _stop_rows(self, batches, index: dict[str, int]) -> Iterator[str]:
        file_name = WORKBOOK
        rejects_add = self.rejects.add
        dropped = self.dropped
        agency_id_for = self.agency_id_for
        first_year = MD_FIRST_YEAR
        miss = object()
        stop_dates: dict[str, tuple | None] = {}
        birth_dates: dict[str, tuple | None] = {}
        times: dict[str, str] = {}
        agency_codes: dict[str, str] = {}
        agency_ids: dict[str, str] = {}
        reasons: dict[str, tuple] = {}
        races: dict[str, str] = {}
        genders: dict[str, str] = {}
        searches: dict[str, str] = {}
        seizures: dict[str, str] = {}
        officers: dict[str, str] = {}
        need = max(index[name] for name in REQUIRED_COLUMNS) + 1
        (i_date, i_time, i_reason, i_search, i_seized, i_gender, i_dob, i_race, i_officer,
         i_agency) = (index[name] for name in REQUIRED_COLUMNS)
        lines = loaded = 0
        for first, rows in batches:
            out: list[str] = []
            append = out.append
            for row_no, row in enumerate(rows, first):
                lines += 1
                if len(row) < need:
                    row = row + [""] * (need - len(row))
                text = row[i_date]
                stop = stop_dates.get(text, miss)
                if stop is miss:
                    parsed = parse_stop_date(text)
                    stop = stop_dates[text] = None if parsed is None else (
                        parsed, f"{parsed[0]:04d}-{parsed[1]:02d}-{parsed[2]:02d}")
                if stop is None:
                    reason = (f"STOPDATE {text!r} is not a date (M/D/YY or M/D/YYYY)"
                              if text.strip() else "STOPDATE is empty")
                    rejects_add(file_name, row_no, reason, "\t".join(row))
                    continue
                text = row[i_agency]
                agency = agency_codes.get(text)
                if agency is None:
                    agency = agency_codes[text] = text.strip()
                if not agency:
                    rejects_add(file_name, row_no, "AGENCY is empty", "\t".join(row))
                    continue
                (year, month, day), day_text = stop
                if year < first_year:
                    dropped["stops before 2013"] += 1
                    continue
                text = row[i_reason]
                purpose = reasons.get(text)
                if purpose is None:
                    purpose = reasons[text] = self._reason(text)
                if purpose[1] is not None:
                    dropped[purpose[1]] += 1
                    continue
                agency_id = agency_ids.get(agency)
                if agency_id is None:
                    agency_id = agency_ids[agency] = str(agency_id_for(agency))
                text = row[i_time]
                clock = times.get(text)
                if clock is None:
                    clock = times[text] = parse_time(text)
                text = row[i_race]
                race = races.get(text)
                if race is None:
                    race = races[text] = race_code(text)
                text = row[i_gender]
                gender = genders.get(text)
                if gender is None:
                    gender = genders[text] = gender_code(text)
                text = row[i_search]
                searched = searches.get(text)
                if searched is None:
                    searched = searches[text] = searched_flag(text)
                text = row[i_seized]
                seized = seizures.get(text)
                if seized is None:
                    seized = seizures[text] = seized_flag(text)
                text = row[i_dob]
                birth = birth_dates.get(text, miss)
                if birth is miss:
                    birth = birth_dates[text] = parse_birth_date(text)
                age = 0 if birth is None else age_at(birth, year, month, day)
                text = row[i_officer]
                officer = officers.get(text)
                if officer is None:
                    cleaned = text.strip()
                    officer = officers[text] = copy_text(cleaned) if cleaned else NULL
                loaded += 1
                append(f"{row_no}\t{agency_id}\t{day_text} {clock}\t{purpose[0]}\t{race}"
                       f"\t{gender}\t{age}\t{searched}\t{seized}\t{officer}\t{purpose[2]}")
            self.lines[file_name] = lines
            self.loaded[file_name] = loaded
            if out:
                out.append("")
                yield "\n".join(out)
