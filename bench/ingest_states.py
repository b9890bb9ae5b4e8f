"""`make bench-ingest` for md and il: 1-million-row Maryland workbooks and a
5-million-row Illinois CSV (generated once into bench-data/), each imported
with the ingest worker process exactly as the service runs it. Prints the
time, rows per second, the worker's peak memory and processor time against
the targets: md under 39 s (what the whole-sheet reader took), il under
60 s, both under 400 MB.

The md rows are measured in two layouts, sheets of 200,000 rows and all in
one sheet, since a reader that holds a sheet grows with the sheet.
`--md-reader calamine` measures the whole-sheet reader (python-calamine)
on the same workbooks, for comparison.

    python -m bench.ingest_states --md-rows 1000000 --il-rows 5000000
    python -m bench.ingest_states --il-rows 0 --md-reader calamine
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

from bench.ingest import ROOT, phase_seconds, run_import
from services.ingest.md.format import READER_VARIABLE, READERS
from services.ingest.md.synthetic import XLSX_MAX_ROWS
from shared.config import Config

# md's: the time python-calamine's whole-sheet reader took for 1 million rows.
TARGETS = {"md": 39.0, "il": 60.0}
MEMORY_TARGET = 400 * 2**20
# Rows per sheet of the md workbook's first layout; the second puts every
# row in one sheet (as many as a sheet holds).
MD_ROWS_PER_SHEET = 200_000
ONE_SHEET = XLSX_MAX_ROWS - 1


def md_release(rows: int, rows_per_sheet: int = MD_ROWS_PER_SHEET) -> Path:
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


def measure(config: Config, state: str, folder: Path, label: str | None = None) -> bool:
    # The worker's processor time, steadier than wall time on a shared machine.
    before = _children_seconds()
    total, phases, payload, peak = run_import(config, folder, state)
    processor = _children_seconds() - before
    stops = payload["counts"]["stops"]
    print(f"\n{label or state}: {stops:,} stops loaded in {total:.1f}s "
          f"({stops / total:,.0f} rows/s), {payload['rejected_rows']:,} rejected, "
          f"dropped {payload['dropped']}")
    for name, seconds in phase_seconds(phases).items():
        print(f"  {name:<22}{seconds:>8.1f}s")
    print(f"  peak memory of the ingest process: {peak / 2**20:.0f} MB; processor time "
          f"{processor:.1f}s")
    met = total < TARGETS[state] and peak < MEMORY_TARGET
    print(f"  target: under {TARGETS[state]:.0f}s and {MEMORY_TARGET / 2**20:.0f} MB: "
          f"{'met' if met else 'NOT met'}", flush=True)
    return met


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--md-rows", type=int, default=1_000_000, help="0: no md run")
    parser.add_argument("--il-rows", type=int, default=5_000_000, help="0: no il run")
    parser.add_argument("--md-reader", choices=READERS, default=READERS[0],
                        help="how the md worker reads an .xlsx workbook")
    parser.add_argument("--md-sheet-rows", type=int, nargs="+",
                        default=[MD_ROWS_PER_SHEET, ONE_SHEET], metavar="ROWS",
                        help="the md layouts: data rows per sheet, one run each")
    args = parser.parse_args(argv)
    config = Config.from_env()
    if args.il_rows:
        measure(config, "il", il_release(args.il_rows))
    if args.md_rows:
        md_config = _WorkerEnviron(config, {READER_VARIABLE: args.md_reader})
        for per_sheet in args.md_sheet_rows:
            sheets = -(-args.md_rows // per_sheet)
            layout = ("one sheet" if sheets == 1 else
                      f"{sheets} sheets of {min(per_sheet, args.md_rows):,} rows")
            measure(md_config, "md", md_release(args.md_rows, per_sheet),
                    f"md ({layout}, {args.md_reader} reader)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
