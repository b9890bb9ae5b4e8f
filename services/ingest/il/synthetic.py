"""Synthetic Illinois releases in the state's raw format.

Tests, samples and benchmarks write their CSVs here, so the raw format (a
header row, comma separated, quoted where a value holds a comma or a quote)
is spelled out once. Agency codes and names are made up by this project.

    write_csv(folder / "stops.csv", generate_rows(1000))
    write_csv(path, [("00001", "Alder Police", "M", "W", "N", "", "Equipment", "2015")])
    write_csv(path, [{"year": "2015", "Race": "B", ...}], header=("year", "Race", ...))
    zip_release(folder / "stops.csv", folder / "IL_stops.zip")

`generate_rows` streams realistic dirty rows, fast enough to write millions
of them for a benchmark: races as O, U or in lower case, empty Search and
Contraband, purposes the rules do not know, agency names with commas.
"""

from __future__ import annotations

import random
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

IL_HEADER = ("agencycode", "agencyname", "Gender", "Race", "Search", "Contraband",
             "StopPurpose", "year")

SAMPLE_AGENCIES = (
    ("13001", "Illinois State Police, District 1"),
    ("13100", "Alder Police"),
    ("13101", "Birchwood Police"),
    ("13102", "Cedar County Sheriff"),
    ("13103", "Dogwood Police"),
    ("13104", "Elm Grove, Village of"),
    ("13105", "Fern Valley Police"),
    ("13106", "Granite Falls Police"),
    ("13107", "Hickory Ridge Police"),
    ("13108", "Ironwood, City of"),
    ("13109", "Juniper Police"),
    ("13110", "Kestrel Bay Police"),
)

# (spelling, weight): the clean spellings, and the dirt a real extract shows.
GENDER_SPELLINGS = (("M", 60), ("F", 34), ("Male", 2), ("female", 1), ("", 2), ("U", 1))
RACE_SPELLINGS = (("W", 55), ("B", 20), ("H", 12), ("A", 3), ("I", 1), ("O", 2), ("U", 2),
                  ("w", 2), ("b", 1), (" H", 1), ("", 1))
PURPOSE_SPELLINGS = (("Moving Violation", 62), ("Equipment", 16), ("Registration", 12),
                     ("moving violation", 2), ("EQUIPMENT ", 1), ("Seat Belt", 3),
                     ("Other", 2), ("", 2))
# Search and contraband together: contraband is only found after a search.
SEARCH_SPELLINGS = ((("N", "N"), 70), (("N", ""), 10), (("", ""), 6), (("Y", "N"), 8),
                    (("Y", "Y"), 3), (("y", ""), 1), (("Yes", "No"), 1), (("n", "n"), 1))
# Lines that break a rule, for `bad` (each is rejected by the parser).
BAD_ROWS = (
    ("", "No Code Police", "M", "W", "N", "N", "Equipment", "2015"),
    ("13100", "Alder Police", "M", "W", "N", "N", "Equipment", "15"),
    ("13100", "Alder Police", "M", "W", "N", "N", "Equipment", "20x5"),
    ("13100", "Alder Police", "M", "W", "Maybe", "N", "Equipment", "2015"),
    ("13100", "Alder Police", "M", "W", "N", "-", "Equipment", "2015"),
)
CHUNK = 10_000


def _cumulative(spellings) -> tuple[list, list[int]]:
    values, total, weights = [], 0, []
    for value, weight in spellings:
        total += weight
        values.append(value)
        weights.append(total)
    return values, weights


def generate_rows(count: int, seed: int = 1, agencies: Sequence[tuple[str, str]] = SAMPLE_AGENCIES,
                  years: Sequence[int] = range(2004, 2021), bad: float = 0.0
                  ) -> Iterator[tuple[str, ...]]:
    """`count` rows (tuples in IL_HEADER order) of random but realistic stops.

    Agencies are weighted like a real state's (a few large ones, a long
    tail). With `bad`, that share of the rows breaks a rule (empty
    agencycode, a bad year, a bad Search or Contraband value).
    """
    rng = random.Random(seed)
    agency_weights = [1.0 / (rank + 1) for rank in range(len(agencies))]
    year_texts = [str(year) for year in years]
    genders, gender_weights = _cumulative(GENDER_SPELLINGS)
    races, race_weights = _cumulative(RACE_SPELLINGS)
    purposes, purpose_weights = _cumulative(PURPOSE_SPELLINGS)
    searches, search_weights = _cumulative(SEARCH_SPELLINGS)
    made = 0
    while made < count:
        size = min(CHUNK, count - made)
        chunk = zip(rng.choices(agencies, agency_weights, k=size),
                    rng.choices(genders, cum_weights=gender_weights, k=size),
                    rng.choices(races, cum_weights=race_weights, k=size),
                    rng.choices(searches, cum_weights=search_weights, k=size),
                    rng.choices(purposes, cum_weights=purpose_weights, k=size),
                    rng.choices(year_texts, k=size), strict=True)
        if bad:
            for (code, name), gender, race, (searched, found), purpose, year in chunk:
                if rng.random() < bad:
                    yield rng.choice(BAD_ROWS)
                else:
                    yield (code, name, gender, race, searched, found, purpose, year)
        else:
            for (code, name), gender, race, (searched, found), purpose, year in chunk:
                yield (code, name, gender, race, searched, found, purpose, year)
        made += size


def _quote(value: str) -> str:
    if '"' in value or "," in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_line(values: Sequence[str]) -> str:
    """One CSV line (without its line end), quoted only where needed."""
    line = ",".join(values)
    if line.count(",") != len(values) - 1 or '"' in line or "\n" in line or "\r" in line:
        line = ",".join(_quote(value) for value in values)
    return line


def write_csv(path: Path, rows: Iterable[Sequence[str] | Mapping[str, str]],
              header: Sequence[str] = IL_HEADER, line_end: str = "\n",
              encoding: str = "utf-8") -> Path:
    """Write a header row and `rows`: sequences in the header's order, or
    mappings from header names to values (a name left out is empty)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding=encoding, newline="") as handle:
        write = handle.write
        write(csv_line(header) + line_end)
        lines = []
        for row in rows:
            if isinstance(row, Mapping):
                row = [row.get(name, "") for name in header]
            lines.append(csv_line(row))
            if len(lines) >= CHUNK:
                lines.append("")
                write(line_end.join(lines))
                lines = []
        if lines:
            lines.append("")
            write(line_end.join(lines))
    return path


def zip_release(csv_path: Path, zip_path: Path, arcname: str | None = None) -> Path:
    """Pack the CSV the way the state ships it (at `arcname` in the zip,
    by default its own name)."""
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED,
                         compresslevel=1) as archive:
        archive.write(csv_path, arcname=arcname or Path(csv_path).name)
    return Path(zip_path)


def main(argv=None) -> None:
    """`python -m services.ingest.il.synthetic --stops 3000 --out release.zip`"""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--stops", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bad", type=float, default=0.001,
                        help="share of rows that break a rule")
    parser.add_argument("--out", type=Path, required=True, help="zip file to write")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        csv_path = write_csv(Path(folder) / "IL_stops.csv",
                             generate_rows(args.stops, seed=args.seed, bad=args.bad))
        zip_release(csv_path, args.out)
    print(f"{args.out}: {args.stops:,} rows")


if __name__ == "__main__":
    main()
