"""An .xlsx/.xlsm worksheet read as a stream, in blocks of whole rows, so
memory holds a few blocks whatever the size of the sheet.

python-calamine loads a sheet whole (about 1.6 KB a row of Maryland's
release: 1.6 GB for a million rows in one sheet). Here the sheet's XML
part is decompressed as it is read and cut after a `</row>` every
`block_bytes`; python-calamine reads each block as a workbook of its own:
the original's workbook, relationships, styles and shared strings parts,
and the sheet's part with the sheet's own opening (up to and including
`<sheetData>`) and the block's rows. So a cell is read by the same code as
before, and the rows are those python-calamine gives for the whole sheet
(tests/test_md_xlsx_stream.py compares them). The blocks' copies and
checksums cost a few percent more processor time; as python-calamine lets
go of the GIL while it parses, PARSERS blocks are parsed at once, on
threads of their own, while the rows before them are used, which more
than makes up for it on two cores. XML pull parsers in Python were
measured too: ElementTree's took five times as long as python-calamine on
the benchmark's sheets, a regular-expression tokenizer twice as long.

Each block's workbook carries the whole shared strings table, which
python-calamine parses again for each block and holds while it parses: a
large table makes blocks larger (SHARED_STRINGS_SHARE times its XML, up
to MAX_BLOCK_BYTES) and parsed one at a time. A cut is never made inside
a comment, CDATA section or processing instruction. Rows without an `r`
attribute are numbered on from the previous block's, as python-calamine
numbers them. A sheet whose numbered rows go back across blocks fails
(`XlsxError`): python-calamine would merge them into the earlier rows,
which a stream has already handed on.
"""

from __future__ import annotations

import os
import queue
import re
import tempfile
import zipfile
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from xml.etree import ElementTree

from python_calamine import CalamineWorkbook

BLOCK_BYTES = 8 << 20
MAX_BLOCK_BYTES = 16 << 20
SHARED_STRINGS_SHARE = 2
READ_BYTES = 4 << 20
PARSERS = 2
# The parts python-calamine reads when it opens a workbook, besides sheets.
WORKBOOK_PARTS = ("[Content_Types].xml", "_rels/.rels", "xl/workbook.xml",
                  "xl/_rels/workbook.xml.rels", "xl/styles.xml", "xl/sharedStrings.xml")

_SHEET_DATA = re.compile(rb"<((?:[\w.-]+:)?)sheetData\b[^>]*?(/?)>")
_ROOT = re.compile(rb"<([A-Za-z_][\w.:-]*)")
_FIRST_ROW = re.compile(rb"<(?:[\w.-]+:)?row\b([^>]*)>")
_ROW_NUMBER = re.compile(rb"\sr\s*=")
_ROW_TAG = re.compile(rb"<(?:[\w.-]+:)?row(?=[\s/>])([^>]*)>")
_ROW_VALUE = re.compile(rb"""\sr\s*=\s*["']([0-9]+)["']""")
_OPENER = re.compile(rb"<!--|<!\[CDATA\[|<\?")
_CLOSER = {b"<!--": b"-->", b"<![CDATA[": b"]]>", b"<?": b"?>"}


class XlsxError(Exception):
    """The workbook, or one of its sheets, cannot be read."""


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


