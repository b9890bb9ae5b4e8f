"""The contract between a state's release format and the shared pipeline
(services/ingest/pipeline.py); the formats themselves are registered in
services/ingest/formats.py.

A state's format is a `Release` subclass: its files in load order (the first
names every agency), the SQL of its staging tables, which table each file is
COPYed into, the keys and foreign keys built after each COPY, and a
`parser` whose `rows_for(file)(batches)` turns the file's batches into COPY
text while counting `lines`, `loaded` and `dropped` rows per file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Protocol

from services.ingest.rawfile import line_batches
from shared.states import State

SAMPLES = Path(__file__).resolve().parent / "samples"

# progress(done, total): bytes (or rows) of the file read so far.
Progress = Callable[[int, int | None], None]


class ReleaseRows(Protocol):
    """The parse of one import, made by `Release.parser`."""

    lines: Counter        # file -> lines (or rows) read
    loaded: Counter       # file -> rows sent to COPY
    dropped: Counter      # reason -> rows left out on purpose, not rejected

    def rows_for(self, file_name: str) -> Callable[[Iterable], Iterator[str]]:
        """A function from the file's batches to COPY text (tab-separated lines)."""


class Release(ABC):
    state: State
    files: tuple[str, ...]
    tables_sql: str
    copy_tables: Mapping[str, str]                 # file -> table
    table_keys: Mapping[str, tuple[str, ...]]      # table -> SQL after its COPY
    foreign_keys: Mapping[str, tuple[str, ...]]    # table -> SQL after its keys
    count_names: Mapping[str, str]                 # file -> name in events
    # Whether an import can be limited to a stop id range (nc's development aid).
    limits_stop_ids: bool = False

    @abstractmethod
    def parser(self, request: dict, rejects, agencies, engine) -> ReleaseRows:
        """The parse of this import; `agencies.id_for(name)` gives agency ids."""

    def find_files(self, folder: Path) -> dict[str, Path]:
        """{file: path} of the release's files found under `folder`; by default
        the files' exact names, in any case, at any depth."""
        wanted = {name.lower(): name for name in self.files}
        found: dict[str, Path] = {}
        for path in sorted(folder.rglob("*")):
            name = wanted.get(path.name.lower())
            if name and name not in found and path.is_file():
                found[name] = path
        return found

    def batches(self, file_name: str, path: Path, progress: Progress):
        """The file's batches for the parser; by default text lines,
        numbered from 1 (rawfile.line_batches)."""
        return line_batches(path, progress)

    def rows(self, parse: ReleaseRows, file_name: str, path: Path, progress: Progress,
             pool) -> Iterator[str | bytes]:
        """The file's COPY text; by default `parse.rows_for(file)` over its
        batches, in the import's process. A format may parse a big file in
        pieces with `pool`, the import's parse workers
        (services/ingest/parse_pool.py), to the same rows."""
        return parse.rows_for(file_name)(self.batches(file_name, path, progress))

    @property
    def sample(self) -> Path | None:
        """The bundled sample release `make run` imports, when there is one."""
        path = SAMPLES / f"{self.state.code}_sample.zip"
        return path if path.is_file() else None
