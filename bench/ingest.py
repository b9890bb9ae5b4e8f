"""`make bench-ingest`: how fast the nc import is, against the floor and
against the original site's way.

Generates an nc release of `--stops` stops in the raw format (kept in
bench-data/ for the next run) and, `--runs` times over (3 by default), in
the same run measures:

- the floor: a bare COPY of the same files into unindexed UNLOGGED tables,
  the least any import must spend to get the bytes into PostgreSQL (the
  least of its runs is the floor);
- our import: the ingest worker process exactly as the service runs it,
  with its phases (rows per second), its peak memory (the worker alone, and
  with its parse workers) and its ratio to the floor;
- the original's way (`original_import`): what the original Django site's
  nc/data/importer.py did, stood in for here: each raw file converted to CSV
  with Python's csv module in one process, as in2csv did; each CSV COPYed
  into typed tables in a scratch schema (`bench_original`); then the primary
  keys, foreign keys and indexes it had dropped before the load added back,
  and ANALYZE (at 20 million stops only with `--original`: half an hour);
- the stats refresh that follows the import (the stats service's own
  `refresh`), and the import plus the refresh: the time from a request to
  `stats_refreshed` less the bus's milliseconds.

Ends with one table, one row per figure: its target, the original's way,
each run, the min and median, and whether the target is met. Targets: our
import at most 2x the floor (on the median, at 1 million stops), peak
memory under 400 MB (on the max), the refresh under 5 s at 1 million
stops, and at 20 million stops the import plus the refresh under 240 s.

    python -m bench.ingest --stops 1000000
    python -m bench.ingest --stops 1000000 --parse-workers 1   # Stop.txt in one pass
    python -m bench.ingest --stops 20000 --runs 1              # a quick look
    python -m bench.ingest --stops 20000000 --runs 1           # the large target
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil
import psycopg2
from sqlalchemy import text

from bench.report import Figure, fixed, print_table
from services.ingest.nc.format import DATE_TIME, FILES, is_number, is_real_day
from services.ingest.nc.release import NcRelease
from services.ingest.nc.synthetic import generate_release
from services.stats.refresh import refresh
from shared.config import Config
from shared.db import make_engine, psycopg2_dsn

ROOT = Path(__file__).resolve().parent.parent
BLOCK = 4 << 20


def release_folder(stops: int) -> Path:
    folder = ROOT / "bench-data" / f"nc-{stops}"
    done = folder / "generated.json"
    if not done.exists():
        print(f"generating an nc release of {stops:,} stops in {folder} ...", flush=True)
        started = time.monotonic()
        summary = generate_release(folder, stops, seed=11)
        done.write_text(json.dumps(summary.__dict__))
        print(f"  generated in {time.monotonic() - started:.0f}s", flush=True)
    return folder


class _Stripped:
    """The raw bytes less NUL and CR, which COPY cannot take; nothing else."""

    def __init__(self, path: Path):
        self.handle = open(path, "rb")

    def read(self, size: int = -1) -> bytes:
        return self.handle.read(BLOCK).translate(None, b"\x00\r")



def settle(config: Config) -> None:
    """Flush what earlier runs left for the checkpointer, so it does not write
    during the measured run (needs superuser or pg_checkpoint; skipped without)."""
    conn = psycopg2.connect(psycopg2_dsn(config.database_url))
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    except psycopg2.Error as error:
        print(f"(no CHECKPOINT before the run: {error.pgerror.strip()})")
    finally:
        conn.close()


def bare_copy(config: Config, folder: Path) -> float:
    settle(config)
    conn = psycopg2.connect(psycopg2_dsn(config.database_url))
    conn.autocommit = True
    started = time.monotonic()
    with conn.cursor() as cursor:
        cursor.execute("DROP SCHEMA IF EXISTS bench_floor CASCADE; CREATE SCHEMA bench_floor")
        for index, name in enumerate(FILES):
            table = f"bench_floor.raw_{index}"
            cursor.execute(f"CREATE UNLOGGED TABLE {table} (line text)")
            # One text column per line, and delimiter and quote bytes that never
            # occur: the cheapest COPY of these bytes there is.
            cursor.copy_expert(f"COPY {table} FROM STDIN WITH (FORMAT csv, "
                               "DELIMITER E'\\x01', QUOTE E'\\x02')", _Stripped(folder / name))
    took = time.monotonic() - started
    with conn.cursor() as cursor:
        cursor.execute("DROP SCHEMA bench_floor CASCADE")
    conn.close()
    return took


class TreeMemory:
    """The most memory a process and its children (the parse workers) held
    together, sampled while it runs."""

    def __init__(self, pid: int, interval: float = 0.1):
        self.peak = 0
        self._process = psutil.Process(pid)
        self._interval = interval
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while True:
            try:
                tree = [self._process, *self._process.children(recursive=True)]
                self.peak = max(self.peak, sum(_rss(process) for process in tree))
            except psutil.NoSuchProcess:
                return
            time.sleep(self._interval)

    def stop(self) -> int:
        self._thread.join()
        return self.peak


def _rss(process) -> int:
    try:
        return process.memory_info().rss
    except psutil.NoSuchProcess:
        return 0


def run_import(config: Config, folder: Path, state: str = "nc", memory: dict | None = None
               ) -> tuple[float, dict, dict, int]:
    """Time one import by the worker process; `memory`, when given, gets the
    peak of the worker and its parse workers together ("together")."""
    settle(config)
    environ = config.with_changes(allow_file_urls=True, data_dir=ROOT / "bench-data" / "runs"
                                  ).as_environ()
    request = {"import_id": f"bench-{uuid.uuid4().hex[:8]}", "state": state,
               "url": folder.as_uri()}
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "services.ingest.worker"], cwd=ROOT,
                               env=environ, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    sampled = TreeMemory(process.pid)
    process.stdin.write(json.dumps(request))
    process.stdin.close()
    phases: dict[str, list[float]] = {}
    outcome = None
    for line in process.stdout:
        message = json.loads(line)
        now = time.monotonic() - started
        if "progress" in message:
            span = phases.setdefault(message["progress"]["phase"], [now, now])
            span[1] = now
        else:
            outcome = message["outcome"]
    _, status, usage = os.wait4(process.pid, 0)
    total = time.monotonic() - started
    together = sampled.stop()
    if memory is not None:
        memory["together"] = together
    if outcome is None or outcome["event"] != "dataset_loaded":
        raise SystemExit(f"the import did not load: {outcome}")
    # ru_maxrss is in kilobytes on Linux: the largest of the worker and the
    # children it waited for (its parse workers).
    return total, phases, outcome["payload"], usage.ru_maxrss * 1024


def phase_seconds(phases: dict[str, list[float]]) -> dict[str, float]:
    """Each phase from its first report to the next phase's first report."""
    ordered = sorted(phases.items(), key=lambda item: item[1][0])
    seconds = {}
    for position, (name, (start, end)) in enumerate(ordered):
        finish = ordered[position + 1][1][0] if position + 1 < len(ordered) else end
        seconds[name] = max(finish - start, 1e-9)
    return seconds


