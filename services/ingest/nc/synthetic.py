"""Synthetic North Carolina releases in the state's raw format.

The sample releases that `make run` imports, the benchmark's large releases
and the tests' hand-built releases are all written here, so the raw format
(tab separated, space padded to the state's column widths, CR LF, no header)
is spelled out once. Names, ids and counts are made up by this project.

    writer = RawReleaseWriter(folder)
    writer.stop(1, "Alder Police Department", "2015-03-01 08:30:00.000", purpose=1)
    writer.person(1, 1, "D", age=30, gender="M", ethnicity="N", race="W")
    writer.close()
    zip_release(folder, folder / "STOPS_Extract.zip")
"""

from __future__ import annotations

import random
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

# Column widths from the state's data key; values are left-justified and
# space padded to these widths.
STOP_WIDTHS = (12, 100, 24, 5, 5, 3, 3, 3, 3, 3, 3, 3, 10, 15, 20)
PERSON_WIDTHS = (12, 12, 1, 5, 1, 1, 1)
SEARCH_WIDTHS = (12, 12, 12, 5, 3, 3, 3, 3, 3, 3, 3)
CONTRABAND_WIDTHS = (12, 12, 12, 12) + (41,) * 10
SEARCH_BASIS_WIDTHS = (12, 12, 12, 12, 10)

FILE_WIDTHS = {
    "Stop.txt": STOP_WIDTHS,
    "PERSON.txt": PERSON_WIDTHS,
    "Search.txt": SEARCH_WIDTHS,
    "Contraband.txt": CONTRABAND_WIDTHS,
    "SearchBasis.txt": SEARCH_BASIS_WIDTHS,
}

SAMPLE_AGENCIES = (
    "NC State Highway Patrol",
    "Alder Police Department",
    "Birchwood Police Department",
    "Cedar County Sheriff's Office",
    "Dogwood Police Department",
    "Elm Grove Police Department",
    "Fern Valley Police Department",
    "Granite Falls County Sheriff's Office",
    "Hickory Ridge Police Department",
    "Ironwood Police Department",
    "Juniper Police Department",
    "Kestrel Bay Police Department",
)
COUNTIES = ("Alder", "Cedar", "Granite", "Juniper", "Willow")
CITIES = ("Alder", "Birchwood", "Dogwood", "Elm Grove", "Fern Valley", "Ironwood")


def format_line(values, widths) -> bytes:
    """One raw line: each value left-justified to its width, tabs between."""
    padded = [str(value).ljust(width) for value, width in zip(values, widths, strict=False)]
    padded.extend(str(value) for value in values[len(widths):])
    return ("\t".join(padded) + "\r\n").encode()


