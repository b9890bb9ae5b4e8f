"""What an import leaves in the data folder (DATA_DIR), and removing it.

Before writing a file into its folder (the download,
the unpacked members, the rejects file) an import records it in the
folder's manifest (MANIFEST), so a crash mid-write leaves it listed, and
only what is listed is ever removed: an operator's own files in a dataset's
destination stay, and so does anything reached through a symbolic link.
A folder outside DATA_DIR (`odp ingest --dest` elsewhere) records nothing
and loses nothing.

    folder = ImportFolder.open(path, "nc", "42", config.data_dir, lock_conn)
    folder.before_write([path / "STOPS_Extract.zip"], [])
    folder.close()
    prune(config, engine, "nc", lock_conn)   # holding the state's import lock

`prune` runs at the end of each import of the state, and from `odp files
--prune`:

- a loaded import keeps its reports (rejects.csv, and new_agencies.csv,
  which `odp ingest` writes after the import) and its manifest; its
  release files go;
- a failed import (or one whose process died) keeps everything for
  INGEST_KEEP_FAILED_DAYS after its last write, or until an import of the
  state started after it has loaded, whichever comes first; then
  everything it wrote goes, its rejects file too (a release of the wrong
  format rejects every line: as large as the release itself);
- the folder of a running import is never touched. The pruner holds the
  state's import lock, so no import of the state runs, and takes each
  folder's lock exclusively, which every import holds shared while it
  runs: an advisory lock keyed by the folder's path, so an import of
  another state in the same folder counts, on any host.

Folders from before manifests, `<DATA_DIR>/<state>/<digits>`, can only be
admin import <digits>'s own (admin refuses a dataset destination there):
with that import's record in ingest.import_runs they are pruned the same
way, each file in them counted as written by it; without one they are
listed and left alone.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from sqlalchemy import func, select

from services.ingest.release_files import REPORT_FILES
from shared.db import advisory_key
from shared.states import STATES
from shared.tables import import_runs

log = logging.getLogger(__name__)

MANIFEST = ".odp-import.json"


def is_manifest_name(name: str) -> bool:
    """Whether a file named `name` would be (or shadow) the folder's
    manifest or its partial file: the import's own record, which no
    download or archive entry may take."""
    return name.startswith(MANIFEST)
DAY = 86400.0


def inside(folder: Path, data_dir: Path) -> Path | None:
    """The folder's real path when it lies strictly inside DATA_DIR (after
    symbolic links), else None: only such folders are ever cleaned."""
    root = Path(data_dir).resolve()
    real = Path(folder).resolve()
    if real == root or not real.is_relative_to(root):
        return None
    return real


def folder_lock_key(real: Path) -> int:
    return advisory_key(f"ingest-folder:{real}")


def read_manifest(real: Path) -> dict | None:
    try:
        manifest = json.loads((real / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or not all(
            isinstance(manifest.get(key), str) for key in ("state", "import_id")):
        return None
    return manifest


def _write_manifest(real: Path, manifest: dict) -> None:
    # Replaced whole, so a reader (another state's pruner) never sees half of it.
    partial = real / f"{MANIFEST}.partial"
    partial.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(partial, real / MANIFEST)


class ImportFolder:
    """The folder one import writes into, while it runs."""

    def __init__(self, path: Path, real: Path | None, manifest: dict | None, conn):
        self.path = Path(path)
        self.real = real
        self.manifest = manifest
        self._conn = conn

    @classmethod
    def open(cls, path: Path, state: str, import_id: str, data_dir: Path, conn
             ) -> ImportFolder:
        """Make the folder and claim it; `conn` is the import's own session
        (autocommit), which keeps the folder's lock until `close`."""
        real = inside(path, data_dir)
        if real is None:
            Path(path).mkdir(parents=True, exist_ok=True)
            return cls(path, None, None, None)
        with conn.cursor() as cursor:
            # Taken before the folder is made: a pruner holding it may be
            # about to remove the folder.
            cursor.execute("SELECT pg_advisory_lock_shared(%s)", (folder_lock_key(real),))
        created = not real.exists()
        real.mkdir(parents=True, exist_ok=True)
        manifest = read_manifest(real) or {"created": created, "written": [], "dirs": []}
        # A folder used again (a dataset imported again) keeps the earlier
        # imports' files listed: this import may be reading them.
        manifest.update(state=state, import_id=import_id)
        _write_manifest(real, manifest)
        return cls(path, real, manifest, conn)

    def before_write(self, files, folders=()) -> None:
        """Record files (and folders) the import is about to create."""
        if self.real is None:
            return
        written = set(self.manifest.get("written", []))
        dirs = set(self.manifest.get("dirs", []))
        written.update(name for name in map(self._relative, files) if name)
        dirs.update(name for name in map(self._relative, folders) if name)
        self.manifest.update(written=sorted(written), dirs=sorted(dirs))
        _write_manifest(self.real, self.manifest)

    def _relative(self, path: Path) -> str | None:
        for base in (self.real, self.path, self.path.absolute()):
            try:
                relative = Path(path).relative_to(base)
            except ValueError:
                continue
            return relative.as_posix() if relative.parts else None
        return None

    def close(self) -> None:
        if self.real is not None:
            with self._conn.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock_shared(%s)",
                               (folder_lock_key(self.real),))
            self.real = None