class StreamedWorkbook:
    """An .xlsx/.xlsm file: its worksheets' names, and each sheet's rows as
    a stream (`sheet(name).rows()`)."""

    def __init__(self, path, block_bytes: int | None = None):
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as error:
            raise XlsxError(f"not a zip file ({error})") from error
        try:
            # Like python-calamine, parts are found whatever the case of their names.
            self._members = {name.lower(): name for name in self._zip.namelist()}
            self.parts = {member: self._zip.read(member) for member in
                          filter(None, map(self._member, WORKBOOK_PARTS))}
            self._sheets = self._read_sheets()
        except (ElementTree.ParseError, zipfile.BadZipFile, zlib.error, EOFError) as error:
            self.close()
            raise XlsxError(f"malformed or damaged ({error})") from error
        except BaseException:
            self.close()
            raise
        strings = SHARED_STRINGS_SHARE * len(
            self.parts.get(self._member("xl/sharedStrings.xml") or "", b""))
        self.block_bytes = block_bytes or min(max(BLOCK_BYTES, strings), MAX_BLOCK_BYTES)
        self.parsers = PARSERS if strings <= BLOCK_BYTES else 1

    def close(self) -> None:
        self._zip.close()

    def _member(self, path: str) -> str | None:
        return self._members.get(path.lower())

    def _read_sheets(self) -> list[tuple[str, str]]:
        """(name, part) of each sheet, in workbook order, the part's path
        resolved as python-calamine resolves it."""
        workbook = self._member("xl/workbook.xml")
        if workbook is None:
            raise XlsxError("the workbook has no xl/workbook.xml")
        rels = self._member("xl/_rels/workbook.xml.rels")
        targets = {}
        if rels is not None:
            targets = {rel.get("Id"): rel.get("Target", "") for rel in
                       ElementTree.fromstring(self.parts[rels]).iter()
                       if _local(rel.tag) == "Relationship"}
        sheets = []
        for element in ElementTree.fromstring(self.parts[workbook]).iter():
            if _local(element.tag) != "sheet":
                continue
            rel = next((value for key, value in element.attrib.items()
                        if key.endswith("}id")), None)
            if rel not in targets:
                raise XlsxError("Relationship not found")
            target = targets[rel]
            path = (target[1:] if target.startswith("/") else
                    target if target.startswith("xl/") else f"xl/{target}")
            sheets.append((element.get("name", ""), path))
        return sheets

    def worksheet_names(self) -> list[str]:
        """The worksheets, in workbook order (chart and dialog sheets left out)."""
        return [name for name, path in self._sheets if path.split("/")[1:2] == ["worksheets"]]

    def sheet(self, name: str) -> StreamedSheet:
        for sheet_name, path in self._sheets:
            if sheet_name == name:
                member = self._member(path)
                if member is None:
                    raise XlsxError(f"the workbook has no {path}")
                return StreamedSheet(self, name, member)
        raise XlsxError(f"Worksheet '{name}' not found")

    def worksheet_bytes(self) -> int:
        """The size of the worksheets' XML, all together."""
        names = set(self.worksheet_names())
        members = [self._member(path) for name, path in self._sheets if name in names]
        return sum(self.size(member) for member in members if member is not None)

    def open(self, member: str):
        return self._zip.open(member)

    def size(self, member: str) -> int:
        return self._zip.getinfo(member).file_size


class StreamedSheet:
    """One worksheet's rows, block by block (`blocks`). Once they are read,
    `height` and `width` are those of the cells with a value
    (python-calamine's `end` + 1; 0 for a sheet without any); `consumed`
    counts the bytes of the sheet's XML read so far, of `size`."""

    def __init__(self, book: StreamedWorkbook, name: str, member: str):
        self.book = book
        self.name = name
        self.member = member
        self.size = book.size(member)
        self.consumed = 0
        self.height = 0
        self.width = 0
        self._last = -1     # the index of the last row with a value so far

    def blocks(self) -> Iterator[tuple[int, list[list]]]:
        """(index of the first row, rows) for each block: the rows from the
        block's first with a value to its last, in order, as python-calamine
        gives them for the whole sheet (values as it converts them, empty
        cells ""), each from column A."""
        try:
            yield from self._scratch_blocks()
        except (zipfile.BadZipFile, zlib.error, EOFError) as error:
            raise XlsxError(f"the sheet's part is damaged ({error})") from error

    def _scratch_blocks(self) -> Iterator[tuple[int, list[list]]]:
        # python-calamine reads a workbook from a file faster than from a
        # file object: each parser has a file of its own.
        parsers = self.book.parsers
        scratches: queue.SimpleQueue = queue.SimpleQueue()
        paths = []
        for _ in range(parsers):
            handle, path = tempfile.mkstemp(prefix="md-block-", suffix=".xlsx")
            os.close(handle)
            paths.append(path)
            scratches.put(path)
        pool = ThreadPoolExecutor(max_workers=parsers, thread_name_prefix="md-block")
        ahead: deque = deque()
        try:
            with self.book.open(self.member) as handle:
                for opening, rows, closing in self._cuts(handle):
                    ahead.append(pool.submit(self._parse, scratches, opening, rows, closing))
                    if len(ahead) > parsers:
                        if (block := self._in_order(ahead.popleft().result())) is not None:
                            yield block
            while ahead:
                if (block := self._in_order(ahead.popleft().result())) is not None:
                    yield block
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for path in paths:
                os.unlink(path)

    def _cuts(self, handle) -> Iterator[tuple[bytes, tuple[bytes, memoryview], bytes]]:
        """(the sheet's opening, (what goes before the block, a block of
        whole rows), the closing tags)."""
        limit = self.book.block_bytes
        head = b""
        while True:
            data = self._read(handle)
            head += data
            found = _SHEET_DATA.search(head)
            if found is not None or not data:
                break
        root = None if found is None else _ROOT.search(head, 0, found.start())
        if found is None or root is None:
            raise XlsxError("Unexpected end of xml, expecting '</sheetData>'")
        if found.group(2):          # <sheetData/>
            return
        opening = head[:found.end()]
        prefix = found.group(1)
        closing = b"</%ssheetData></%s>" % (prefix, root.group(1))
        row_end = b"</%srow>" % prefix
        row_start = b"<%srow" % prefix
        data_end = b"</%ssheetData>" % prefix
        next_row = 0            # the index python-calamine gives a row without `r`
        chunks = [head[found.end():]]
        size = len(chunks[0])
        while True:
            data = self._read(handle)
            if data:
                chunks.append(data)
                size += len(data)
                if size < limit:
                    continue
            block = b"".join(chunks)
            cut = _cut(block, row_end)
            # The rows end before </sheetData>, so it is after the last row's end.
            end = block.find(data_end, cut)
            last = end >= 0 or not data
            if end >= 0:
                cut = end
            elif not data:
                # The part ends inside its rows: python-calamine says how.
                cut = len(block)
            elif not cut:            # not one whole row yet: read on
                chunks, size = [block], len(block)
                continue
            first = _FIRST_ROW.search(block, 0, cut)
            lead = b""
            if first is not None and next_row and not _ROW_NUMBER.search(first.group(1)):
                # Rows without numbers are numbered on from the previous row, so
                # an empty row with that number goes first.
                lead = b'%s r="%d"/>' % (row_start, next_row)
            yield opening, (lead, memoryview(block)[:cut]), closing
            next_row = _row_after(block, cut, row_start, next_row)
            if last:
                return
            chunks = [block[cut:]]
            size = len(chunks[0])

    def _read(self, handle) -> bytes:
        data = handle.read(READ_BYTES)
        self.consumed += len(data)
        return data

    def _parse(self, scratches: queue.SimpleQueue, opening: bytes,
               rows: tuple[bytes, memoryview], closing: bytes):
        """python-calamine's (start, end, rows) for one block; None for a
        block without a row."""
        lead, rows = rows
        if _FIRST_ROW.search(rows) is None:
            return None
        scratch = scratches.get()
        try:
            # Stored, not compressed: the block was just decompressed.
            with zipfile.ZipFile(scratch, "w", zipfile.ZIP_STORED) as piece:
                for member, content in self.book.parts.items():
                    piece.writestr(member, content)
                with piece.open(self.member, "w") as part:
                    part.write(opening)
                    part.write(lead)
                    part.write(rows)
                    part.write(closing)
            try:
                book = CalamineWorkbook.from_path(scratch)
                try:
                    sheet = book.get_sheet_by_name(self.name)
                    start, end = sheet.start, sheet.end
                    values = [] if start is None else sheet.to_python(skip_empty_area=True)
                    del sheet
                finally:
                    book.close()
            except Exception as error:  # python-calamine's errors for a broken sheet
                raise XlsxError(str(error) or type(error).__name__) from error
        finally:
            scratches.put(scratch)
        return start, end, values

    def _in_order(self, parsed) -> tuple[int, list[list]] | None:
        """(index of the first row, rows) of a parsed block, after the
        blocks before it; None for a block without a value."""
        if parsed is None or parsed[0] is None:
            return None
        (first_index, offset), end, values = parsed
        if first_index <= self._last:
            raise XlsxError(f"row {first_index + 1} comes after row {self._last + 1}: "
                            f"the rows of a sheet must be in order")
        self._last = end[0]
        self.height = end[0] + 1
        self.width = max(self.width, end[1] + 1)
        if offset:
            pad = [""] * offset
            values = [pad + row for row in values]
        return first_index, values


