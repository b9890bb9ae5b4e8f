"""Stop.txt and PERSON.txt parsed in pieces by the parse workers, loaded
exactly as the whole file parsed in the import's process would be.

Pieces (runs of whole blocks, so every line is decoded with the same
neighbours as before) go to the workers a few ahead; their results are taken
in file order, and each is checked before anything of it is used. A piece
was parsed without the id sets of the pieces before it; it is sound when no
id it filled in a set (a stop loaded, dropped or rejected; a person loaded
or refused) was already in a set it looked ids up in (stops loaded or
dropped; persons loaded): every line that reads another line's outcome
(a repeated id) names such an id, so then each of its lookups answered as it
would have in one pass. A sound piece's rejects are written with their
line numbers moved past the lines before it, its agencies get their ids in
the order its stops first named them (services/ingest/agencies.py gives a
new name the next id), its stand-ins become those ids, and its id sets and
counters are added to the import's. A piece that is not sound (an id
repeated across pieces: rare) is parsed again here, in turn, with the
import's own sets. Either way the rows, rejects, agency ids and counts are
those of one pass, in the same order.

Rows are COPYed from this process; the workers only parse. A COPY per
worker would send a piece's rows before the piece was checked, and measured
no faster on two cores, where parsing, not COPY, is most of the work.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from services.ingest.nc.format import PERSON_FILE, STOP_FILE, NcRows
from services.ingest.nc.piece_parse import (
    FILLS,
    LOOKS_UP,
    STOP_SETS,
    PieceResult,
    PieceTask,
    parse_piece,
)
from services.ingest.parse_pool import ParsePool
from services.ingest.rawfile import LineTooLong, piece_batches, reading_of

FILES_IN_PIECES = tuple(FILLS)
# A piece is this many of rawfile's blocks (4 MB): big enough that a piece's
# fixed costs (fresh id sets, a result to send back) are noise, small enough
# that the first rows reach COPY soon, the last pieces keep both workers busy
# and a few pieces in flight cost little.
PIECE_BLOCKS = 1
# Pieces sent out beyond one per worker, so none waits while results are taken in.
AHEAD = 4
STAND_IN = re.compile(rb"\x00(\d+)\x00")


def rows_in_pieces(parse: NcRows, file_name: str, path: Path,
                   progress: Callable[[int, int], None], pool: ParsePool
                   ) -> Iterator[bytes] | None:
    """The file's COPY text, parsed in pieces by `pool`; None when the file is
    to be parsed in one pass (one worker, or a file of one piece)."""
    if pool.size < 2 or file_name not in FILES_IN_PIECES:
        return None
    reading = reading_of(path)
    total = os.path.getsize(path)
    size = reading.block * PIECE_BLOCKS
    if total <= size:
        return None
    spans = [(start, min(start + size, total)) for start in range(0, total, size)]
    return _merged(parse, file_name, path, progress, pool, reading, spans, total)


def _merged(parse, file_name, path, progress, pool, reading, spans, total) -> Iterator[bytes]:
    stop_sets = _write_stop_sets(parse) if file_name != STOP_FILE else None
    agency_ids: dict[str, str] = {}
    pending: deque = deque()
    waiting = iter(spans)

    def send(span) -> None:
        task = PieceTask(file_name, path, span[0], span[1], reading, parse.min_stop_id,
                         parse.max_stop_id, dict(agency_ids), stop_sets)
        pending.append((span, pool.submit(parse_piece, task)))

    try:
        for span in waiting:
            send(span)
            if len(pending) >= pool.size + AHEAD:
                break
        lines_before = 0
        while pending:
            span, future = pending.popleft()
            result: PieceResult = future.result()
            following = next(waiting, None)
            if following is not None:
                send(following)
            if _sound(parse, file_name, result):
                yield from _taken(parse, file_name, result, lines_before, agency_ids)
            else:
                yield from _parsed_again(parse, file_name, path, span, reading, lines_before)
            lines_before += result.line_count
            progress(span[1], total)
        progress(total, total)
    finally:
        for _, future in pending:
            future.cancel()
        if stop_sets is not None:
            stop_sets.unlink(missing_ok=True)


def _write_stop_sets(parse: NcRows) -> Path:
    handle, name = tempfile.mkstemp(prefix="odp-nc-stops-", suffix=".pickle")
    with os.fdopen(handle, "wb") as out:
        pickle.dump(tuple(getattr(parse, name) for name in STOP_SETS), out,
                    protocol=pickle.HIGHEST_PROTOCOL)
    return Path(name)


def _sound(parse: NcRows, file_name: str, result: PieceResult) -> bool:
    return not any(getattr(parse, looked_up).intersects(part)
                   for part in result.filled.values() for looked_up in LOOKS_UP[file_name])


def _taken(parse: NcRows, file_name: str, result: PieceResult, lines_before: int,
           agency_ids: dict[str, str]) -> Iterator[bytes]:
    for line_no, reason, content in result.rejects:
        parse.rejects.add(file_name, line_no + lines_before, reason, content)
    for name in result.agencies:
        agency_ids[name] = str(parse.agency_id_for(name))
    for name in FILLS[file_name]:
        getattr(parse, name).absorb(result.filled[name])
    parse.lines[file_name] += result.lines
    parse.loaded[file_name] = len(parse.persons if file_name == PERSON_FILE else parse.stops)
    parse.dropped.update(result.dropped)
    texts = result.texts
    if result.unresolved:
        ids = [agency_ids[name].encode() for name in result.unresolved]
        texts = [STAND_IN.sub(lambda found: ids[int(found[1])], text) for text in texts]
    yield from texts
    if isinstance(result.error, LineTooLong):
        raise result.error.after(lines_before)
    if result.error is not None:
        raise result.error


def _parsed_again(parse: NcRows, file_name: str, path: Path, span, reading,
                  lines_before: int) -> Iterator[bytes]:
    # The parse counts the lines of the batches it is given, from nought.
    lines_counted = parse.lines[file_name]
    parse.lines[file_name] = 0
    batches = piece_batches(path, span[0], span[1], reading, first_line=lines_before + 1)
    for text in parse.rows_for(file_name)(batches):
        yield text.encode("utf-8")
    parse.lines[file_name] += lines_counted
