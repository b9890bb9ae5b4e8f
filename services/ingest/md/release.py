"""Maryland's release as the shared pipeline sees it (the contract is in
services/ingest/nc/release.py's docstring).

The release is a zip holding one Excel workbook; its name varies, so the
pipeline knows it by the logical name `workbook` and `find_files` looks for
it. Its rows come from `workbook_batches`, not from text lines.
"""

from __future__ import annotations

import logging
from pathlib import Path

from services.ingest.md import schema, stop_reasons
from services.ingest.md.format import WORKBOOK, MdRows, workbook_batches
from shared.states import MD

log = logging.getLogger(__name__)

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls")


def _is_workbook(path: Path) -> bool:
    name = path.name
    # Excel's lock files (~$name.xlsx) and macOS's resource forks (._name,
    # __MACOSX/) look like workbooks by name only.
    return (name.lower().endswith(WORKBOOK_SUFFIXES) and not name.startswith(("~$", "._"))
            and "__MACOSX" not in path.parts and path.is_file())


class MdRelease:
    state = MD
    files = (WORKBOOK,)
    tables_sql = schema.TABLES
    copy_tables = schema.COPY_TABLES
    table_keys = schema.TABLE_KEYS
    foreign_keys = schema.FOREIGN_KEYS
    count_names = {WORKBOOK: "stops"}

    def find_files(self, folder: Path) -> dict[str, Path]:
        """{workbook: path} for the one .xlsx, .xlsm or .xls file under
        `folder` (any depth, any case); the largest when there are several;
        {} when there is none."""
        found = sorted(path for path in Path(folder).rglob("*") if _is_workbook(path))
        if not found:
            return {}
        chosen = max(found, key=lambda path: path.stat().st_size)
        if len(found) > 1:
            log.warning("%s holds %d workbooks (%s); loading the largest, %s", folder,
                        len(found), ", ".join(str(path.relative_to(folder)) for path in found),
                        chosen.relative_to(folder))
        return {WORKBOOK: chosen}

    def batches(self, file_name: str, path: Path, progress):
        return workbook_batches(path, progress)

    def parser(self, request: dict, rejects, agencies, engine) -> MdRows:
        return MdRows(rejects, agencies.id_for, stop_reasons.load(engine))
