"""Streaming a raw text file in line batches, and streaming rows into COPY.

A release file is read in large blocks, never whole: stray NUL bytes and
carriage returns are dropped per block (cheap in C), the block is cut at
its last newline, and its lines go to the parser together with the number
of the first one. A file whose lines end in a carriage return alone (old
Mac line endings: a first block with CRs and no newline) has its CRs read
as newlines instead; a line longer than MAX_LINE is refused, so memory
stays flat whatever the file holds. Bytes that are not UTF-8 are read as Windows-1252, the
encoding of the states' legacy exports, so no line is lost to decoding.

A file can also be read in pieces (`piece_batches`), each a run of whole
blocks, by processes of their own: a piece yields exactly the batches the
whole file's reading yields for those blocks (the same lines, decoded
together the same way, since a block that is not UTF-8 is decoded as a
whole), numbered from 1 within the piece.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from services.ingest.errors import ImportFailed

BLOCK = 4 << 20
DROPPED_BYTES = b"\x00\r"
# Far longer than any line of a state's release (a few hundred bytes).
MAX_LINE = 1 << 20


class Reading(NamedTuple):
    """How a file is cut into batches; a piece read elsewhere must be read
    with the same."""

    block: int
    max_line: int
    # Lines end in a carriage return alone (None: not known yet, decided by
    # the first block).
    carriage_returns: bool | None


def reading_of(path: Path) -> Reading:
    """The whole file's reading, decided the way `line_batches` decides it."""
    with open(path, "rb") as handle:
        first = handle.read(BLOCK)
    return Reading(BLOCK, MAX_LINE, _carriage_returns_end_lines(first) if first else False)


def line_batches(path: Path, progress: Callable[[int, int], None] = lambda d, t: None
                 ) -> Iterator[tuple[int, list[str]]]:
    """Yield (number of the first line, lines) for the whole file."""
    total = os.path.getsize(path)
    with open(path, "rb") as handle:
        yield from _batches(handle, path.name, Reading(BLOCK, MAX_LINE, None), b"", 1,
                            None, lambda done: progress(done, total))
    progress(total, total)


class LineTooLong(ImportFailed):
    """A line past MAX_LINE; its number can be told again once a piece's
    place in the file is known."""

    def __init__(self, file_name: str, line_no: int, max_line: int):
        super().__init__(f"load {file_name}", (
            f"{file_name}: line {line_no} runs past {max_line:,} bytes without a line "
            "ending; the file is not a release's text file (or its line endings are not "
            "newlines)"))
        self.file_name = file_name
        self.line_no = line_no
        self.max_line = max_line

    def __reduce__(self):
        return type(self), (self.file_name, self.line_no, self.max_line)

    def after(self, lines_before: int) -> LineTooLong:
        return LineTooLong(self.file_name, self.line_no + lines_before, self.max_line)


def piece_batches(path: Path, start: int, stop: int, reading: Reading, first_line: int = 1
                  ) -> Iterator[tuple[int, list[str]]]:
    """The batches of the lines that end in the raw bytes [start, stop) of
    the file (and, in its last piece, the unended last line), numbered from
    `first_line`. `start` is a multiple of the block size; so is `stop`,
    unless it is the end of the file."""
    with open(path, "rb") as handle:
        total = os.fstat(handle.fileno()).st_size
        rest = _carried_into(handle, start, reading)
        if rest is None:
            # More than the whole-file reading could carry: it fails in an
            # earlier piece, which says where.
            return
        handle.seek(start)
        yield from _batches(handle, path.name, reading, rest, first_line,
                            stop if stop < total else None, lambda done: None)


