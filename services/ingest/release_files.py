"""Finding a release's single data file when its name is not fixed (md's
workbook, il's CSV): in the folder or one level down, any case; the
largest when there are several, the others logged. The reports an import
writes beside a release (REPORT_FILES) are never taken for it.

    largest_file(folder, (".csv",), skip=("rejects.csv",))
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

# Reports an import writes beside a release (services/ingest/import_folders.py).
REPORT_FILES = ("rejects.csv", "new_agencies.csv")


def _is_candidate(path: Path, suffixes: tuple[str, ...], skip: tuple[str, ...]) -> bool:
    name = path.name
    # Excel's lock files (~$name.xlsx) and macOS's resource forks (._name,
    # __MACOSX/) look like data files by name only; so do the reports a
    # loaded import leaves beside a release it no longer has.
    return (name.lower().endswith(suffixes) and name.lower() not in skip
            and name.lower() not in REPORT_FILES
            and not name.startswith(("~$", "._")) and "__MACOSX" not in path.parts
            and path.is_file())


def largest_file(folder: Path, suffixes: tuple[str, ...], skip: tuple[str, ...] = ()
                 ) -> Path | None:
    # The folder itself and one level down (a zip's top folder): deeper
    # files belong to something else.
    folder = Path(folder)
    found = sorted(path for path in (*folder.glob("*"), *folder.glob("*/*"))
                   if _is_candidate(path, suffixes, skip))
    if not found:
        return None
    chosen = max(found, key=lambda path: path.stat().st_size)
    if len(found) > 1:
        log.warning("%s holds %d candidate files (%s); loading the largest, %s", folder,
                    len(found), ", ".join(str(path.relative_to(folder)) for path in found),
                    chosen.relative_to(folder))
    return chosen