class RawReleaseWriter:
    """Writes the five raw files of a release into a folder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.files = {name: open(self.folder / name, "wb") for name in FILE_WIDTHS}

    def raw(self, name: str, line: bytes) -> None:
        """Append a line exactly as given (for dirty lines)."""
        self.files[name].write(line)

    def stop(self, stop_id, agency, date, purpose=1, action=3, driver_arrest=0,
             passenger_arrest=0, encounter_force=0, engage_force=0, officer_injury=0,
             driver_injury=0, passenger_injury=0, officer_id="1000", county="Alder",
             city="Alder", extra=()):
        values = [stop_id, agency, date, purpose, action, driver_arrest, passenger_arrest,
                  encounter_force, engage_force, officer_injury, driver_injury,
                  passenger_injury, officer_id, county, city, *extra]
        self.files["Stop.txt"].write(format_line(values, STOP_WIDTHS))

    def person(self, person_id, stop_id, kind="D", age=30, gender="M", ethnicity="N",
               race="W"):
        self.files["PERSON.txt"].write(
            format_line([person_id, stop_id, kind, age, gender, ethnicity, race],
                        PERSON_WIDTHS))

    def search(self, search_id, stop_id, person_id, search_type=1, vehicle=1, driver=0,
               passenger=0, property_=0, vehicle_seized=0, personal_seized=0,
               other_seized=0):
        self.files["Search.txt"].write(format_line(
            [search_id, stop_id, person_id, search_type, vehicle, driver, passenger,
             property_, vehicle_seized, personal_seized, other_seized], SEARCH_WIDTHS))

    def contraband(self, contraband_id, search_id, person_id, stop_id, ounces="",
                   pounds="", pints="", gallons="", dosages="", grams="", kilos="",
                   money="", weapons="", dollar_amount=""):
        self.files["Contraband.txt"].write(format_line(
            [contraband_id, search_id, person_id, stop_id, ounces, pounds, pints, gallons,
             dosages, grams, kilos, money, weapons, dollar_amount], CONTRABAND_WIDTHS))

    def search_basis(self, basis_id, search_id, person_id, stop_id, basis="ER"):
        self.files["SearchBasis.txt"].write(format_line(
            [basis_id, search_id, person_id, stop_id, basis], SEARCH_BASIS_WIDTHS))

    def close(self) -> None:
        for handle in self.files.values():
            handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_simple_stops(writer: RawReleaseWriter, count: int, first_id: int = 1,
                       agency: str = "Alder Police Department") -> None:
    """`count` plain stops of one agency in 2015, each with its driver."""
    for offset in range(count):
        stop_id = first_id + offset
        writer.stop(stop_id, agency, f"2015-{1 + offset % 12:02d}-15 12:00:00")
        writer.person(stop_id, stop_id)


def zip_release(folder: Path, zip_path: Path, names=tuple(FILE_WIDTHS)) -> Path:
    """Pack the raw files of `folder` the way the state ships them."""
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED,
                         compresslevel=1) as archive:
        for name in names:
            archive.write(Path(folder) / name, arcname=name)
    return Path(zip_path)


@dataclass
class GeneratedRelease:
    """What a generated release holds, for checks and benchmark reports."""

    stops: int = 0
    persons: int = 0
    searches: int = 0
    contraband: int = 0
    search_bases: int = 0
    dirty_lines: dict = field(default_factory=dict)


def generate_release(folder: Path, stops: int, seed: int = 7, first_year: int = 2001,
                     last_year: int = 2016, dirty: bool = True,
                     agencies=SAMPLE_AGENCIES, dirt: float = 1.0) -> GeneratedRelease:
    """Write a random but realistic release of `stops` stops.

    With `dirty`, about one stop line in 2,000 carries stray NUL bytes, one
    in 500 extra trailing columns, and one in 1,000 is malformed (short
    line, impossible date, letters in the id): the cases a real extract
    shows. `dirt` multiplies those rates (the small sample uses more).
    """
    rng = random.Random(seed)
    summary = GeneratedRelease()
    person_id = search_id = contraband_id = basis_id = 0
    years = range(first_year, last_year + 1)
    races = "WWWWWBBBAIU"
    with RawReleaseWriter(folder) as writer:
        stop_file = writer.files["Stop.txt"]
        for stop_id in range(1, stops + 1):
            agency = agencies[min(int(rng.expovariate(0.45)), len(agencies) - 1)]
            date = (f"{rng.choice(years)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} "
                    f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00.000")
            searched = rng.random() < 0.04
            officer = str(1000 + rng.randint(0, 60))
            roll = rng.random() / dirt if dirty else 1.0
            if roll < 0.001:
                kind = ("short", "date", "id")[stop_id % 3]
                if kind == "short":
                    stop_file.write(format_line([stop_id, agency, date], STOP_WIDTHS))
                elif kind == "date":
                    writer.stop(stop_id, agency, date[:5] + "13" + date[7:])
                else:
                    writer.stop(f"X{stop_id}", agency, date)
                summary.dirty_lines[kind] = summary.dirty_lines.get(kind, 0) + 1
                continue
            extra = ("", "0") if roll < 0.0035 else ()
            line = format_line(
                [stop_id, agency, date, rng.randint(1, 10), rng.randint(1, 5),
                 int(searched and rng.random() < 0.3), 0, 0,
                 int(searched and rng.random() < 0.05), 0, 0, 0, officer,
                 rng.choice(COUNTIES), rng.choice(CITIES), *extra], STOP_WIDTHS)
            if roll < 0.0015:
                line = line[:20] + b"\x00\x00" + line[20:]
                summary.dirty_lines["nul"] = summary.dirty_lines.get("nul", 0) + 1
            elif extra:
                summary.dirty_lines["extra"] = summary.dirty_lines.get("extra", 0) + 1
            stop_file.write(line)
            summary.stops += 1
            person_id += 1
            driver_id = person_id
            writer.person(driver_id, stop_id, "D", rng.randint(16, 85), rng.choice("MMF"),
                          "H" if rng.random() < 0.08 else "N", rng.choice(races))
            summary.persons += 1
            if rng.random() < 0.1:
                person_id += 1
                writer.person(person_id, stop_id, "P", rng.randint(5, 85), rng.choice("MF"),
                              "N", rng.choice(races))
                summary.persons += 1
            if searched:
                search_id += 1
                writer.search(search_id, stop_id, driver_id, rng.randint(1, 5))
                summary.searches += 1
                basis_id += 1
                writer.search_basis(basis_id, search_id, driver_id, stop_id,
                                    rng.choice(("ER", "OB", "OI", "SM", "TIP", "WTNS")))
                summary.search_bases += 1
                if rng.random() < 0.3:
                    contraband_id += 1
                    writer.contraband(contraband_id, search_id, driver_id, stop_id,
                                      ounces=f"{rng.random() * 4:.2f}")
                    summary.contraband += 1
    return summary


def main(argv=None) -> None:
    """`python -m services.ingest.nc.synthetic --stops 3000 --out release.zip`"""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--stops", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dirt", type=float, default=1.0,
                        help="multiply the rate of dirty lines")
    parser.add_argument("--out", type=Path, required=True, help="zip file to write")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        summary = generate_release(Path(folder), args.stops, seed=args.seed, dirt=args.dirt)
        zip_release(Path(folder), args.out)
    print(f"{args.out}: {summary}")


if __name__ == "__main__":
    main()