def _row_after(block: bytes, end: int, row_start: bytes, next_row: int) -> int:
    """The index python-calamine gives a row without `r` after the rows
    of block[:end], `next_row` being the one it gave before them: one past
    the last row's, which is its `r` or one past the row before."""
    unnumbered = 0
    position = end
    while True:
        position = block.rfind(row_start, 0, position)
        if position < 0:
            return next_row + unnumbered
        tag = _ROW_TAG.match(block, position)
        if tag is None:             # another element whose name starts with "row"
            continue
        number = _ROW_VALUE.search(tag.group(1))
        if number is not None:
            return int(number.group(1)) + unnumbered
        unnumbered += 1


def _cut(block: bytes, row_end: bytes) -> int:
    """Where `block` (which starts between two rows) ends its last whole
    row: after the last `row_end` that is not in a comment, CDATA section
    or processing instruction; 0 when there is none."""
    cut = block.rfind(row_end)
    if cut < 0:
        return 0
    if not _opens(block, b"!") and not _opens(block, b"?"):
        return cut + len(row_end)
    safe = position = 0
    while True:
        opener = _OPENER.search(block, position)
        end = block.rfind(row_end, position, len(block) if opener is None else opener.start())
        if end >= 0:
            safe = end + len(row_end)
        if opener is None:
            return safe
        closer = block.find(_CLOSER[opener.group()], opener.end())
        if closer < 0:
            return safe
        position = closer + len(_CLOSER[opener.group()])


def _opens(block: bytes, mark: bytes) -> bool:
    """Whether "<" + `mark` is in `block`. Markup is full of "<", which
    slows a search for the pair; `mark` alone is rare, and memchr finds it
    fast."""
    position = block.find(mark)
    while position >= 0:
        if position and block[position - 1] == 0x3C:
            return True
        position = block.find(mark, position + 1)
    return False
