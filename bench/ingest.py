"""`make bench-ingest`: how fast the nc import is, against the floor.

Generates an nc release of `--stops` stops in the raw format (kept in
bench-data/ for the next run), imports it with the ingest worker process
exactly as the service runs it, and in the same run times a bare COPY of
the same files into unindexed UNLOGGED tables: the least any import must
spend to get the bytes into PostgreSQL. Prints rows per second by phase,
the total, the peak memory of the worker (and of its parse workers) and the
ratio to the floor.

    python -m bench.ingest --stops 1000000
    python -m bench.ingest --stops 1000000 --parse-workers 1   # Stop.txt in one pass
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil
import psycopg2

from services.ingest.nc.format import FILES
from services.ingest.nc.synthetic import generate_release
from shared.config import Config
from shared.db import psycopg2_dsn

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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stops", type=int, default=1_000_000)
    parser.add_argument("--parse-workers", type=int, default=None,
                        help="INGEST_PARSE_WORKERS for the import (1: one pass, as before)")
    args = parser.parse_args(argv)
    config = Config.from_env()
    if args.parse_workers is not None:
        config = config.with_changes(ingest_parse_workers=args.parse_workers)
    folder = release_folder(args.stops)
    size = sum((folder / name).stat().st_size for name in FILES)

    print(f"\nnc release: {args.stops:,} stops, {size / 1e9:.2f} GB of raw files", flush=True)
    # The least of two runs: the floor is the best this machine can do.
    floor = min(bare_copy(config, folder) for _ in range(2))
    print(f"bare COPY into UNLOGGED text tables (the floor): {floor:.1f}s", flush=True)
    print(f"parse workers: {config.ingest_parse_workers} (of {os.cpu_count()} cores)",
          flush=True)
    memory: dict = {}
    total, phases, payload, peak = run_import(config, folder, memory=memory)

    rows_by_phase = {f"load {name}": payload["counts"][key] for name, key in
                     zip(FILES, ("stops", "persons", "searches", "contraband", "search_bases"),
                         strict=True)}
    print(f"\n{'phase':<24}{'seconds':>9}{'rows':>14}{'rows/s':>12}")
    for name, seconds in phase_seconds(phases).items():
        rows = rows_by_phase.get(name)
        rate = f"{rows / seconds:,.0f}" if rows else ""
        print(f"{name:<24}{seconds:>9.1f}{rows or '':>14,}{rate:>12}"
              if rows else f"{name:<24}{seconds:>9.1f}{'':>14}{'':>12}")
    rows = sum(payload["counts"].values())
    print(f"\ntotal import: {total:.1f}s for {rows:,} rows ({rows / total:,.0f} rows/s), "
          f"{payload['rejected_rows']:,} lines rejected")
    print(f"peak memory of the ingest process: {peak / 2**20:.0f} MB (the largest "
          f"process), {memory['together'] / 2**20:.0f} MB with its parse workers (sampled)")
    print(f"import / floor: {total / floor:.2f}x (target: at most 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
