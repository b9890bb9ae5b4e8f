"""`make bench-ingest` for md and il: a 1-million-row Maryland workbook and a
5-million-row Illinois CSV (generated once into bench-data/), each imported
with the ingest worker process exactly as the service runs it. Prints the
time, rows per second and the worker's peak memory against the targets:
md under 90 s, il under 60 s, both under 400 MB.

    python -m bench.ingest_states --md-rows 1000000 --il-rows 5000000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.ingest import ROOT, phase_seconds, run_import
from shared.config import Config

TARGETS = {"md": 90.0, "il": 60.0}
MEMORY_TARGET = 400 * 2**20
# Rows per sheet of the md workbook. The reader holds one sheet at a time
# (python-calamine loads a sheet whole), so this bounds its memory.
MD_ROWS_PER_SHEET = 200_000


def md_release(rows: int) -> Path:
    from services.ingest.md.synthetic import generate_rows, sheets_of, write_xlsx

    folder = ROOT / "bench-data" / f"md-{rows}"
    workbook = folder / "MD_stops.xlsx"
    if not workbook.exists():
        folder.mkdir(parents=True, exist_ok=True)
        print(f"generating an md workbook of {rows:,} rows in {folder} ...", flush=True)
        started = time.monotonic()
        partial = folder / "partial.xlsx"
        write_xlsx(partial, sheets_of(generate_rows(rows, seed=11), MD_ROWS_PER_SHEET))
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


def measure(config: Config, state: str, folder: Path) -> bool:
    total, phases, payload, peak = run_import(config, folder, state)
    stops = payload["counts"]["stops"]
    print(f"\n{state}: {stops:,} stops loaded in {total:.1f}s ({stops / total:,.0f} rows/s), "
          f"{payload['rejected_rows']:,} rejected, dropped {payload['dropped']}")
    for name, seconds in phase_seconds(phases).items():
        print(f"  {name:<22}{seconds:>8.1f}s")
    print(f"  peak memory of the ingest process: {peak / 2**20:.0f} MB")
    met = total < TARGETS[state] and peak < MEMORY_TARGET
    print(f"  target: under {TARGETS[state]:.0f}s and {MEMORY_TARGET / 2**20:.0f} MB: "
          f"{'met' if met else 'NOT met'}", flush=True)
    return met


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--md-rows", type=int, default=1_000_000)
    parser.add_argument("--il-rows", type=int, default=5_000_000)
    args = parser.parse_args(argv)
    config = Config.from_env()
    measure(config, "il", il_release(args.il_rows))
    measure(config, "md", md_release(args.md_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
