"""Illinois' release as the shared pipeline sees it (the contract is
services/ingest/release_contract.py's `Release`).

The zip holds one CSV whose name changes from release to release, so the
release names it by the logical name `stops.csv` and `find_files` finds the
real file: the one `.csv` under the folder, at any depth and in any case of
its name; when there are several, the largest (the others are logged).
Batches are the pipeline's default text line batches.
"""

from __future__ import annotations

from pathlib import Path

from services.ingest.il import schema
from services.ingest.il.format import CSV_FILE, FILES, IlRows
from services.ingest.release_contract import Release
from services.ingest.release_files import largest_file
from shared.states import IL

# The pipeline writes its rejects file (pipeline.REJECTS_FILE) into the same
# folder as the release; on a retry it is there when the files are looked for.
NOT_RELEASE_FILES = ("rejects.csv",)


def find_csv(folder: Path) -> Path | None:
    """The release's CSV under `folder`, or None when there is none."""
    return largest_file(folder, (".csv",), skip=NOT_RELEASE_FILES)


class IlRelease(Release):
    state = IL
    files = FILES
    tables_sql = schema.TABLES
    copy_tables = schema.COPY_TABLES
    table_keys = schema.TABLE_KEYS
    foreign_keys = schema.FOREIGN_KEYS
    # Names used in events and reports for the rows of each file.
    count_names = {CSV_FILE: "stops"}

    def find_files(self, folder: Path) -> dict[str, Path]:
        path = find_csv(folder)
        return {CSV_FILE: path} if path is not None else {}

    def parser(self, request: dict, rejects, agencies, engine) -> IlRows:
        return IlRows(rejects, agencies.id_for)
