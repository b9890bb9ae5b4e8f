"""`odp files`: the import folders kept in DATA_DIR, and pruning them now
(services/ingest/import_folders.py says what is kept and for how long).

    STATE  IMPORT  STATUS  KEPT                    SIZE    AGE    FOLDER
    nc     42      failed  release files, reports  5.6 GB  2d 3h  /data/nc/42
    nc     43      loaded  reports                 1.2 kB  5h 2m  /data/nc/43
    2 folders, 5.6 GB in /data

STATUS is the import's record in ingest.import_runs: loaded, failed,
running, interrupted (recorded as running while no import of its state is
under way: its process died), unknown (no record: never pruned when the
folder has no manifest either), or ? when the database does not answer.
AGE is the time since the import last wrote there.
"""

from __future__ import annotations

import sys
import time

import psycopg2
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from services.ingest import pipeline
from services.ingest.import_folders import KeptFolder, import_runs_of, kept_folders
from shared.config import Config
from shared.db import make_engine
from shared.states import STATES

COLUMNS = ("STATE", "IMPORT", "STATUS", "KEPT", "SIZE", "AGE", "FOLDER")


def run(args, config: Config) -> int:
    states = [args.state] if args.state else sorted(STATES)
    if args.prune:
        try:
            for state in states:
                _prune(config, state)
        except (SQLAlchemyError, psycopg2.Error) as error:
            print(f"error: nothing more pruned: the database did not answer "
                  f"({_first_line(error)}); without it a running import's folder cannot "
                  "be told from an ended one's", file=sys.stderr)
            return 1
    folders = [folder for folder in kept_folders(config.data_dir) if folder.state in states]
    statuses = _statuses(config, folders)
    now = time.time()
    rows = [(folder.state, folder.import_id, statuses.get(folder.import_id, "unknown"),
             folder.kept or "-", size(folder.size), age(now - folder.last_write),
             str(folder.path)) for folder in folders]
    if rows:
        widths = [max(len(row[column]) for row in (COLUMNS, *rows))
                  for column in range(len(COLUMNS))]
        for row in (COLUMNS, *rows):
            print("  ".join(value.ljust(width) for value, width in zip(row, widths,
                                                                         strict=True)).rstrip())
    total = sum(folder.size for folder in folders)
    root = config.data_dir.resolve()
    if folders:
        print(f"{len(folders)} folder{'s' if len(folders) != 1 else ''}, {size(total)} "
              f"in {root}")
    else:
        print(f"nothing kept in {root}")
    return 0


def _prune(config: Config, state: str) -> None:
    pruned = pipeline.prune_now(config, state)
    if pruned is None:
        print(f"{state}: an import is running; it prunes the {state} folders when it ends")
        return
    for done in pruned:
        kept = "" if done.everything else ", reports kept"
        print(f"removed {state} import {done.folder.import_id} ({done.status}): "
              f"{done.removed} files, {size(done.freed)}{kept}: {done.folder.path}")


def _statuses(config: Config, folders: list[KeptFolder]) -> dict[str, str]:
    if not folders:
        return {}
    engine = make_engine(config)
    try:
        runs = import_runs_of(engine, {folder.import_id for folder in folders})
        with engine.connect() as conn:
            busy = {state for state in {folder.state for folder in folders}
                    if _locked(conn, pipeline.state_lock_key(state))}
    except SQLAlchemyError as error:
        print(f"note: the database did not answer ({_first_line(error)}): the imports' "
              "statuses are unknown (?)", file=sys.stderr)
        return {folder.import_id: "?" for folder in folders}
    finally:
        engine.dispose()
    statuses = {}
    for folder in folders:
        run = runs.get(folder.import_id)
        if run is None:
            continue
        interrupted = run.status == "running" and folder.state not in busy
        statuses[folder.import_id] = "interrupted" if interrupted else run.status
    return statuses


def _locked(conn, key: int) -> bool:
    """Whether a session holds the advisory lock `key` (a bigint key shows in
    pg_locks as its high and low 32 bits)."""
    return bool(conn.execute(text(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND classid::bigint = :high AND objid::bigint = :low AND objsubid = 1)"),
        {"high": key >> 32, "low": key & 0xFFFFFFFF}).scalar())


def _first_line(error: Exception) -> str:
    return str(getattr(error, "orig", None) or error).strip().splitlines()[0]


def size(count: int) -> str:
    if count < 1000:
        return f"{count} B"
    value = float(count)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            break
    return f"{value:,.1f} {unit}"


def age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else f"{seconds}s"