# -- the original's way ----------------------------------------------------------
#
# The original site (Open Data Policing's Django project: nc/data/importer.py
# and copy.sql) converted each raw file to a CSV file (csvkit's in2csv, later
# the csv module, in one process), dropped the tables' keys and indexes
# (drop_constraints_and_indexes), COPYed each CSV into its typed table and
# added the keys, foreign keys and indexes back, then ran ANALYZE. Left out,
# all of which would only make it slower: its check constraints (ids and
# codes at least 0) and the UPDATE of every stop to set its agency id.

ORIGINAL_SCHEMA = "bench_original"
NC_TIME_ZONE = "America/New_York"
_ID, _CODE, _FLAG, _TEXT, _AMOUNT = "bigint", "smallint", "boolean", "text", "numeric"
_WHEN = "timestamptz"  # the original's DateTimeField, read as North Carolina time

# Each raw file's table as the original's models had it: the raw columns in
# order, typed, all nullable.
ORIGINAL_TABLES = {
    "Stop.txt": ("nc_stop", (
        ("stop_id", _ID), ("agency_description", _TEXT), ("date", _WHEN),
        ("purpose", _CODE), ("action", _CODE), ("driver_arrest", _FLAG),
        ("passenger_arrest", _FLAG), ("encounter_force", _FLAG), ("engage_force", _FLAG),
        ("officer_injury", _FLAG), ("driver_injury", _FLAG), ("passenger_injury", _FLAG),
        ("officer_id", _TEXT), ("stop_location", _TEXT), ("stop_city", _TEXT))),
    "PERSON.txt": ("nc_person", (
        ("person_id", _ID), ("stop_id", _ID), ("type", _TEXT), ("age", _CODE),
        ("gender", _TEXT), ("ethnicity", _TEXT), ("race", _TEXT))),
    "Search.txt": ("nc_search", (
        ("search_id", _ID), ("stop_id", _ID), ("person_id", _ID), ("type", _CODE),
        ("vehicle_search", _FLAG), ("driver_search", _FLAG), ("passenger_search", _FLAG),
        ("property_search", _FLAG), ("vehicle_seized", _FLAG),
        ("personal_property_seized", _FLAG), ("other_property_seized", _FLAG))),
    "Contraband.txt": ("nc_contraband", (
        ("contraband_id", _ID), ("search_id", _ID), ("person_id", _ID), ("stop_id", _ID),
        ("ounces", _AMOUNT), ("pounds", _AMOUNT), ("pints", _AMOUNT), ("gallons", _AMOUNT),
        ("dosages", _AMOUNT), ("grams", _AMOUNT), ("kilos", _AMOUNT), ("money", _AMOUNT),
        ("weapons", _AMOUNT), ("dollar_amount", _AMOUNT))),
    "SearchBasis.txt": ("nc_searchbasis", (
        ("search_basis_id", _ID), ("search_id", _ID), ("person_id", _ID), ("stop_id", _ID),
        ("basis", _TEXT))),
}

