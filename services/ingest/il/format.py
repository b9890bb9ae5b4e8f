"""Illinois' one CSV file and the rules that turn its lines into stop rows.

The release holds one CSV with a header row naming (in any order and case,
among other columns, which are ignored) agencycode, agencyname, Gender,
Race, Search, Contraband, StopPurpose and year: one line per stop. Each data
line becomes one `stop` row:

    stop_id     the line's number among the data lines: 1 for the line after
                the header. A rejected or blank line leaves its number
                unused, so a stop always points back at its line
                (line number = stop_id + header line number).
    agency_id   agencies.id_for(agencycode, trimmed). The code is the
                agency's name until an operator's mapping renames it;
                agencyname is ignored. An empty code rejects the line.
    year        four digits, 1990..2100; anything else rejects the line.
    purpose     StopPurpose: Moving Violation 1, Equipment 2, Registration 3,
                anything else (empty, Other, a typo) 4 Unknown.
    race        W, B, H, A, I stay; O, U and anything else (empty, a word)
                become U (Other/Unknown).
    gender      M or Male -> M, F or Female -> F, anything else -> U.
    searched,   Y or Yes -> Y, N or No -> N, empty -> U (unknown); anything
    contraband  else rejects the line, naming the column.

Every value is trimmed and compared without regard to case (see
DATA-FORMATS.md, "Illinois (il)"). A line whose number of fields differs
from the header's is rejected; so is a line with an unbalanced quote, which
is how a quoted value spanning lines shows: such values are not supported
(their first and last lines are rejected, lines in between nearly always
fail the field count). Blank lines, and lines of nothing but commas, are
skipped and not counted. Counters: `lines` counts the other data lines
(the header is not one), `loaded` the rows sent to COPY; nothing is
dropped silently, so `dropped` stays empty.

Speed: the release has millions of lines. Lines without a quote are split
with str.split, lines with quoted values by hand (_quoted_split); only
unusual quoting (doubled quotes, a space before a quote) goes through the
csv module. Each column's raw spellings are looked up in a cache of what
they normalize to, so a typical line costs one split and seven dict
lookups; a spelling not seen yet, or one that breaks a rule, takes the slow
path, which applies the rules one by one, names the first one broken and
fills the caches. No raw text reaches the COPY rows (only ids, numbers and
one-letter codes), so nothing needs COPY escaping.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Iterator
from operator import itemgetter

from services.ingest.errors import ImportFailed
from services.ingest.rejects import Rejects

CSV_FILE = "stops.csv"
FILES = (CSV_FILE,)

# The header names the rules need, as the state spells them.
COLUMNS = ("agencycode", "agencyname", "Gender", "Race", "Search", "Contraband",
           "StopPurpose", "year")
# Of those, the ones a row is built from, in this order.
USED_COLUMNS = ("agencycode", "Gender", "Race", "Search", "Contraband", "StopPurpose", "year")

PURPOSE_CODES = {"moving violation": "1", "equipment": "2", "registration": "3"}
UNKNOWN_PURPOSE = "4"
RACES = {"w": "W", "b": "B", "h": "H", "a": "A", "i": "I"}
GENDERS = {"m": "M", "male": "M", "f": "F", "female": "F"}
YES_NO = {"y": "Y", "yes": "Y", "n": "N", "no": "N", "": "U"}
UNKNOWN = "U"
FIRST_YEAR, LAST_YEAR = 1990, 2100

# A cache holds at most this many raw spellings per column; a file with more
# (garbage in a free-text column) still loads, its extra spellings via the
# slow path.
CACHE_LIMIT = 50_000


def _purpose(value: str) -> str:
    return PURPOSE_CODES.get(" ".join(value.lower().split()), UNKNOWN_PURPOSE)


def _race(value: str) -> str:
    return RACES.get(value.strip().lower(), UNKNOWN)


def _gender(value: str) -> str:
    return GENDERS.get(value.strip().lower(), UNKNOWN)


def _yes_no(value: str) -> str | None:
    return YES_NO.get(value.strip().lower())


def _year(value: str) -> str | None:
    value = value.strip()
    if len(value) == 4 and value.isascii() and value.isdigit() \
            and FIRST_YEAR <= int(value) <= LAST_YEAR:
        return value
    return None


def _quoted_split(line: str) -> list[str] | None:
    """The fields of a line holding quotes, or None when its quotes do not
    balance (a value spanning lines, a stray quote).

    The common case, values wholly enclosed in quotes with no quote inside
    (a name with a comma), is split by hand, several times faster than the
    csv module; anything else (doubled quotes, a space before a quote, a
    quote inside an unquoted value) goes to the csv module.
    """
    segments = line.split('"')
    count = len(segments)
    if not count % 2:
        return None
    if count == 3:  # one quoted value, the usual case
        head, inside, tail = segments
        fields = head.split(",")
        if not fields[-1] and (not tail or tail[0] == ","):
            fields[-1] = inside
            if tail:
                fields += tail[1:].split(",")
            return fields
    else:
        fields = segments[0].split(",")
        last = count - 1
        for index in range(1, count, 2):
            inside, after = segments[index], segments[index + 1]
            if fields[-1] or (after[:1] != "," if after else index + 1 != last):
                break
            fields[-1] = inside
            if after:
                fields += after[1:].split(",")
        else:
            return fields
    try:
        return next(csv.reader([line], strict=True, skipinitialspace=True))
    except csv.Error:
        return None


def header_positions(line: str) -> tuple[int, dict[str, int]]:
    """(number of fields, {column in COLUMNS: its index}) from the header
    line; raises ImportFailed naming the missing columns."""
    line = line.lstrip("\ufeff")  # a byte order mark, read as UTF-8
    fields = _quoted_split(line) if '"' in line else line.split(",")
    if fields is None:
        raise ImportFailed(f"load {CSV_FILE}",
                           f"{CSV_FILE}: the header row has an unbalanced quote: {line[:200]!r}")
    names = [field.strip().lower() for field in fields]
    positions: dict[str, int] = {}
    for wanted in COLUMNS:
        found = [index for index, name in enumerate(names) if name == wanted.lower()]
        if len(found) > 1:
            raise ImportFailed(f"load {CSV_FILE}",
                               f"{CSV_FILE} has the column {wanted} more than once")
        if found:
            positions[wanted] = found[0]
    missing = [name for name in COLUMNS if name not in positions]
    if missing:
        raise ImportFailed(
            f"load {CSV_FILE}",
            f"{CSV_FILE} has no column(s) {', '.join(missing)} (its header row names "
            f"{', '.join(field.strip() for field in fields) or 'nothing'}; an Illinois "
            f"release needs {', '.join(COLUMNS)})")
    return len(fields), positions


class IlRows:
    """The parse of one Illinois release: counters, caches and the rejects file."""

    def __init__(self, rejects: Rejects, agency_id_for):
        self.rejects = rejects
        self.agency_id_for = agency_id_for
        self.lines: Counter = Counter()
        self.loaded: Counter = Counter()
        self.dropped: Counter = Counter()
        # Raw spelling (untrimmed, any case) -> its COPY value, per column.
        self._agencies: dict[str, str] = {}
        self._genders: dict[str, str] = {}
        self._races: dict[str, str] = {}
        self._searched: dict[str, str] = {}
        self._contraband: dict[str, str] = {}
        self._purposes: dict[str, str] = {}
        self._years: dict[str, str] = {}

    def rows_for(self, file_name: str):
        return {CSV_FILE: self.stop_rows}[file_name]

    # -- the header ----------------------------------------------------------

    @staticmethod
    def _after_header(batches: Iterable[tuple[int, list[str]]]):
        """(header line number, header line, the data batches). The header
        is the first line that is not blank."""
        batches = iter(batches)
        for first, lines in batches:
            for offset, line in enumerate(lines):
                if line.strip():
                    rest = lines[offset + 1:]

                    def data(first=first + offset + 1, rest=rest):
                        if rest:
                            yield first, rest
                        yield from batches

                    return first + offset, line, data()
        raise ImportFailed(f"load {CSV_FILE}",
                           f"{CSV_FILE} is empty: it has no header row (an Illinois "
                           f"release needs {', '.join(COLUMNS)})")

    # -- the rows ------------------------------------------------------------

    def stop_rows(self, batches: Iterable[tuple[int, list[str]]]) -> Iterator[str]:
        """COPY text for the stops. The header is read and checked here, at
        once, not when the rows are first asked for: an ImportFailed raised
        while COPY reads the rows reaches the pipeline wrapped by psycopg2
        (QueryCanceled, "error in .read() call"), not as itself."""
        header_no, header, data = self._after_header(batches)
        width, positions = header_positions(header)
        return self._stop_rows(data, header_no, width,
                               itemgetter(*(positions[name] for name in USED_COLUMNS)))

    def _stop_rows(self, batches, header_no: int, width: int, pick) -> Iterator[str]:
        agencies, genders, races = self._agencies, self._genders, self._races
        searched_codes, contraband_codes = self._searched, self._contraband
        purposes, years = self._purposes, self._years
        slow = self._slow_row
        lines_read = loaded = 0
        for first, lines in batches:
            out = []
            append = out.append
            stop_id = first - header_no - 1
            for line in lines:
                stop_id += 1
                parts = line.split(",") if '"' not in line else _quoted_split(line)
                if parts is not None and len(parts) == width:
                    agency, gender, race, searched, contraband, purpose, year = pick(parts)
                    try:
                        append(f"{stop_id}\t{agencies[agency]}\t{years[year]}"
                               f"\t{purposes[purpose]}\t{races[race]}\t{genders[gender]}"
                               f"\t{searched_codes[searched]}\t{contraband_codes[contraband]}")
                        lines_read += 1
                        continue
                    except KeyError:
                        pass
                row = slow(stop_id, header_no + stop_id, line, parts, width, pick)
                if row is not False:
                    lines_read += 1
                    if row is not None:
                        append(row)
            loaded += len(out)
            self.lines[CSV_FILE] = lines_read
            self.loaded[CSV_FILE] = loaded
            if out:
                out.append("")
                yield "\n".join(out)

    def _reject(self, line_no: int, line: str, reason: str) -> None:
        self.rejects.add(CSV_FILE, line_no, reason, line)

    def _slow_row(self, stop_id: int, line_no: int, line: str, parts, width: int, pick
                  ) -> str | None | bool:
        """The full rules for one line: its COPY row, None when it is rejected,
        False when it is blank (nothing, or only commas: spreadsheets write
        those), which is skipped without a word."""
        if not line.replace(",", "").strip():
            return False
        if parts is None:
            self._reject(line_no, line, "unbalanced quotes: a quoted value is not closed "
                                        "on this line (values spanning lines are not "
                                        "supported)")
            return None
        if len(parts) != width:
            self._reject(line_no, line, f"expected {width} comma-separated fields (as in "
                                        f"the header), found {len(parts)}")
            return None
        agency, gender, race, searched, contraband, purpose, year = pick(parts)
        code = agency.strip()
        year_value = _year(year)
        searched_value = _yes_no(searched)
        contraband_value = _yes_no(contraband)
        problem = None
        if not code:
            problem = "agencycode is empty"
        elif year_value is None:
            problem = (f"year {year.strip()!r} is not a year "
                       f"(four digits, {FIRST_YEAR}-{LAST_YEAR})")
        elif searched_value is None:
            problem = f"Search {searched.strip()!r} is not Y, N, Yes, No or empty"
        elif contraband_value is None:
            problem = f"Contraband {contraband.strip()!r} is not Y, N, Yes, No or empty"
        if problem:
            self._reject(line_no, line, problem)
            return None
        filled = (
            (self._agencies, agency, str(self.agency_id_for(code))),
            (self._years, year, year_value),
            (self._purposes, purpose, _purpose(purpose)),
            (self._races, race, _race(race)),
            (self._genders, gender, _gender(gender)),
            (self._searched, searched, searched_value),
            (self._contraband, contraband, contraband_value),
        )
        for cache, raw, value in filled:
            if len(cache) < CACHE_LIMIT:
                cache[raw] = value
        return "\t".join((str(stop_id), *(value for _, _, value in filled)))