# -- what is kept -----------------------------------------------------------------


@dataclass
class KeptFolder:
    path: Path                    # its real path, inside DATA_DIR
    state: str
    import_id: str
    manifest: dict | None         # None: a folder from before manifests
    written: list[str] = field(default_factory=list)   # relative paths
    dirs: list[str] = field(default_factory=list)
    size: int = 0                 # bytes of the import's files still there
    last_write: float = 0.0       # their newest modification time (epoch s)
    release: bool = False         # release files are still there
    reports: bool = False         # reports are there

    @property
    def kept(self) -> str:
        return ", ".join(what for what, there in (("release files", self.release),
                                                   ("reports", self.reports)) if there)


def _is_report(name: str) -> bool:
    return name in REPORT_FILES


def _safe_path(real: Path, name: str) -> Path | None:
    """`real/name` when it stays in `real` with no symbolic link on the way."""
    relative = PurePosixPath(name)
    if not relative.parts or relative.is_absolute() or ".." in relative.parts:
        return None
    path = real.joinpath(*relative.parts)
    try:
        if path.parent.resolve() != path.parent:
            return None
    except OSError:
        return None
    return path


def _describe(real: Path, state: str, import_id: str, manifest: dict | None) -> KeptFolder:
    folder = KeptFolder(real, state, import_id, manifest)
    if manifest is not None:
        folder.written = [name for name in manifest.get("written", []) if isinstance(name, str)]
        folder.dirs = [name for name in manifest.get("dirs", []) if isinstance(name, str)]
        # `odp ingest` writes new_agencies.csv after the import: shown, not removed.
        names = [*folder.written, MANIFEST,
                 *(name for name in REPORT_FILES if name not in folder.written)]
    else:
        for dirpath, dirnames, filenames in os.walk(real):
            here = Path(dirpath)
            folder.dirs += [(here / name).relative_to(real).as_posix() for name in dirnames]
            folder.written += [(here / name).relative_to(real).as_posix()
                               for name in filenames]
        names = folder.written
    for name in names:
        path = _safe_path(real, name)
        try:
            info = os.lstat(path) if path is not None else None
        except OSError:
            continue
        if info is None or not stat.S_ISREG(info.st_mode):
            continue
        folder.size += info.st_size
        folder.last_write = max(folder.last_write, info.st_mtime)
        if name != MANIFEST:
            if _is_report(name):
                folder.reports = True
            else:
                folder.release = True
    return folder


def kept_folders(data_dir: Path) -> list[KeptFolder]:
    """Every import folder in DATA_DIR: those with a manifest, and the
    default folders from before manifests."""
    root = Path(data_dir).resolve()
    found = []
    # Links are not followed: what they lead to is not the imports'.
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        here = Path(dirpath)
        if MANIFEST in filenames:
            manifest = read_manifest(here)
            if manifest is not None:
                found.append(_describe(here, manifest["state"], manifest["import_id"],
                                       manifest))
            continue
        parts = here.relative_to(root).parts
        if len(parts) == 2 and parts[0] in STATES and parts[1].isdigit():
            found.append(_describe(here, parts[0], parts[1], None))
    return found


@dataclass
class Run:
    status: str
    started_at: object
    finished_at: object


