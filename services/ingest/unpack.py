"""Safe unzipping: no entry may escape the destination, links are refused, and
the bytes actually written are capped (a zip's declared sizes can lie)."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath

from services.ingest.errors import ImportFailed

PHASE = "unpack"
CHUNK = 1 << 20


def safe_unzip(archive: Path, folder: Path, max_bytes: int, progress=lambda d, t: None
               ) -> list[Path]:
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
            written = 0
            paths = []
            for info in members:
                target = folder / PurePosixPath(info.filename)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(info) as source, open(target, "wb") as out:
                    while block := source.read(CHUNK):
                        written += len(block)
                        if written > max_bytes:
                            raise ImportFailed(
                                PHASE, f"{archive.name} unpacks to more than the limit of "
                                f"{max_bytes:,} bytes")
                        out.write(block)
                        progress(written, declared)
                paths.append(target)
            return paths
    except zipfile.BadZipFile as error:
        raise ImportFailed(PHASE, f"{archive.name} is not a readable zip file ({error})"
                           ) from error
    except (zipfile.LargeZipFile, NotImplementedError, EOFError) as error:
        raise ImportFailed(PHASE, f"{archive.name} could not be unpacked ({error})") from error


def _check_member(info: zipfile.ZipInfo, folder: Path) -> None:
    name = info.filename
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ImportFailed(PHASE, f"zip entry {name!r} is a symbolic link; refusing it")
    path = PurePosixPath(name.replace("\\", "/"))
    target = (folder / path).resolve()
    if path.is_absolute() or ".." in path.parts or not target.is_relative_to(folder):
        raise ImportFailed(PHASE, f"zip entry {name!r} points outside the destination folder; "
                           "refusing the archive")