# What copy.sql added back after the load, in its order: primary keys, foreign
# keys (DEFERRABLE INITIALLY DEFERRED, as Django made them), the indexes on
# the foreign key columns and those the per-request queries needed (stops by
# agency and by date), then statistics.
_KEYS = {"nc_stop": "stop_id", "nc_person": "person_id", "nc_search": "search_id",
         "nc_contraband": "contraband_id", "nc_searchbasis": "search_basis_id"}
_REFERENCES = (
    ("nc_person", "stop_id", "nc_stop"),
    ("nc_search", "stop_id", "nc_stop"),
    ("nc_search", "person_id", "nc_person"),
    ("nc_contraband", "search_id", "nc_search"),
    ("nc_contraband", "stop_id", "nc_stop"),
    ("nc_contraband", "person_id", "nc_person"),
    ("nc_searchbasis", "search_id", "nc_search"),
    ("nc_searchbasis", "stop_id", "nc_stop"),
    ("nc_searchbasis", "person_id", "nc_person"),
)
ORIGINAL_KEYS = (
    *(f"ALTER TABLE {{schema}}.{table} ADD PRIMARY KEY ({column})"
      for table, column in _KEYS.items()),
    *(f"ALTER TABLE {{schema}}.{table} ADD FOREIGN KEY ({column}) "
      f"REFERENCES {{schema}}.{target} DEFERRABLE INITIALLY DEFERRED"
      for table, column, target in _REFERENCES),
    *(f"CREATE INDEX ON {{schema}}.{table} ({column})" for table, column, _ in _REFERENCES),
    "CREATE INDEX ON {schema}.nc_stop (agency_description)",
    "CREATE INDEX ON {schema}.nc_stop (date)",
    *(f"ANALYZE {{schema}}.{table}" for table in _KEYS),
)

