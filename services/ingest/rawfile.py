"""Streaming a raw text file in line batches, and streaming rows into COPY.

A release file is read in large blocks, never whole: stray NUL bytes and
carriage returns are dropped per block (cheap in C), the block is cut at
its last newline, and its lines go to the parser together with the number
of the first one. A file whose lines end in a carriage return alone (old
Mac line endings: a first block with CRs and no newline) has its CRs read
as newlines instead; a line longer than MAX_LINE is refused, so memory
stays flat whatever the file holds. Bytes that are not UTF-8 are read as Windows-1252, the
encoding of the states' legacy exports, so no line is lost to decoding.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from services.ingest.errors import ImportFailed

BLOCK = 4 << 20
DROPPED_BYTES = b"\x00\r"
# Far longer than any line of a state's release (a few hundred bytes).
MAX_LINE = 1 << 20


def line_batches(path: Path, progress: Callable[[int, int], None] = lambda d, t: None
                 ) -> Iterator[tuple[int, list[str]]]:
    """Yield (number of the first line, lines) for the whole file."""
    total = os.path.getsize(path)
    done = 0
    line_no = 1
    rest = b""
    carriage_returns_end_lines = None
    with open(path, "rb") as handle:
        while True:
            block = handle.read(BLOCK)
            if not block:
                break
            done += len(block)
            if carriage_returns_end_lines is None:
                carriage_returns_end_lines = b"\n" not in block and b"\r" in block
            if carriage_returns_end_lines:
                block = rest + block.translate(_CR_TO_LF, b"\x00")
            else:
                block = rest + block.translate(None, DROPPED_BYTES)
            cut = block.rfind(b"\n")
            if cut < 0:
                if len(block) > MAX_LINE:
                    raise ImportFailed(f"load {path.name}", (
                        f"{path.name}: line {line_no} runs past {MAX_LINE:,} bytes without "
                        "a line ending; the file is not a release's text file (or its "
                        "line endings are not newlines)"))
                rest = block
                continue
            rest = block[cut + 1:]
            lines = _decode(block[:cut]).split("\n")
            yield line_no, lines
            line_no += len(lines)
            progress(done, total)
    if rest.strip():
        yield line_no, [_decode(rest)]
    progress(total, total)


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

    def __init__(self, chunks: Iterable[str], ahead: int = 4):
        self._queue: queue.Queue = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        # The producer's error once `read` raised it: psycopg2 reports it as
        # a cancelled COPY, and the caller wants the error itself.
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._produce, args=(iter(chunks),),
                                        daemon=True, name="copy-producer")
        self._thread.start()

    def _produce(self, chunks) -> None:
        try:
            for chunk in chunks:
                if chunk:
                    self._put(chunk.encode("utf-8"))
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


def copy_text(value: str) -> str:
    """Escape a value for COPY's text format. Tabs and line breaks can only
    reach a value through a quoted field."""
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value
