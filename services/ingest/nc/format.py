"""North Carolina's raw files and the rules that turn their lines into rows.

Each `*_rows` method reads line batches of one file (services.ingest.rawfile)
and yields COPY text for the matching staging table. A line that breaks a
rule goes to the rejects file with its reason; the rows that hang off a stop
the rules drop (before 2002, outside the requested stop id range) follow it
silently and are counted in `dropped`. See DATA-FORMATS.md.

The loops are written for speed: the release has tens of millions of lines
and each costs a few microseconds here.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import date

from services.ingest.idset import BITMAP_LIMIT, IdSet
from services.ingest.rawfile import copy_text
from services.ingest.rejects import Rejects
from shared.states import (
    NC_ACTIONS,
    NC_FIRST_DAY,
    NC_PURPOSES,
    NC_SEARCH_BASES,
    NC_SEARCH_TYPES,
    NC_STATE_HIGHWAY_PATROL,
)

STOP_FILE = "Stop.txt"
PERSON_FILE = "PERSON.txt"
SEARCH_FILE = "Search.txt"
CONTRABAND_FILE = "Contraband.txt"
SEARCH_BASIS_FILE = "SearchBasis.txt"
# In load order: each file's rows refer only to rows of files before it.
FILES = (STOP_FILE, PERSON_FILE, SEARCH_FILE, CONTRABAND_FILE, SEARCH_BASIS_FILE)

STOP_COLUMNS = ("StopID", "AgencyDescription", "StopDate", "Purpose", "Action",
                "DriverArrest", "PassengerArrest", "EncounterForce", "EngageForce",
                "OfficerInjury", "DriverInjury", "PassengerInjury", "OfficerId",
                "StopLocation", "StopCity")
SEARCH_FLAGS = ("VehicleSearch", "DriverSearch", "PassengerSearch", "PropertySearch",
                "VehicleSeized", "PersonalPropertySeized", "OtherPropertySeized")
AMOUNTS = ("Ounces", "Pounds", "Pints", "Gallons", "Dosages", "Grams", "Kilos", "Money",
           "Weapons", "DollarAmt")

PURPOSE_CODES = frozenset(str(code) for code in NC_PURPOSES)
ACTION_CODES = frozenset(str(code) for code in NC_ACTIONS)
SEARCH_TYPE_CODES = frozenset(str(code) for code in NC_SEARCH_TYPES)
BASIS_CODES = frozenset(NC_SEARCH_BASES)
FLAG_VALUES = frozenset(("0", "1", ""))
RACES = frozenset("ABIUW")
ETHNICITIES = frozenset("HN")
GENDERS = frozenset(("M", "F", ""))
PERSON_TYPES = frozenset("DP")
MAX_ID = (1 << 63) - 1
NULL = "\\N"

DATE_TIME = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]) (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    r"(?:\.\d{1,6})?$")
DATE_TIME_PADDED = re.compile(DATE_TIME.pattern[:-1] + " *$")
AMOUNT = re.compile(r"-?(?:\d+\.?\d*|\.\d+)$")


def split(line: str) -> list[str]:
    """A line's fields; quoted fields (rare) go through the csv module."""
    if '"' in line:
        return next(csv.reader([line], delimiter="\t", quotechar='"', skipinitialspace=True))
    return line.split("\t")


def is_number(value: str) -> bool:
    """Only 0-9: str.isdigit alone takes superscripts and other scripts' digits."""
    return value.isascii() and value.isdigit()


def _stop_codes(values: list[str]) -> str | None:
    """Purpose, Action and the seven yes/no columns as COPY text, or None
    when one of them breaks its rule."""
    purpose, action, *flags = (value.strip() for value in values)
    if (purpose not in PURPOSE_CODES or action not in ACTION_CODES
            or not FLAG_VALUES.issuperset(flags)):
        return None
    return "\t".join((purpose, action, *(flag or NULL for flag in flags)))


def _person_codes(values: list[str]) -> str | None:
    """Type, Age, Gender, Ethnicity and Race as COPY text, or None."""
    kind, age, gender, ethnicity, race = (value.strip() for value in values)
    if (kind not in PERSON_TYPES or (age and not (is_number(age) and len(age) <= 3))
            or gender not in GENDERS
            or ethnicity not in ETHNICITIES or race not in RACES):
        return None
    return f"{kind}\t{age or NULL}\t{gender or NULL}\t{ethnicity}\t{race}"


