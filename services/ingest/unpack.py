"""Safe unzipping: no entry may escape the destination, links are refused, and
the bytes actually written are capped (a zip's declared sizes can lie).

The cap is the smaller of the configured one (INGEST_MAX_UNZIPPED_BYTES)
and the room on the destination's file system: its free space less a
reserve (INGEST_DISK_RESERVE_BYTES). A zip declaring more than that is
refused before anything is written; one lying about its sizes is stopped
when the bytes written pass it, so a zip bomb never fills the disk.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from services.ingest.errors import ImportFailed
from services.ingest.import_folders import MANIFEST, is_manifest_name

PHASE = "unpack"
CHUNK = 1 << 20

# before_write(files, new_folders): told what is about to be written, so the
# caller can record it first (services/ingest/import_folders.py).
BeforeWrite = Callable[[list[Path], list[Path]], None]


def safe_unzip(archive: Path, folder: Path, max_bytes: int, progress=lambda d, t: None,
               reserve: int = 0, before_write: BeforeWrite | None = None) -> list[Path]:
    folder = folder.resolve()
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = [info for info in zipped.infolist() if not info.is_dir()]
            for info in members:
                _check_member(info, folder)
            declared = sum(info.file_size for info in members)
            if declared > max_bytes:
                raise ImportFailed(PHASE, f"{archive.name} would unpack to {declared:,} bytes, "
                                   f"over the limit of {max_bytes:,} bytes "
                                   "(INGEST_MAX_UNZIPPED_BYTES)")
            free = _free_bytes(folder)
            room = free - reserve
            if declared > room:
                raise ImportFailed(
                    PHASE, f"{archive.name} would unpack to {declared:,} bytes, but the file "
                    f"system of {folder} has {free:,} bytes free, of which {reserve:,} stay "
                    "in reserve (INGEST_DISK_RESERVE_BYTES): make room (`odp files "
                    "--prune` removes the files of ended imports) or give DATA_DIR a "
                    "larger disk")
            cap = min(max_bytes, room)
            targets = [folder / PurePosixPath(info.filename) for info in members]
            if before_write is not None:
                before_write(targets, _new_folders(targets, folder))
            written = 0
            paths = []
            for info, target in zip(members, targets, strict=True):
                target.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(info) as source, open(target, "wb") as out:
                    while block := source.read(CHUNK):
                        written += len(block)
                        if written > cap:
                            raise ImportFailed(PHASE, _over(archive, declared, cap, max_bytes,
                                                            folder, free, reserve))
                        out.write(block)
                        progress(written, declared)
                paths.append(target)
            return paths
    except zipfile.BadZipFile as error:
        raise ImportFailed(PHASE, f"{archive.name} is not a readable zip file ({error})"
                           ) from error
    except (zipfile.LargeZipFile, NotImplementedError, EOFError) as error:
        raise ImportFailed(PHASE, f"{archive.name} could not be unpacked ({error})") from error


def _free_bytes(folder: Path) -> int:
    # The destination may not exist yet: its nearest existing ancestor is on
    # the file system it will be on.
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def _new_folders(targets: list[Path], folder: Path) -> list[Path]:
    """The folders under `folder` that writing `targets` will create."""
    new: set[Path] = set()
    for target in targets:
        for parent in target.parents:
            if parent == folder or not parent.is_relative_to(folder):
                break
            if not parent.exists():
                new.add(parent)
    return sorted(new)


def _over(archive: Path, declared: int, cap: int, max_bytes: int, folder: Path, free: int,
          reserve: int) -> str:
    if cap == max_bytes:
        return f"{archive.name} unpacks to more than the limit of {max_bytes:,} bytes"
    return (f"{archive.name} unpacks to more than the {declared:,} bytes it declares: "
            f"stopped at {cap:,} bytes, the room on the file system of {folder} "
            f"({free:,} bytes free, {reserve:,} kept in reserve, "
            "INGEST_DISK_RESERVE_BYTES)")


def _check_member(info: zipfile.ZipInfo, folder: Path) -> None:
    name = info.filename
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ImportFailed(PHASE, f"zip entry {name!r} is a symbolic link; refusing it")
    path = PurePosixPath(name.replace("\\", "/"))
    if is_manifest_name(path.name):
        # The record of what the import wrote decides what is removed later.
        raise ImportFailed(PHASE, f"zip entry {name!r} has the name of the import's own "
                           f"record ({MANIFEST}); refusing the archive")
    target = (folder / path).resolve()
    if path.is_absolute() or ".." in path.parts or not target.is_relative_to(folder):
        raise ImportFailed(PHASE, f"zip entry {name!r} points outside the destination folder; "
                           "refusing the archive")