def _is_timestamp(value: str, days: dict[str, bool]) -> bool:
    return bool(DATE_TIME.match(value)) and is_real_day(value[:10], days)


def _to_csv(raw: Path, out: Path, columns) -> tuple[int, int]:
    """One raw file to a CSV file with a header row, as the original's
    conversion did: NUL bytes dropped, tab-separated fields read with the
    csv module, every value trimmed, the columns past the table's dropped.
    A line COPY could not cast (too few columns, an id that is not a number,
    an impossible date) is skipped and counted. Returns (written, skipped)."""
    count = len(columns)
    ids = [index for index, (_, kind) in enumerate(columns) if kind == _ID]
    whens = [index for index, (_, kind) in enumerate(columns) if kind == _WHEN]
    days: dict[str, bool] = {}
    written = skipped = 0
    with (open(raw, encoding="utf-8", errors="replace", newline="") as source,
          open(out, "w", encoding="utf-8", newline="") as target):
        reader = csv.reader((line.replace("\0", "") for line in source), delimiter="\t",
                            quotechar='"')
        writer = csv.writer(target, lineterminator="\n")
        writer.writerow([name for name, _ in columns])
        for row in reader:
            values = [value.strip() for value in row[:count]]
            if (len(values) < count
                    or not all(is_number(values[index]) for index in ids)
                    or not all(_is_timestamp(values[index], days) for index in whens)):
                skipped += any(values)
                continue
            writer.writerow(values)
            written += 1
    return written, skipped


def original_import(config: Config, folder: Path) -> float:
    """Import the release the original site's way (see above) into the
    scratch schema `bench_original`; prints each step; returns the seconds
    of the three steps together. The CSV files and the schema are removed."""
    settle(config)
    scratch = Path(tempfile.mkdtemp(prefix="original-csv-", dir=ROOT / "bench-data"))
    conn = psycopg2.connect(psycopg2_dsn(config.database_url))
    conn.autocommit = True
    steps: dict[str, float] = {}
    skipped: dict[str, int] = {}
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {ORIGINAL_SCHEMA} CASCADE")
        # 1. each raw file to CSV, one process
        started = time.monotonic()
        for name, (table, columns) in ORIGINAL_TABLES.items():
            _, skipped[name] = _to_csv(folder / name, scratch / f"{table}.csv", columns)
        steps["convert to CSV"] = time.monotonic() - started
        # 2. typed tables, no keys or indexes, and COPY
        started = time.monotonic()
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA {ORIGINAL_SCHEMA}; "
                           f"SET TIME ZONE '{NC_TIME_ZONE}'")
            for table, columns in ORIGINAL_TABLES.values():
                cursor.execute(f"CREATE TABLE {ORIGINAL_SCHEMA}.{table} (" + ", ".join(
                    f"{name} {kind}" for name, kind in columns) + ")")
            for table, columns in ORIGINAL_TABLES.values():
                names = ", ".join(name for name, _ in columns)
                with open(scratch / f"{table}.csv", "rb") as handle:
                    cursor.copy_expert(f"COPY {ORIGINAL_SCHEMA}.{table} ({names}) FROM STDIN "
                                       "WITH (FORMAT csv, HEADER true)", handle, size=BLOCK)
        steps["COPY into typed tables"] = time.monotonic() - started
        # 3. keys, foreign keys, indexes, statistics
        started = time.monotonic()
        with conn.cursor() as cursor:
            for statement in ORIGINAL_KEYS:
                cursor.execute(statement.format(schema=ORIGINAL_SCHEMA))
        steps["keys, indexes, ANALYZE"] = time.monotonic() - started
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        with conn.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {ORIGINAL_SCHEMA} CASCADE")
        conn.close()
    total = sum(steps.values())
    print("original's way: " + ", ".join(f"{name} {seconds:.1f}s"
                                         for name, seconds in steps.items())
          + f"; total {total:.1f}s ({sum(skipped.values()):,} bad lines skipped)", flush=True)
    return total