def _person_value_problem(kind: str, age: str, gender: str, ethnicity: str, race: str
                          ) -> str | None:
    if kind not in PERSON_TYPES:
        return f"Type {kind!r} is not D (driver) or P (passenger)"
    if age and not (is_number(age) and len(age) <= 3):
        return f"Age {age!r} is not a number"
    if gender not in GENDERS:
        return f"Gender {gender!r} is not M or F"
    if ethnicity not in ETHNICITIES:
        return f"Ethnicity {ethnicity!r} is not H or N"
    if race not in RACES:
        return f"Race {race!r} is not one of A, B, I, U, W"
    return None


def is_real_day(day: str, cache: dict[str, bool]) -> bool:
    valid = cache.get(day)
    if valid is None:
        try:
            date(int(day[:4]), int(day[5:7]), int(day[8:10]))
            valid = True
        except ValueError:
            valid = False
        cache[day] = valid
    return valid


class NcRows:
    """The parse of one release: id sets, counters and the rejects file."""

    def __init__(self, rejects: Rejects, agency_id_for, min_stop_id=None, max_stop_id=None):
        self.rejects = rejects
        self.agency_id_for = agency_id_for
        self.min_stop_id = min_stop_id
        self.max_stop_id = max_stop_id
        self.stops = IdSet()
        self.rejected_stops = IdSet()
        self.dropped_stops = IdSet()
        self.persons = IdSet()
        # Persons refused for a rule of their own after their id was found
        # not to repeat: a piece of the file parsed elsewhere looked that id
        # up too (services/ingest/nc/piece_merge.py).
        self.persons_refused = IdSet()
        self.searches = IdSet()
        self.lines: Counter = Counter()
        self.loaded: Counter = Counter()
        self.dropped: Counter = Counter()
        self._days: dict[str, bool] = {}

    # -- helpers -----------------------------------------------------------

    def _reject(self, file_name: str, line_no: int, line: str, reason: str) -> None:
        self.rejects.add(file_name, line_no, reason, line)

    def _outside_range(self, stop_id: int) -> bool:
        return ((self.min_stop_id is not None and stop_id < self.min_stop_id)
                or (self.max_stop_id is not None and stop_id > self.max_stop_id))

    def _stop_problem(self, stop_id: int) -> str | None:
        """Why a row of another file cannot hang off `stop_id`, or None when it can.
        Returns "" when the row silently follows a dropped stop."""
        if stop_id in self.stops:
            return None
        if stop_id in self.dropped_stops or self._outside_range(stop_id):
            return ""
        if stop_id in self.rejected_stops:
            return f"its stop {stop_id} was rejected"
        return f"StopID {stop_id} is not in {STOP_FILE}"

    def _ids(self, file_name, line_no, line, fields, names) -> list[int] | None:
        ids = []
        for value, name in zip(fields, names, strict=False):
            if not is_number(value) or int(value) > MAX_ID:
                self._reject(file_name, line_no, line, f"{name} {value!r} is not an id number")
                return None
            ids.append(int(value))
        return ids

    def _fields(self, file_name, line_no, line, count) -> list[str] | None:
        parts = split(line)
        if len(parts) < count:
            if line.strip():
                self._reject(file_name, line_no, line,
                             f"expected {count} tab-separated columns, found {len(parts)}")
            return None
        return [part.strip() for part in parts[:count]]

    # -- Stop.txt ------------------------------------------------------------
    #
    # The two big files have a fast path: values go to COPY still padded where
    # PostgreSQL's own input functions skip the spaces (numbers, dates,
    # booleans), and the code columns are checked as one string against a
    # cache of the few combinations a release holds. Any line the fast path
    # does not accept goes through the slow path, which applies every rule
    # one by one and names the first one broken.

    def stop_rows(self, batches: Iterable[tuple[int, list[str]]]) -> Iterator[str]:
        file_name = STOP_FILE
        stops = self.stops
        loaded_bits = stops.ensure(0)
        dropped_bits = self.dropped_stops.ensure(0)
        agency_ids: dict[str, str] = {}
        codes_cache: dict[str, str | None] = {}
        days = self._days
        date_match = DATE_TIME_PADDED.match
        min_id = self.min_stop_id if self.min_stop_id is not None else 0
        max_id = min(self.max_stop_id if self.max_stop_id is not None else MAX_ID,
                     BITMAP_LIMIT - 1)
        lines_read = 0
        for first, lines in batches:
            out = []
            append = out.append
            added = 0
            for line_no, line in enumerate(lines, first):
                parts = line.split("\t")
                if (len(parts) >= 15 and line.isascii() and '"' not in line
                        and "\\" not in line):
                    stop_text = parts[0].strip()
                    stop_id = int(stop_text) if stop_text.isdigit() else -1
                    when = parts[2]
                    codes = codes_cache.get(key := "\t".join(parts[3:12]), False)
                    if codes is False:
                        codes = codes_cache[key] = _stop_codes(parts[3:12])
                    if codes is not None and min_id <= stop_id <= max_id and date_match(when):
                        index, bit = stop_id >> 3, 1 << (stop_id & 7)
                        if index >= len(loaded_bits) or index >= len(dropped_bits):
                            stops.ensure(stop_id)
                            self.dropped_stops.ensure(stop_id)
                        day = when[:10]
                        if (not (loaded_bits[index] & bit or dropped_bits[index] & bit)
                                and (day[8:] < "29" or is_real_day(day, days))
                                and day >= NC_FIRST_DAY):
                            agency_id = agency_ids.get(parts[1])
                            if agency_id is None:
                                agency = parts[1].strip()
                                agency_id = str(self.agency_id_for(agency)) if agency else ""
                                agency_ids[parts[1]] = agency_id
                            if agency_id:
                                loaded_bits[index] |= bit
                                added += 1
                                officer = parts[12].strip() or NULL
                                append(f"{stop_id}\t{agency_id}\t{when}\t{codes}\t{officer}"
                                       f"\t{parts[13].strip()}\t{parts[14].strip()}")
                                lines_read += 1
                                continue
                stops.mark(added)
                added = 0
                row = self._stop_slow(line_no, line)
                if row is not False:
                    lines_read += 1
                    if row is not None:
                        append(row)
            stops.mark(added)
            self.lines[file_name] = lines_read
            self.loaded[file_name] = len(stops)
            if out:
                out.append("")
                yield "\n".join(out)

    def _stop_slow(self, line_no: int, line: str) -> str | None | bool:
        """The full rules for one stop line: its COPY row, None when it is
        rejected or dropped, False when it is blank."""
        file_name = STOP_FILE
        stops, dropped, rejected = self.stops, self.dropped_stops, self.rejected_stops
        fields = self._fields(file_name, line_no, line, 15)
        if fields is None:
            return None if line.strip() else False
        (stop_text, agency, when, purpose, action, *flags) = fields[:12]
        officer, county, city = fields[12:15]
        if not is_number(stop_text) or int(stop_text) > MAX_ID:
            self._reject(file_name, line_no, line, f"StopID {stop_text!r} is not an id number")
            return None
        stop_id = int(stop_text)
        if self._outside_range(stop_id):
            self.dropped["outside stop id range"] += 1
            return None
        problem = None
        if stop_id in stops or stop_id in dropped:
            problem = f"StopID {stop_id} appears more than once"
        elif not agency:
            problem = "AgencyDescription is empty"
        elif not DATE_TIME.match(when) or not is_real_day(when[:10], self._days):
            problem = f"StopDate {when!r} is not a date and time (YYYY-MM-DD HH:MM:SS)"
        elif purpose not in PURPOSE_CODES:
            problem = f"Purpose {purpose!r} is not a purpose code (1-10)"
        elif action not in ACTION_CODES:
            problem = f"Action {action!r} is not an action code (1-5)"
        elif not FLAG_VALUES.issuperset(flags):
            bad = next(i for i, flag in enumerate(flags) if flag not in FLAG_VALUES)
            problem = f"{STOP_COLUMNS[5 + bad]} {flags[bad]!r} is not 0 or 1"
        if problem:
            if stop_id not in stops:
                rejected.add(stop_id)
            self._reject(file_name, line_no, line, problem)
            return None
        if when < NC_FIRST_DAY and agency != NC_STATE_HIGHWAY_PATROL:
            dropped.add(stop_id)
            self.dropped["stops before 2002"] += 1
            return None
        stops.add(stop_id)
        officer, county, city = (copy_text(v) for v in (officer, county, city))
        return "\t".join((str(stop_id), str(self.agency_id_for(agency)), when,
                          _stop_codes([purpose, action, *flags]), officer or NULL, county,
                          city))

    # -- PERSON.txt ----------------------------------------------------------

    def person_rows(self, batches) -> Iterator[str]:
        file_name = PERSON_FILE
        persons, stops = self.persons, self.stops
        stop_bits = stops.ensure(0)
        person_bits = persons.ensure(0)
        stop_limit = len(stop_bits)
        codes_cache: dict[str, str | None] = {}
        lines_read = 0
        for first, lines in batches:
            out = []
            append = out.append
            added = 0
            for line_no, line in enumerate(lines, first):
                parts = line.split("\t")
                if len(parts) == 7 and line.isascii() and '"' not in line:
                    person_text, stop_text = parts[0].strip(), parts[1].strip()
                    if person_text.isdigit() and stop_text.isdigit():
                        person_id, stop_id = int(person_text), int(stop_text)
                    else:
                        person_id = stop_id = -1
                    codes = codes_cache.get(key := "\t".join(parts[2:7]), False)
                    if codes is False:
                        codes = codes_cache[key] = _person_codes(parts[2:7])
                    if (codes is not None and 0 <= stop_id and (stop_id >> 3) < stop_limit
                            and stop_bits[stop_id >> 3] & (1 << (stop_id & 7))
                            and 0 <= person_id < BITMAP_LIMIT):
                        index, bit = person_id >> 3, 1 << (person_id & 7)
                        if index >= len(person_bits):
                            persons.ensure(person_id)
                        if not person_bits[index] & bit:
                            person_bits[index] |= bit
                            added += 1
                            append(f"{person_id}\t{stop_id}\t{codes}")
                            lines_read += 1
                            continue
                persons.mark(added)
                added = 0
                row = self._person_slow(line_no, line)
                if row is not False:
                    lines_read += 1
                    if row is not None:
                        append(row)
            persons.mark(added)
            self.lines[file_name] = lines_read
            self.loaded[file_name] = len(persons)
            if out:
                out.append("")
                yield "\n".join(out)

    def _person_slow(self, line_no: int, line: str) -> str | None | bool:
        file_name = PERSON_FILE
        fields = self._fields(file_name, line_no, line, 7)
        if fields is None:
            return None if line.strip() else False
        person_text, stop_text, kind, age, gender, ethnicity, race = fields
        ids = self._ids(file_name, line_no, line, (person_text, stop_text),
                        ("PersonID", "StopID"))
        if ids is None:
            return None
        person_id, stop_id = ids
        problem = self._stop_problem(stop_id)
        if problem == "":
            self.dropped["persons of dropped stops"] += 1
            return None
        if problem is None:
            if person_id in self.persons:
                problem = f"PersonID {person_id} appears more than once"
            else:
                problem = _person_value_problem(kind, age, gender, ethnicity, race)
                if problem:
                    self.persons_refused.add(person_id)
        if problem:
            self._reject(file_name, line_no, line, problem)
            return None
        self.persons.add(person_id)
        return f"{person_id}\t{stop_id}\t{_person_codes([kind, age, gender, ethnicity, race])}"

    # -- Search.txt, Contraband.txt, SearchBasis.txt ----------------------------
    #
    # The smaller files share one loop: columns, id numbers, the stop the row
    # hangs off; each file's own rules return (problem, COPY row).

    def _rows_of(self, file_name: str, columns: int, id_names: tuple[str, ...], stop_at: int,
                 followers: str, batches, rules, loaded) -> Iterator[str]:
        for first, lines in batches:
            out = []
            for line_no, line in enumerate(lines, first):
                fields = self._fields(file_name, line_no, line, columns)
                if fields is None:
                    continue
                self.lines[file_name] += 1
                ids = self._ids(file_name, line_no, line, fields[:len(id_names)], id_names)
                if ids is None:
                    continue
                problem = self._stop_problem(ids[stop_at])
                if problem == "":
                    self.dropped[followers] += 1
                    continue
                row = None
                if problem is None:
                    problem, row = rules(ids, fields)
                if problem:
                    self._reject(file_name, line_no, line, problem)
                    continue
                out.append(row)
            self.loaded[file_name] = loaded()
            if out:
                out.append("")
                yield "\n".join(out)

    def _person_problem(self, person_id: int) -> str | None:
        if person_id in self.persons:
            return None
        return f"PersonID {person_id} is not in {PERSON_FILE}"

    def _search_problem(self, search_id: int) -> str | None:
        if search_id in self.searches:
            return None
        return f"SearchID {search_id} is not in {SEARCH_FILE}"

    def search_rows(self, batches) -> Iterator[str]:
        def rules(ids, fields):
            search_id, stop_id, person_id = ids
            search_type, flags = fields[3], fields[4:11]
            problem = self._person_problem(person_id)
            if problem is None:
                if search_id in self.searches:
                    problem = f"SearchID {search_id} appears more than once"
                elif search_type not in SEARCH_TYPE_CODES:
                    problem = f"Type {search_type!r} is not a search type code (1-5)"
                elif not FLAG_VALUES.issuperset(flags):
                    bad = next(i for i, flag in enumerate(flags) if flag not in FLAG_VALUES)
                    problem = f"{SEARCH_FLAGS[bad]} {flags[bad]!r} is not 0 or 1"
            if problem:
                return problem, None
            self.searches.add(search_id)
            return None, "\t".join((str(search_id), str(stop_id), str(person_id), search_type,
                                    *(flag or NULL for flag in flags)))

        return self._rows_of(SEARCH_FILE, 11, ("SearchID", "StopID", "PersonID"), 1,
                             "searches of dropped stops", batches, rules,
                             lambda: len(self.searches))

    def contraband_rows(self, batches) -> Iterator[str]:
        seen = IdSet()

        def rules(ids, fields):
            contraband_id, search_id, person_id, _ = ids
            amounts = fields[4:14]
            problem = self._search_problem(search_id) or self._person_problem(person_id)
            if problem is None:
                for value, name in zip(amounts, AMOUNTS, strict=True):
                    if value and not AMOUNT.match(value):
                        problem = f"{name} {value!r} is not a number"
                        break
                else:
                    if not seen.add(contraband_id):
                        problem = f"ContrabandID {contraband_id} appears more than once"
            if problem:
                return problem, None
            return None, "\t".join((*map(str, ids), *(value or NULL for value in amounts)))

        return self._rows_of(CONTRABAND_FILE, 14,
                             ("ContrabandID", "SearchID", "PersonID", "StopID"), 3,
                             "contraband of dropped stops", batches, rules, lambda: len(seen))

    def search_basis_rows(self, batches) -> Iterator[str]:
        seen = IdSet()

        def rules(ids, fields):
            basis_id, search_id, person_id, stop_id = ids
            basis = fields[4]
            problem = self._search_problem(search_id) or self._person_problem(person_id)
            if problem is None:
                if basis not in BASIS_CODES:
                    problem = f"Basis {basis!r} is not one of {', '.join(sorted(BASIS_CODES))}"
                elif not seen.add(basis_id):
                    problem = f"SearchBasisID {basis_id} appears more than once"
            if problem:
                return problem, None
            return None, f"{basis_id}\t{search_id}\t{person_id}\t{stop_id}\t{basis}"

        return self._rows_of(SEARCH_BASIS_FILE, 5,
                             ("SearchBasisID", "SearchID", "PersonID", "StopID"), 3,
                             "search bases of dropped stops", batches, rules,
                             lambda: len(seen))

    def rows_for(self, file_name: str):
        return {
            STOP_FILE: self.stop_rows,
            PERSON_FILE: self.person_rows,
            SEARCH_FILE: self.search_rows,
            CONTRABAND_FILE: self.contraband_rows,
            SEARCH_BASIS_FILE: self.search_basis_rows,
        }[file_name]
