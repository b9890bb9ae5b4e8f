"""North Carolina's release as the shared pipeline sees it (the contract is
services/ingest/release_contract.py's `Release`)."""

from services.ingest.nc import schema
from services.ingest.nc.format import FILES, NcRows
from services.ingest.nc.piece_merge import rows_in_pieces
from services.ingest.release_contract import Release
from shared.states import NC


class NcRelease(Release):
    state = NC
    files = FILES
    tables_sql = schema.TABLES
    copy_tables = schema.COPY_TABLES
    table_keys = schema.TABLE_KEYS
    foreign_keys = schema.FOREIGN_KEYS
    # Names used in events and reports for the rows of each file.
    limits_stop_ids = True
    count_names = {
        "Stop.txt": "stops",
        "PERSON.txt": "persons",
        "Search.txt": "searches",
        "Contraband.txt": "contraband",
        "SearchBasis.txt": "search_bases",
    }

    def parser(self, request: dict, rejects, agencies, engine) -> NcRows:
        return NcRows(rejects, agencies.id_for, request.get("min_stop_id"),
                      request.get("max_stop_id"))

    def rows(self, parse, file_name, path, progress, pool):
        pieces = rows_in_pieces(parse, file_name, path, progress, pool)
        if pieces is None:
            return super().rows(parse, file_name, path, progress, pool)
        return pieces
