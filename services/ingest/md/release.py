"""Maryland's release as the shared pipeline sees it (the contract is in
services/ingest/release_contract.py's `Release`).

The release is a zip holding one Excel workbook; its name varies, so the
pipeline knows it by the logical name `workbook` and `find_files` looks for
it. Its rows come from `workbook_batches`, not from text lines.
"""

from __future__ import annotations

from pathlib import Path

from services.ingest.md import schema, stop_reasons
from services.ingest.md.format import WORKBOOK, MdRows, workbook_batches
from services.ingest.release_contract import Release
from services.ingest.release_files import largest_file
from shared.states import MD

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls")


class MdRelease(Release):
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
        chosen = largest_file(folder, WORKBOOK_SUFFIXES)
        if chosen is None:
            return {}
        return {WORKBOOK: chosen}

    def batches(self, file_name: str, path: Path, progress):
        return workbook_batches(path, progress)

    def parser(self, request: dict, rejects, agencies, engine) -> MdRows:
        return MdRows(rejects, agencies.id_for, stop_reasons.load(engine))
