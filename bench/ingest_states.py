"""`make bench-ingest` for md and il: 1-million-row Maryland workbooks and a
5-million-row Illinois CSV (generated once into bench-data/), each imported
with the ingest worker process exactly as the service runs it, `--runs`
times (3 by default). Prints each run's time, rows per second, phases, the
worker's peak memory and processor time, and ends with one table, one row
per figure: its target, the original's way, each run, the min and median of
the times (the max of the memories) and whether the target is met.

Targets: md no slower than the 39 s the whole-sheet reader (python-calamine)
took for 1 million rows (on the median) and under 400 MB (on the max), in
each sheet layout; il has none set (its figures are printed).

The md rows are measured in two layouts, sheets of 200,000 rows and all in
one sheet, since a reader that holds a sheet grows with the sheet
(`--md-sheet-rows` names others). `--md-reader calamine` measures the
whole-sheet reader instead; `--md-original` measures it as well, in the
same run, as the original's way (without it, that column gives the 39 s
measured before).

    python -m bench.ingest_states --md-rows 1000000 --il-rows 5000000
    python -m bench.ingest_states --il-rows 0 --md-reader calamine
    python -m bench.ingest_states --il-rows 0 --md-original --runs 1
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

from bench.ingest import ROOT, phase_seconds, run_import
from bench.report import Figure, fixed, print_table
from services.ingest.md.format import READER_VARIABLE, READERS
from services.ingest.md.synthetic import XLSX_MAX_ROWS
from shared.config import Config

# md's: the time python-calamine's whole-sheet reader took for 1 million rows
# (the reader before the streaming one); il has no target set.
TARGETS = {"md": 39.0}
MD_TARGET_ROWS = 1_000_000  # the rows the md time target is for
MEMORY_TARGET = 400 * 2**20
# Rows per sheet of the md workbook's first layout; the second puts every
# row in one sheet (as many as a sheet holds).
MD_ROWS_PER_SHEET = 200_000
ONE_SHEET = XLSX_MAX_ROWS - 1


def md_release(rows: int, rows_per_sheet: int) -> Path:
    from services.ingest.md.synthetic import generate_rows, sheets_of, write_xlsx

    name = {MD_ROWS_PER_SHEET: f"md-{rows}", ONE_SHEET: f"md-{rows}-one-sheet"}.get(
        rows_per_sheet, f"md-{rows}-sheets-of-{rows_per_sheet}")
    folder = ROOT / "bench-data" / name
    workbook = folder / "MD_stops.xlsx"
    if not workbook.exists():
        folder.mkdir(parents=True, exist_ok=True)
        print(f"generating an md workbook of {rows:,} rows in {folder} ...", flush=True)
        started = time.monotonic()
        partial = folder / "partial.xlsx"
        write_xlsx(partial, sheets_of(generate_rows(rows, seed=11), rows_per_sheet))
        partial.rename(workbook)
        print(f"generated in {time.monotonic() - started:.0f}s", flush=True)
    return folder


def il_release(rows: int) -> Path:
    from services.ingest.il.synthetic import generate_rows, write_csv

    folder = ROOT / "bench-data" / f"il-{rows}"
    data = folder / "IL_stops.csv"
    if not data.exists():
        folder.mkdir(parents=True, exist_ok=True)
        print(f"generating an il CSV of {rows:,} rows in {folder} ...", flush=True)
        partial = folder / "partial.csv.tmp"
        write_csv(partial, generate_rows(rows, seed=11, bad=0.001))
        partial.rename(data)
    return folder


class _WorkerEnviron:
    """The settings, with variables of the benchmark's own added to the
    environment the worker process gets."""

    def __init__(self, config: Config, extra: dict[str, str]):
        self._config = config
        self._extra = extra

    def __getattr__(self, name):
        return getattr(self._config, name)

    def with_changes(self, **changes) -> _WorkerEnviron:
        return _WorkerEnviron(self._config.with_changes(**changes), self._extra)

    def as_environ(self) -> dict[str, str]:
        return {**self._config.as_environ(), **self._extra}


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(config: Config, state: str, folder: Path, label: str) -> dict:
    """One import by the worker process: its seconds, its peak memory (bytes:
    the largest process, or the sampled sum with any children, whichever is
    more) and its processor time."""
    # The worker's processor time, steadier than wall time on a shared machine.
    before = _children_seconds()
    memory: dict = {}
    total, phases, payload, peak = run_import(config, folder, state, memory=memory)
    processor = _children_seconds() - before
    peak = max(peak, memory["together"])
    stops = payload["counts"]["stops"]
    print(f"\n{label}: {stops:,} stops loaded in {total:.1f}s "
          f"({stops / total:,.0f} rows/s), {payload['rejected_rows']:,} rejected, "
          f"dropped {payload['dropped']}")
    for name, seconds in phase_seconds(phases).items():
        print(f"  {name:<22}{seconds:>8.1f}s")
    print(f"  peak memory of the ingest process: {peak / 2**20:.0f} MB; processor time "
          f"{processor:.1f}s", flush=True)
    return {"seconds": total, "peak": peak, "processor": processor}


def _layout(rows: int, per_sheet: int) -> str:
    sheets = -(-rows // per_sheet)
    return "one sheet" if sheets == 1 else f"{sheets} sheets of {min(per_sheet, rows):,} rows"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--md-rows", type=int, default=1_000_000, help="0: no md run")
    parser.add_argument("--il-rows", type=int, default=5_000_000, help="0: no il run")
    parser.add_argument("--md-reader", choices=READERS, default=READERS[0],
                        help="how the md worker reads an .xlsx workbook")
    parser.add_argument("--md-sheet-rows", type=int, nargs="+",
                        default=[MD_ROWS_PER_SHEET, ONE_SHEET], metavar="ROWS",
                        help="the md layouts: data rows per sheet, one measurement each")
    parser.add_argument("--md-original", action="store_true",
                        help="also measure the whole-sheet reader (calamine), the original's "
                             "way, in the same run")
    parser.add_argument("--runs", type=int, default=3, help="times each measurement runs")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    config = Config.from_env()

    # (key, label, config, state, folder); generated before any run is timed.
    measurements = []
    if args.il_rows:
        measurements.append(("il", f"il ({args.il_rows:,} rows)", config, "il",
                             il_release(args.il_rows)))
    # One measurement per layout: a sheet as large as the rows is one sheet.
    layouts: dict[str, int] = {}
    for per_sheet in args.md_sheet_rows:
        layouts.setdefault(_layout(args.md_rows, per_sheet), per_sheet)
    sheet_rows = list(layouts.values())
    if args.md_rows:
        readers = [args.md_reader]
        if args.md_original and "calamine" not in readers:
            readers.append("calamine")
        for per_sheet in sheet_rows:
            folder = md_release(args.md_rows, per_sheet)
            layout = _layout(args.md_rows, per_sheet)
            for reader in readers:
                md_config = _WorkerEnviron(config, {READER_VARIABLE: reader})
                measurements.append(((layout, reader), f"md ({layout}, {reader} reader)",
                                     md_config, "md", folder))

    results: dict = {key: [] for key, *_ in measurements}
    # Each run measures every layout in turn, so a slow spell on this shared
    # machine falls on one run of each rather than on all runs of one.
    for run in range(1, args.runs + 1):
        print(f"\n== run {run} of {args.runs} ==", flush=True)
        for key, label, worker_config, state, folder in measurements:
            results[key].append(measure(worker_config, state, folder, label))

    rows = []
    if args.il_rows:
        runs = results["il"]
        rows.append(Figure(f"il time, {args.il_rows:,} rows (s)", "none set", "-", fixed(1),
                           values=[result["seconds"] for result in runs]))
        rows.append(Figure("il peak memory (MB)", "none set", "-", fixed(0),
                           values=[result["peak"] / 2**20 for result in runs]))
    if args.md_rows:
        md_target, mb_target = TARGETS["md"], MEMORY_TARGET / 2**20
        for per_sheet in sheet_rows:
            layout = _layout(args.md_rows, per_sheet)
            runs = results[(layout, args.md_reader)]
            original = results.get((layout, "calamine")) if args.md_original else None
            if original:
                original_time = (f"{statistics.median(r['seconds'] for r in original):.1f}"
                                 " (calamine)")
                original_memory = f"{max(r['peak'] for r in original) / 2**20:.0f} (calamine)"
            else:
                original_time, original_memory = f"{md_target:.1f} (before)", "-"
            name = f"md {args.md_rows:,} rows, {layout}"
            if args.md_reader != READERS[0]:
                name += f", {args.md_reader} reader"
            judged = args.md_rows == MD_TARGET_ROWS
            rows.append(Figure(f"{name}: time (s)", f"<= {md_target:.0f}" + (
                                   "" if judged else f" at {MD_TARGET_ROWS:,} rows"),
                               original_time, fixed(1),
                               (lambda seconds: seconds <= md_target) if judged else None,
                               values=[result["seconds"] for result in runs]))
            rows.append(Figure(f"{name}: peak memory (MB)", f"< {mb_target:.0f}",
                               original_memory, fixed(0), lambda mb: mb < mb_target,
                               judge_worst=True,
                               values=[result["peak"] / 2**20 for result in runs]))
    if rows:
        print_table(rows, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
