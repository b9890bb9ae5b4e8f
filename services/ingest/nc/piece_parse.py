"""One piece of Stop.txt or PERSON.txt parsed in a parse worker process.

A piece is a run of whole blocks of the file (rawfile.piece_batches). It is
parsed by a fresh NcRows that knows nothing of the pieces before it: its
rows, rejects, counters, the agencies its stops name and the id sets it
filled come back as a `PieceResult`, line numbers counted from the piece's
first line. The import's process (piece_merge.py) checks the result against
the pieces before it and takes it in file order.

Agency ids are the import's to give (in the order agencies are first seen in
the file), so a name whose id the task did not carry stands in the rows as
`\\x00<index>\\x00`, an index into `unresolved`; a release's NUL bytes never
reach a row, so that cannot be a value.
"""

from __future__ import annotations

import pickle
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from services.ingest.idset import IdPart
from services.ingest.nc.format import PERSON_FILE, STOP_FILE, NcRows
from services.ingest.rawfile import Reading, piece_batches
from services.ingest.rejects import MAX_CONTENT

# The id sets a piece of each file fills (as NcRows names them), and those
# it looks ids up in: a piece is sound when none of the ids it filled in was
# already in a looked-up set of the pieces before it.
FILLS = {
    STOP_FILE: ("stops", "dropped_stops", "rejected_stops"),
    PERSON_FILE: ("persons", "persons_refused"),
}
LOOKS_UP = {
    STOP_FILE: ("stops", "dropped_stops"),
    PERSON_FILE: ("persons",),
}
# What a piece of PERSON.txt needs of the whole of Stop.txt.
STOP_SETS = FILLS[STOP_FILE]


@dataclass(frozen=True)
class PieceTask:
    file_name: str
    path: Path
    start: int
    stop: int
    reading: Reading
    min_stop_id: int | None
    max_stop_id: int | None
    # Agency name -> id as COPY text, for the names the import has given ids.
    agency_ids: dict[str, str] = field(default_factory=dict)
    # A pickle of Stop.txt's STOP_SETS, for a piece of a later file.
    stop_sets: Path | None = None


@dataclass
class PieceResult:
    texts: list[bytes]
    # The piece's lines, blank ones included: the next piece's numbers follow.
    line_count: int
    lines: int
    rejects: list[tuple[int, str, str]]
    dropped: Counter
    # Agencies in the order their first loaded stop came.
    agencies: list[str]
    unresolved: list[str]
    filled: dict[str, IdPart]
    # Raised by the parse after the rows above: the import ends with it.
    error: BaseException | None = None


class _CollectedRejects:
    """Stands for the rejects file in a worker; the import writes them."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str, str]] = []

    def add(self, file_name: str, line_no: int, reason: str, content: str) -> None:
        self.rows.append((line_no, reason, content[:MAX_CONTENT]))


class _AgencyTokens:
    """`agency_id_for` of a piece: the import's id when the task carries one,
    else a stand-in; each name is noted when first asked for."""

    def __init__(self, known: dict[str, str]):
        self.known = known
        self.tokens: dict[str, str] = {}
        self.names: list[str] = []
        self.unresolved: list[str] = []

    def __call__(self, name: str) -> str:
        token = self.tokens.get(name)
        if token is None:
            token = self.known.get(name)
            if token is None:
                token = f"\x00{len(self.unresolved)}\x00"
                self.unresolved.append(name)
            self.tokens[name] = token
            self.names.append(name)
        return token


_stop_sets: tuple[Path, tuple] | None = None


def _load_stop_sets(path: Path) -> tuple:
    """Read once per worker and file, not once per piece."""
    global _stop_sets
    if _stop_sets is None or _stop_sets[0] != path:
        with open(path, "rb") as handle:
            _stop_sets = (path, pickle.load(handle))
    return _stop_sets[1]


def parse_piece(task: PieceTask) -> PieceResult:
    rejects = _CollectedRejects()
    agencies = _AgencyTokens(task.agency_ids)
    rows = NcRows(rejects, agencies, task.min_stop_id, task.max_stop_id)
    if task.stop_sets is not None:
        for name, ids in zip(STOP_SETS, _load_stop_sets(task.stop_sets), strict=True):
            setattr(rows, name, ids)
    line_count = 0

    def counted():
        nonlocal line_count
        for first, lines in piece_batches(task.path, task.start, task.stop, task.reading):
            line_count += len(lines)
            yield first, lines

    texts = []
    error = None
    try:
        for text in rows.rows_for(task.file_name)(counted()):
            texts.append(text.encode("utf-8"))
    except Exception as raised:  # the import raises it in its turn, after the rows before it
        error = raised
    return PieceResult(
        texts=texts, line_count=line_count, lines=rows.lines[task.file_name],
        rejects=rejects.rows, dropped=rows.dropped,
        agencies=agencies.names, unresolved=agencies.unresolved,
        filled={name: getattr(rows, name).part() for name in FILLS[task.file_name]},
        error=_sendable(error))


def _sendable(error: BaseException | None) -> BaseException | None:
    """The error itself when it survives pickling, else its words."""
    if error is None:
        return None
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
