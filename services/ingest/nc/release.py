"""North Carolina's release as the shared pipeline sees it.

A state's release object gives the pipeline (services/ingest/pipeline.py):
`state`; `files`, the release's file names in load order (the first names
every agency); `tables_sql`, `copy_tables` (file -> table), `table_keys`
and `foreign_keys` (table -> SQL run after its COPY); `count_names` (file ->
name in events); and `parser(request, rejects, agencies, engine)`, an
object with `rows_for(file)(batches)` yielding COPY text and the counters
`lines`, `loaded` and `dropped`. Optionally `find_files(folder)` ({file:
path}; by default the files' exact names, in any case) and
`batches(file, path, progress)` (by default rawfile.line_batches: text
lines, numbered from 1).
"""

from services.ingest.nc import schema
from services.ingest.nc.format import FILES, NcRows
from shared.states import NC


class NcRelease:
    state = NC
    files = FILES
    tables_sql = schema.TABLES
    copy_tables = schema.COPY_TABLES
    table_keys = schema.TABLE_KEYS
    foreign_keys = schema.FOREIGN_KEYS
    # Names used in events and reports for the rows of each file.
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