# -- the report ----------------------------------------------------------------

MEMORY_TARGET_MB = 400
RATIO_TARGET = 2.0  # our import / the floor, at RATIO_STOPS (fixed costs rule below it)
RATIO_STOPS = 1_000_000
LARGE_RELEASE = 20_000_000
LARGE_TARGET = 240.0  # seconds, import plus the stats refresh, at 20 million stops
REFRESH_TARGET = 5.0  # seconds, the stats refresh at RATIO_STOPS


def timed_refresh(engine, data_version: int, state: str = "nc") -> tuple[float, dict]:
    """Seconds of one full refresh of the state's stats (as the stats service
    runs it after an import), and its payload."""
    started = time.monotonic()
    payload = refresh(engine, state, data_version)
    took = time.monotonic() - started
    if payload is None:
        # The stats already cover this load (an earlier run of this loop, or
        # a stats service that got there first). This is the development
        # database, so forgetting the state's generation to force a full refresh is
        # acceptable for a benchmark; the generation numbers start again at
        # 1, and the gateway's cache keys also carry refreshed_at, so no
        # stale entry can be served.
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM stats.generations WHERE state = :state"),
                         {"state": state})
        started = time.monotonic()
        payload = refresh(engine, state, data_version)
        took = time.monotonic() - started
    if payload is None:
        raise SystemExit("the stats refresh did nothing, even after forgetting the generation")
    return took, payload


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stops", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3,
                        help="times each of the floor, our import and the original's way runs")
    parser.add_argument("--parse-workers", type=int, default=None,
                        help="INGEST_PARSE_WORKERS for the import (1: one pass, as before)")
    parser.add_argument("--original", action=argparse.BooleanOptionalAction, default=None,
                        help="measure the original's way too (default: below 20 million "
                        "stops)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    config = Config.from_env()
    if args.parse_workers is not None:
        config = config.with_changes(ingest_parse_workers=args.parse_workers)
    folder = release_folder(args.stops)
    with_original = args.original if args.original is not None else (
        args.stops < LARGE_RELEASE)
    engine = make_engine(config)
    size = sum((folder / name).stat().st_size for name in FILES)

    print(f"\nnc release: {args.stops:,} stops, {size / 1e9:.2f} GB of raw files; "
          f"{args.runs} runs", flush=True)
    print(f"parse workers: {config.ingest_parse_workers} (of {os.cpu_count()} cores)",
          flush=True)
    floors: list[float] = []
    ours: list[float] = []
    originals: list[float] = []
    refreshes: list[float] = []
    peaks: list[float] = []
    togethers: list[float] = []
    # Each run measures the three in turn, so a slow spell on this shared
    # machine falls on one run of each rather than on all runs of one.
    for run in range(1, args.runs + 1):
        print(f"\n== run {run} of {args.runs} ==", flush=True)
        floors.append(bare_copy(config, folder))
        print(f"bare COPY into UNLOGGED text tables (the floor): {floors[-1]:.1f}s",
              flush=True)
        memory: dict = {}
        total, phases, payload, peak = run_import(config, folder, memory=memory)
        ours.append(total)
        peaks.append(peak / 2**20)
        togethers.append(memory["together"] / 2**20)
        _print_phases(phases, payload, total)
        print(f"peak memory of the ingest process: {peaks[-1]:.0f} MB (the largest "
              f"process), {togethers[-1]:.0f} MB with its parse workers (sampled)",
              flush=True)
        settle(config)
        refreshed, _ = timed_refresh(engine, payload["data_version"])
        refreshes.append(refreshed)
        print(f"stats refresh: {refreshed:.1f}s; import + refresh {total + refreshed:.1f}s",
              flush=True)
        if with_original:
            originals.append(original_import(config, folder))
    engine.dispose()

    floor = min(floors)
    original = statistics.median(originals) if originals else None
    shown = f"{original:.2f}" if original is not None else "not run"
    large = args.stops >= LARGE_RELEASE
    at_target_size = args.stops == RATIO_STOPS
    together = [done + refreshed for done, refreshed in zip(ours, refreshes, strict=True)]
    figures = [
        Figure("nc bare COPY, the floor (s)", "(floor = min)", "-", fixed(2), values=floors),
        Figure("nc import, ours (s)", "none set", shown, fixed(2), values=ours),
    ]
    if originals:
        figures.append(Figure("nc import, original's way (s)", "none set", "(this row)",
                              fixed(2), values=originals))
    figures.append(Figure(
        "nc import / floor (x)",
        f"<= {RATIO_TARGET:.1f}" + ("" if at_target_size else f" at {RATIO_STOPS:,} stops"),
        f"{original / floor:.2f}" if original is not None else "not run", fixed(2),
        (lambda ratio: ratio <= RATIO_TARGET) if at_target_size else None,
        values=[value / floor for value in ours]))
    if originals:
        figures.append(Figure(
            "nc speed-up, original's way / ours (x)", "none set", "1.00", fixed(2),
            higher_is_better=True,
            values=[slow / fast for slow, fast in zip(originals, ours, strict=True)]))
    figures += [
        Figure("nc stats refresh after the import (s)",
               f"< {REFRESH_TARGET:.0f}" + ("" if at_target_size else f" at {RATIO_STOPS:,} stops"),
               "none (per-request SQL)", fixed(2),
               (lambda seconds: seconds < REFRESH_TARGET) if at_target_size else None,
               values=refreshes),
        Figure("nc import + stats refresh (s)",
               f"< {LARGE_TARGET:.0f}" + ("" if large else f" at {LARGE_RELEASE:,} stops"),
               "-", fixed(1), (lambda seconds: seconds < LARGE_TARGET) if large else None,
               values=together),
        Figure("nc ingest peak memory, worker (MB)", f"< {MEMORY_TARGET_MB}", "-", fixed(0),
               lambda mb: mb < MEMORY_TARGET_MB, judge_worst=True, values=peaks),
        Figure("nc ingest peak memory, with parse workers (MB)", f"< {MEMORY_TARGET_MB}", "-",
               fixed(0), lambda mb: mb < MEMORY_TARGET_MB, judge_worst=True,
               values=togethers),
    ]
    ours_median = statistics.median(ours)
    print(f"\nnc, {args.stops:,} stops: floor {floor:.2f}s (least of {args.runs}), ours "
          f"{ours_median:.2f}s, then the refresh {statistics.median(refreshes):.2f}s "
          f"(medians); ours / floor {ours_median / floor:.2f}x (target at {RATIO_STOPS:,} "
          f"stops: at most {RATIO_TARGET:.0f}x)" + (
              f"; original's way {original:.2f}s, ours {original / ours_median:.2f}x faster"
              if original is not None else "; the original's way not run (--original)"))
    print_table(figures, args.runs)
    return 0


def _print_phases(phases: dict[str, list[float]], payload: dict, total: float) -> None:
    rows_by_phase = {f"load {name}": payload["counts"][NcRelease.count_names[name]]
                     for name in FILES}
    print(f"{'phase':<24}{'seconds':>9}{'rows':>14}{'rows/s':>12}")
    for name, seconds in phase_seconds(phases).items():
        rows = rows_by_phase.get(name)
        print(f"{name:<24}{seconds:>9.1f}{rows:>14,}{rows / seconds:>12,.0f}"
              if rows else f"{name:<24}{seconds:>9.1f}")
    rows = sum(payload["counts"].values())
    print(f"total import: {total:.1f}s for {rows:,} rows ({rows / total:,.0f} rows/s), "
          f"{payload['rejected_rows']:,} lines rejected", flush=True)


if __name__ == "__main__":
    sys.exit(main())