def _carried_into(handle, start: int, reading: Reading) -> bytes | None:
    """The start of the line that runs into `start`, as the whole-file reading
    carries it there: what follows the last line ending before `start`."""
    ends = (b"\n", b"\r") if reading.carriage_returns else (b"\n",)
    drop = b"\x00" if reading.carriage_returns else DROPPED_BYTES
    # Longer than this, the whole-file reading refused the line before `start`.
    limit = max(reading.block, reading.max_line)
    pieces: list[bytes] = []
    carried = 0
    position = start
    while position > 0:
        begin = max(0, position - reading.block)
        handle.seek(begin)
        raw = handle.read(position - begin)
        cut = max(raw.rfind(end) for end in ends)
        piece = raw[cut + 1:].translate(None, drop)
        pieces.append(piece)
        carried += len(piece)
        if cut >= 0:
            break
        if carried > limit:
            return None
        position = begin
    return b"".join(reversed(pieces))


def _carriage_returns_end_lines(first_block: bytes) -> bool:
    return b"\n" not in first_block and b"\r" in first_block


def _batches(handle, name: str, reading: Reading, rest: bytes, line_no: int,
             stop: int | None, progress: Callable[[int], None]
             ) -> Iterator[tuple[int, list[str]]]:
    """The reading loop the whole file and its pieces share: from the
    handle's position to `stop` (None: the end of the file, whose unended
    last line is then yielded too)."""
    block_size, max_line, carriage_returns_end_lines = reading
    done = handle.tell()
    while stop is None or done < stop:
        block = handle.read(block_size if stop is None else min(block_size, stop - done))
        if not block:
            break
        done += len(block)
        if carriage_returns_end_lines is None:
            carriage_returns_end_lines = _carriage_returns_end_lines(block)
        if carriage_returns_end_lines:
            block = rest + block.translate(_CR_TO_LF, b"\x00")
        else:
            block = rest + block.translate(None, DROPPED_BYTES)
        cut = block.rfind(b"\n")
        if cut < 0:
            if len(block) > max_line:
                raise LineTooLong(name, line_no, max_line)
            rest = block
            continue
        rest = block[cut + 1:]
        lines = _decode(block[:cut]).split("\n")
        yield line_no, lines
        line_no += len(lines)
        progress(done)
    if stop is None and rest.strip():
        yield line_no, [_decode(rest)]


_CR_TO_LF = bytes.maketrans(b"\r", b"\n")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


class CopySource:
    """A file-like object psycopg2's copy_expert reads from.

    The rows are produced on a thread of their own, a few chunks ahead, so
    parsing the next chunk overlaps with the server taking in this one
    (psycopg2 lets go of the GIL while it sends). Errors of the producer
    come out of `read`, which aborts the COPY.
    """

    def __init__(self, chunks: Iterable[str | bytes], ahead: int = 4):
        self._queue: queue.Queue = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        # The producer's error once `read` raised it: psycopg2 reports it as
        # a cancelled COPY, and the caller wants the error itself.
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._produce, args=(_closable(chunks),),
                                        daemon=True, name="copy-producer")
        self._thread.start()

    def _produce(self, chunks) -> None:
        try:
            for chunk in chunks:
                if chunk:
                    self._put(chunk if isinstance(chunk, bytes) else chunk.encode("utf-8"))
                if self._stop.is_set():
                    # The COPY is over: the rest of the file is not parsed
                    # (and work queued for parse workers is dropped).
                    chunks.close()
                    return
            self._put(b"")
        except BaseException as error:  # handed to the reading side
            self._put(error)

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def read(self, size: int = -1) -> bytes:
        item = self._queue.get()
        if isinstance(item, BaseException):
            self.error = item
            raise item
        return item


    def close(self) -> None:
        """Stop the producer (after a failed COPY) and wait for it."""
        self._stop.set()
        self._thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _closable(chunks: Iterable) -> Iterator:
    """`chunks` as a generator, which can be closed (running its cleanup)."""
    if hasattr(chunks, "close"):
        return chunks
    return (chunk for chunk in chunks)


def copy_text(value: str) -> str:
    """Escape a value for COPY's text format. Tabs and line breaks can only
    reach a value through a quoted field."""
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value