def import_runs_of(engine, import_ids) -> dict[str, Run]:
    with engine.connect() as conn:
        rows = conn.execute(select(import_runs.c.import_id, import_runs.c.status,
                                   import_runs.c.started_at, import_runs.c.finished_at)
                            .where(import_runs.c.import_id.in_(list(import_ids))))
        return {row.import_id: Run(row.status, row.started_at, row.finished_at)
                for row in rows}


# -- pruning ------------------------------------------------------------------------


@dataclass
class Pruned:
    folder: KeptFolder
    status: str
    removed: int                  # files
    freed: int                    # bytes
    everything: bool              # False: the reports stay


@contextmanager
def _exclusively(conn, real: Path):
    """True while no import holds the folder; nobody can start to meanwhile."""
    key = folder_lock_key(real)
    with conn.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", (key,))
        free = cursor.fetchone()[0]
    try:
        yield free
    finally:
        if free:
            with conn.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", (key,))


def prune(config, engine, state: str, conn, now: float | None = None) -> list[Pruned]:
    """Remove what `state`'s ended imports no longer need (module docstring).
    The caller holds the state's import lock on `conn` (autocommit)."""
    now = time.time() if now is None else now
    folders = [folder for folder in kept_folders(config.data_dir) if folder.state == state]
    if not folders:
        return []
    runs = import_runs_of(engine, {folder.import_id for folder in folders})
    with engine.connect() as db:
        latest = db.execute(select(func.max(import_runs.c.started_at),
                                   func.max(import_runs.c.finished_at))
                            .where(import_runs.c.state == state,
                                   import_runs.c.status == "loaded")).one()
    keep = config.ingest_keep_failed_days * DAY
    pruned = []
    for seen in folders:
        run = runs.get(seen.import_id)
        if seen.manifest is None and run is None:
            continue  # not known to be an import's
        with _exclusively(conn, seen.path) as free:
            if not free:
                log.info("%s is in use by a running import; left alone", seen.path)
                continue
            # Read again now that nobody can use it.
            folder = _describe(seen.path, seen.state, seen.import_id,
                               read_manifest(seen.path) if seen.manifest else None)
            if seen.manifest is not None and (
                    folder.manifest is None or folder.manifest["state"] != state
                    or folder.manifest["import_id"] != seen.import_id):
                continue
            status = run.status if run else "unknown"
            if status == "loaded":
                done = _remove(folder, status, everything=False)
            else:
                if run is not None:
                    superseded = latest[0] is not None and run.started_at < latest[0]
                else:
                    superseded = (latest[1] is not None
                                  and folder.last_write < latest[1].timestamp())
                if not superseded and now - folder.last_write <= keep:
                    continue
                done = _remove(folder, status, everything=True)
            if done.removed or done.everything:
                pruned.append(done)
    for done in pruned:
        log.info("removed %d files (%s bytes) of %s import %s (%s) from %s", done.removed,
                 f"{done.freed:,}", state, done.folder.import_id, done.status,
                 done.folder.path)
    return pruned


def _remove(folder: KeptFolder, status: str, everything: bool) -> Pruned:
    real = folder.path
    removed = freed = 0
    left = []
    for name in folder.written:
        if not everything and _is_report(name):
            left.append(name)
            continue
        path = _safe_path(real, name)
        try:
            info = os.lstat(path) if path is not None else None
        except FileNotFoundError:
            continue
        # Only regular files: an import writes nothing else, so a link
        # found here was put by someone else, and what it points at is not ours.
        if info is None or not stat.S_ISREG(info.st_mode):
            left.append(name)
            continue
        os.unlink(path)
        removed += 1
        freed += info.st_size
    dirs_left = []
    for name in sorted(folder.dirs, key=lambda name: -len(PurePosixPath(name).parts)):
        path = _safe_path(real, name)
        try:
            if path is None:
                raise OSError
            path.rmdir()  # only when empty; a link is not a folder to rmdir
        except OSError:
            dirs_left.append(name)
    if folder.manifest is None:
        if everything:
            _rmdir_quietly(real)
    elif everything:
        # What is left is not the import's (a link put in place of a file).
        (real / MANIFEST).unlink(missing_ok=True)
        if folder.manifest.get("created"):
            _rmdir_quietly(real)
    elif removed:
        folder.manifest.update(written=sorted(left), dirs=sorted(dirs_left))
        _write_manifest(real, folder.manifest)
    return Pruned(folder, status, removed, freed, everything)


def _rmdir_quietly(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass  # not empty: someone else's files are in it
