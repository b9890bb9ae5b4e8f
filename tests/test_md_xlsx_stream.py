"""The streaming .xlsx reader (services/ingest/md/xlsx_stream.py) against
the whole-sheet python-calamine reader it replaced: row for row the same
cell texts out of `workbook_batches`, the same COPY text and rejects out of
MdRows, the same failures, with the sheet cut into blocks anywhere a row
ends; and a memory peak that does not grow with the sheet. No database."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from datetime import date, datetime, time
from pathlib import Path

import pytest

from services.ingest.agencies import AgencyIds
from services.ingest.errors import ImportFailed
from services.ingest.md import xlsx_stream
from services.ingest.md.format import (
    READER_VARIABLE,
    WORKBOOK,
    MdRows,
    _CalamineBook,
    _open_book,
    _StreamBook,
    workbook_batches,
)
from services.ingest.md.synthetic import (
    MD_HEADER,
    generate_rows,
    sheets_of,
    stop_row,
    write_xls,
    write_xlsx,
)
from services.ingest.rejects import Rejects
from shared import md_stop_reasons
from shared.states import MD

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "services" / "ingest" / "samples" / "md_sample.zip"

# (bytes read from the part at a time, bytes of a block): the defaults, and
# blocks of a row or two, so that every place a row ends is a cut somewhere;
# blocks of some tens of rows for the larger workbooks.
BLOCKINGS = {"default": None, "row by row": (61, 1), "few rows": (997, 2500)}
LARGE_BLOCKINGS = {"default": None, "tens of rows": (4093, 30_000)}


def block_sizes(monkeypatch, sizes) -> None:
    if sizes is not None:
        read, block = sizes
        monkeypatch.setattr(xlsx_stream, "READ_BYTES", read)
        monkeypatch.setattr(xlsx_stream, "BLOCK_BYTES", block)
        monkeypatch.setattr(xlsx_stream, "MAX_BLOCK_BYTES", block)


@pytest.fixture(params=list(BLOCKINGS))
def blocking(request, monkeypatch):
    block_sizes(monkeypatch, BLOCKINGS[request.param])
    return request.param


@pytest.fixture(params=list(LARGE_BLOCKINGS))
def large_blocking(request, monkeypatch):
    block_sizes(monkeypatch, LARGE_BLOCKINGS[request.param])
    return request.param


def read(path: Path, reader: str, batch_rows: int = 7):
    """Every batch, the last progress report, and the failure's message."""
    batches, reports = [], []
    try:
        for first, rows in workbook_batches(path, lambda done, total: reports.append(
                (done, total)), batch_rows=batch_rows, reader=reader):
            batches.append((first, [list(row) for row in rows]))
    except ImportFailed as error:
        return batches, None, error.message
    assert all(done <= total for done, total in reports)
    return batches, reports[-1] if reports else None, None


def rows_of(batches) -> list[list[str]]:
    return [row for _, rows in batches for row in rows]


def assert_same(path: Path) -> list[list[str]]:
    """The stream's rows, batches, last report and failure are the whole
    sheet reader's; its rows are returned."""
    streamed = read(path, "stream")
    whole = read(path, "calamine")
    assert rows_of(streamed[0]) == rows_of(whole[0])
    assert streamed == whole
    return rows_of(streamed[0])


# -- workbooks written as the suite writes them ------------------------------------

def typed_rows() -> list[list]:
    """A stop row for each kind of value the md tests put in cells."""
    values = [
        {"STOPDATE": date(2015, 3, 1)}, {"STOPDATE": datetime(2015, 3, 1, 14, 30)},
        {"STOPDATE": datetime(2016, 2, 29, 0, 0, 1)}, {"STOPDATE": "3/1/15"},
        {"STOPDATE": date(2012, 12, 31)}, {"STOPDATE": "13/45/2015"}, {"STOPDATE": ""},
        {"TIME_OF_STOP": time(14, 5)}, {"TIME_OF_STOP": time(0, 0)},
        {"TIME_OF_STOP": time(20, 5, 9)}, {"TIME_OF_STOP": "8:30 PM"},
        {"TIME_OF_STOP": None}, {"DOB": date(1985, 5, 12)}, {"DOB": datetime(1985, 5, 12)},
        {"DOB": "00/00/00"}, {"DOB": None}, {"OFFICERID": 1234}, {"OFFICERID": 1234.0},
        {"OFFICERID": 12.5}, {"OFFICERID": -3.0}, {"OFFICERID": 0.1 + 0.2},
        {"OFFICERID": 12345678901234567}, {"OFFICERID": "007"}, {"OFFICERID": None},
        {"OFFICERID": "  "}, {"OFFICERID": " padded "}, {"OFFICERID": "a\\b"},
        {"OFFICERID": True}, {"OFFICERID": False}, {"DURATION": 10},
        {"LOCATION": "RT 50 & <MD-2> \"north\""}, {"LOCATION": "line\nbreak"},
        {"LOCATION": "tab\there"}, {"LOCATION": "ünïcödé ✓ 𝄞"}, {"AGENCY": ""},
        {"AGENCY": " MSP "}, {"ETHNICITY": "W."}, {"STOP_REASON": "21-801\\1"},
    ]
    return [stop_row(**value) for value in values]


def test_typed_cells_in_one_sheet(tmp_path, blocking):
    path = write_xlsx(tmp_path / "typed.xlsx", [[MD_HEADER, *typed_rows()]])
    rows = assert_same(path)
    assert len(rows) == 1 + len(typed_rows())


def shared(path: Path) -> Path:
    """The workbook with its inline strings moved to a shared strings
    table, as Excel writes them (openpyxl writes every string inline)."""
    strings: dict[tuple[str, str], int] = {}

    def share(match) -> str:
        index = strings.setdefault((match[2] or "", match[3]), len(strings))
        return f'{match[1]}t="s"><v>{index}</v></c>'

    inline_cell = re.compile(r'(<c [^>]*?)t="inlineStr"><is><t( xml:space="preserve")?>'
                             r"([^<]*)</t></is></c>")
    out = path.with_name(f"shared-{path.name}")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name.startswith("xl/worksheets/"):
                data = inline_cell.sub(share, data.decode()).encode()
            target.writestr(name, data)
        target.writestr("xl/sharedStrings.xml", f'<sst xmlns="{MAIN}">' + "".join(
            f"<si><t{space}>{text}</t></si>" for space, text in strings) + "</sst>")
    return out


def test_typed_cells_with_shared_strings(tmp_path, blocking):
    path = write_xlsx(tmp_path / "typed.xlsx", [[MD_HEADER, *typed_rows()],
                                                [MD_HEADER, *stops(1, 30)]])
    rows = assert_same(shared(path))
    assert rows == assert_same(path)


def test_typed_cells_written_by_openpyxl_in_its_ordinary_mode(tmp_path, blocking):
    """With a dimension, and formulas kept without values."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for values in [MD_HEADER, *typed_rows()]:
        sheet.append(values)
    sheet.append(["=1+1", "=A2", 3.5, "text", "text"])
    book.create_sheet("Second").append(MD_HEADER)
    book["Second"].append(stop_row(OFFICERID=4321))
    path = tmp_path / "ordinary.xlsx"
    book.save(path)
    assert_same(path)
    assert_same(shared(path))


def stops(first: int, count: int) -> list[list]:
    return [stop_row(OFFICERID=str(n), DOB="1/1/1980") for n in range(first, first + count)]


SHEETS = {
    "later headers, blanks, an empty and a headerless sheet": [
        [MD_HEADER, *stops(1, 5)],
        [[f" {name.lower()}" for name in MD_HEADER], *stops(6, 3), [None] * 19, *stops(9, 4)],
        [],
        stops(13, 2),
    ],
    "blank rows": [[MD_HEADER, [None] * 19, stops(1, 1)[0], ["  "] * 19, [None] * 19,
                    *stops(2, 2)]],
    "below and right of A1": [[[], [None, *MD_HEADER], [None, *stop_row(OFFICERID="7")]],
                              [[None, *MD_HEADER], [], [None, *stop_row(OFFICERID="8")]]],
    "a narrower sheet": [[MD_HEADER, *stops(1, 5)],
                         [row[:-1] for row in [MD_HEADER, *stops(6, 2)]]],
    "a wider headerless sheet": [[MD_HEADER, *stops(1, 5)],
                                 [row + ["extra"] for row in stops(6, 12)]],
    "a headerless sheet narrower at first": [[MD_HEADER, *stops(1, 3)],
                                             [stop_row(AGENCY=""), *stops(4, 20)]],
    "another header": [[MD_HEADER, *stops(1, 2)],
                       [[MD_HEADER[1], MD_HEADER[0], *MD_HEADER[2:]], *stops(3, 2)]],
    "a header only": [[MD_HEADER]],
    "no rows": [[]],
    "rows without a header": [stops(1, 3)],
    "the end-to-end test's": [
        [MD_HEADER, stop_row(STOPDATE="3/1/2015", TIME_OF_STOP="11:30 PM", ETHNICITY="WHITE"),
         stop_row(STOPDATE="6/1/2012", ETHNICITY="W.")],
        [MD_HEADER, stop_row(STOPDATE="1/1/2016", TIME_OF_STOP="12:05 AM"),
         stop_row(STOPDATE="2/3/2016", STOP_REASON="20-102")],
    ],
}


@pytest.mark.parametrize("name", list(SHEETS))
def test_sheets_as_the_md_tests_write_them(tmp_path, blocking, name):
    assert_same(write_xlsx(tmp_path / "stops.xlsx", SHEETS[name]))


def test_generated_release_in_sheets_and_in_one(tmp_path, large_blocking):
    rows = list(generate_rows(3000, seed=5))
    for per_sheet in (1200, 5000):
        path = write_xlsx(tmp_path / f"{per_sheet}.xlsx", sheets_of(rows, per_sheet))
        assert len(assert_same(path)) == 3001


def test_the_sample_release(tmp_path, large_blocking):
    with zipfile.ZipFile(SAMPLE) as archive:
        archive.extractall(tmp_path)
    rows = assert_same(tmp_path / "MD_stops.xlsx")
    assert rows[0][:3] == MD_HEADER[:3]
    assert len(rows) > 1000


def parse(path: Path, reader: str, tmp_path: Path):
    """MdRows's COPY text, counters and rejects for the workbook."""
    rejects = Rejects(tmp_path / f"rejects-{reader}.csv")
    agencies = AgencyIds(MD.code, {})
    parser = MdRows(rejects, agencies.id_for, md_stop_reasons.default())
    chunks = list(parser.rows_for(WORKBOOK)(workbook_batches(path, reader=reader)))
    rejects.close()
    return (chunks, parser.lines, parser.loaded, parser.dropped, dict(agencies.used),
            rejects.path.read_text())


def test_the_stops_loaded_are_the_same(tmp_path, large_blocking):
    """The import's own results: COPY text, counts, agencies and rejects."""
    path = write_xlsx(tmp_path / "stops.xlsx",
                      sheets_of(generate_rows(4000, seed=9, bad_share=0.01), 1500))
    streamed = parse(path, "stream", tmp_path)
    assert streamed == parse(path, "calamine", tmp_path)
    assert streamed[2][WORKBOOK] > 3000 and "AGENCY is empty" in streamed[5]


# -- workbooks written by hand: what other writers put in a sheet ----------------------

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
DATES = ('<numFmts count="4"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/>'
         '<numFmt numFmtId="165" formatCode="[h]:mm"/><numFmt numFmtId="166" '
         'formatCode="&quot;Y: &quot;0.00"/><numFmt numFmtId="167" formatCode="#,##0*y"/>'
         '</numFmts><cellXfs count="10"><xf numFmtId="0"/><xf numFmtId="164"/>'
         '<xf numFmtId="21"/><xf numFmtId="14"/><xf numFmtId="165"/><xf numFmtId="22"/>'
         '<xf numFmtId="166"/><xf numFmtId="167"/><xf numFmtId="46"/><xf/></cellXfs>')


def handmade(path: Path, sheets: list[str], strings: list[str] | None = None,
             styles: str = DATES, date1904: bool = False, names=None, folders=None,
             hidden=()) -> Path:
    """A workbook whose sheets' XML is given: whole documents, or what goes
    in <sheetData> (a <worksheet> is put around it); `folders` puts a sheet
    elsewhere than worksheets/ (chartsheets/, say)."""
    names = names or [f"Sheet{n}" for n in range(1, len(sheets) + 1)]
    folders = folders or ["worksheets"] * len(sheets)
    entries = "".join(f'<sheet name="{name}" sheetId="{n}" r:id="rId{n}"'
                      f'{" state=&quot;hidden&quot;" if name in hidden else ""}/>'
                      .replace("&quot;", '"') for n, name in enumerate(names, 1))
    rels = "".join(f'<Relationship Id="rId{n}" Type="{RELS}/worksheet" '
                   f'Target="/xl/{folder}/sheet{n}.xml"/>'
                   for n, folder in enumerate(folders, 1))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns='
                         '"http://schemas.openxmlformats.org/package/2006/content-types"/>')
        archive.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships xmlns='
                         '"http://schemas.openxmlformats.org/package/2006/relationships">'
                         f'<Relationship Id="rId1" Type="{RELS}/officeDocument" '
                         'Target="xl/workbook.xml"/></Relationships>')
        pr = '<workbookPr date1904="1"/>' if date1904 else ""
        archive.writestr("xl/workbook.xml", f'<?xml version="1.0"?><workbook xmlns="{MAIN}" '
                         f'xmlns:r="{RELS}">{pr}<sheets>{entries}</sheets></workbook>')
        if strings is not None:
            rels += (f'<Relationship Id="rIdS" Type="{RELS}/sharedStrings" '
                     'Target="sharedStrings.xml"/>')
            archive.writestr("xl/sharedStrings.xml", f'<?xml version="1.0"?><sst xmlns='
                             f'"{MAIN}">{"".join(strings)}</sst>')
        archive.writestr("xl/_rels/workbook.xml.rels", '<?xml version="1.0"?><Relationships '
                         'xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                         f'{rels}<Relationship Id="rIdT" Type="{RELS}/styles" '
                         'Target="styles.xml"/></Relationships>')
        archive.writestr("xl/styles.xml", f'<?xml version="1.0"?><styleSheet xmlns="{MAIN}">'
                         f'{styles}</styleSheet>')
        for n, sheet in enumerate(sheets, 1):
            if not sheet.startswith("<?xml"):
                sheet = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                         f'<worksheet xmlns="{MAIN}" xmlns:r="{RELS}"><dimension ref="A1"/>'
                         f'<sheetData>{sheet}</sheetData><pageMargins left="0.7"/>'
                         '</worksheet>')
            archive.writestr(f"xl/{folders[n - 1]}/sheet{n}.xml", sheet)
    return path


def header(row: int = 1) -> str:
    cells = "".join(f'<c r="{chr(65 + n)}{row}" t="inlineStr"><is><t>{name}</t></is></c>'
                    for n, name in enumerate(["A", "B", "C", "D"]))
    return f'<row r="{row}">{cells}</row>'


def row(number: int, *cells: str) -> str:
    return f'<row r="{number}">{"".join(cells)}</row>'


def cell(reference: str, value: str = "", kind: str | None = None,
         style: int | None = None) -> str:
    attributes = f' r="{reference}"' if reference else ""
    if style is not None:
        attributes += f' s="{style}"'
    if kind is not None:
        attributes += f' t="{kind}"'
    return f"<c{attributes}>{value}</c>"


def v(text: str) -> str:
    return f"<v>{text}</v>"


def inline(*parts: str) -> str:
    return f"<is>{''.join(parts)}</is>"


STRINGS = ["<si><t>shared</t></si>", "<si><t>  trimmed  </t></si>",
           '<si><t xml:space="preserve">  kept  </t></si>', "<si><t/></si>",
           '<si><r><t>ri</t></r><r><rPr><b/></rPr><t xml:space="preserve">ch </t></r>'
           "<rPh><t>phonetic</t></rPh></si>", "<si><t>a&amp;b &lt;c&gt; &#233;&#x4E2D;</t></si>",
           "<si><t>line\r\nbreak</t></si>", "<si><t>0123</t></si>"]

HANDMADE = {
    "dates, times, durations and formats": [
        row(2, cell("A2", v("42000"), style=1), cell("B2", v("0.5"), style=2),
            cell("C2", v("42000.25"), style=3), cell("D2", v("1.25"), style=4)),
        row(3, cell("A3", v("42000.5"), style=5), cell("B3", v("0.25"), style=4),
            cell("C3", v("0"), style=1), cell("D3", v("-0.25"), style=1)),
        row(4, cell("A4", v("60"), style=1), cell("B4", v("61"), style=1),
            cell("C4", v("0.9999999"), style=2), cell("D4", v("2958466"), style=1)),
        row(5, cell("A5", v("5"), style=6), cell("B5", v("5"), style=7),
            cell("C5", v("100.5"), style=8), cell("D5", v("42000"), style=9)),
        row(6, cell("A6", v("42000"), style=42), cell("B6", v("42000"), style="x"),
            cell("C6", v("-1"), style=1), cell("D6", v("1e3"), style=3)),
    ],
    "numbers and numbers as text": [
        row(2, cell("A2", v("12")), cell("B2", v("1.5"), "n"), cell("C2", v("-0")),
            cell("D2", v("12345678901234567"))),
        row(3, cell("A3", v("0123"), "str"), cell("B3", v("+1")), cell("C3", v(".5")),
            cell("D3", v("1E+05"))),
        row(4, cell("A4", v(" 7 ")), cell("B4", v("0x10")), cell("C4", v("1,5")),
            cell("D4", v("inf"))),
        row(5, cell("A5", v("nan")), cell("B5", v("1e400")), cell("C5", v("0.30000000000000004")),
            cell("D5", v("7"), "s")),
    ],
    "strings shared and inline": [
        row(2, *(cell(f"{c}2", v(str(n)), "s") for n, c in enumerate("ABCD"))),
        row(3, *(cell(f"{c}3", v(str(n + 4)), "s") for n, c in enumerate("ABCD"))),
        row(4, cell("A4", inline("<t>  inline  </t>"), "inlineStr"),
            cell("B4", inline('<t xml:space="preserve">  kept  </t>'), "inlineStr"),
            cell("C4", inline("<r><t>a </t></r><r><t> b</t></r>"), "inlineStr"),
            cell("D4", inline("<t>&lt;&amp;&gt;&quot;&apos;</t>"), "inlineStr")),
        row(5, cell("A5", inline("<t><![CDATA[ <raw> & ]]></t>"), "inlineStr"),
            cell("B5", inline("<t>a\r\nb\rc</t>"), "inlineStr"),
            cell("C5", inline("<t>&#13;&#10;x</t>"), "inlineStr"),
            cell("D5", inline("<t>\u00a0nbsp\u00a0</t>"), "inlineStr")),
    ],
    "booleans, errors, formulas and other types": [
        row(2, cell("A2", v("1"), "b"), cell("B2", v("0"), "b"), cell("C2", v("true"), "b"),
            cell("D2", v("false"), "b")),
        row(3, cell("A3", v("#N/A"), "e"), cell("B3", v("#DIV/0!"), "e"),
            cell("C3", "<f>A1</f>" + v("x&amp;y"), "str"), cell("D3", "<f>1+1</f>")),
        row(4, cell("A4", v("2015-03-01T10:00:00"), "d"), cell("B4", v("2015-03-01"), "d"),
            cell("C4", v("10:00:00"), "d"), cell("D4", v("junk"), "d")),
        row(5, cell("A5", v("5"), "inlineStr"), cell("B5", v(""), "str"),
            cell("C5", v(""), "n"), cell("D5", v("a\r\nb"), "str")),
    ],
    "sparse, self-closing and unnumbered cells and rows": [
        row(3, cell("B3", v("1")), cell("D3", v("2"))),
        '<row r="4"/>',
        "<row>" + cell("", v("3")) + cell("", v("4")) + "</row>",
        row(8, '<c r="A8" t="inlineStr"/>', cell("", v("5")), '<c r="C8"/>', cell("", v("6"))),
        "<row>" + cell("C9", v("7")) + cell("", v("8")) + "</row>",
        row(11, cell("A11", "", "s"), cell("B11", v(""), "inlineStr"), cell("C11", v("9"))),
        row(12, cell("D12", v("#REF!"), "e")),
    ],
    "comments, processing instructions and whitespace between rows": [
        "\n  <!-- a comment with </row> in it -->\n  ",
        row(2, cell("A2", v("1")), "<!-- </row><row r=\"99\"> -->", cell("B2", v("2"))),
        '<?keep </row> ?>',
        row(3, cell("A3", inline("<t><![CDATA[</row>]]></t>"), "inlineStr")),
        "\n", row(4, cell("A4", v("3"))), "\n",
    ],
}


@pytest.mark.parametrize("name", list(HANDMADE))
def test_cells_as_other_writers_write_them(tmp_path, blocking, name):
    path = handmade(tmp_path / "handmade.xlsx", [header() + "".join(HANDMADE[name])],
                    STRINGS)
    assert len(assert_same(path)) > 1


def test_the_1904_date_system(tmp_path, blocking):
    path = handmade(tmp_path / "1904.xlsx", [header() + "".join(HANDMADE[
        "dates, times, durations and formats"])], date1904=True)
    assert_same(path)


def test_a_namespace_prefix_and_a_sheet_of_its_own_making(tmp_path, blocking):
    body = "".join(
        f'<x:row r="{n}"><x:c r="A{n}" t="inlineStr"><x:is><x:t>r{n}</x:t></x:is></x:c>'
        f'<x:c r="B{n}"><x:v>{n}</x:v></x:c></x:row>' for n in range(1, 40))
    sheet = (f'\ufeff<?xml version="1.0" encoding="UTF-8"?><x:worksheet xmlns:x="{MAIN}">'
             f'<x:sheetPr/><x:sheetData>{body}</x:sheetData><x:mergeCells count="0"/>'
             "</x:worksheet>")
    path = handmade(tmp_path / "prefix.xlsx", ["<?xml" + sheet.split("<?xml", 1)[1]])
    assert len(assert_same(path)) == 39


def test_sheets_without_rows_and_hidden_and_chart_sheets(tmp_path, blocking):
    empty = (f'<?xml version="1.0"?><worksheet xmlns="{MAIN}"><sheetData/>'
             "</worksheet>")
    chart = (f'<?xml version="1.0"?><chartsheet xmlns="{MAIN}"><sheetViews/>'
             "</chartsheet>")
    path = handmade(tmp_path / "sheets.xlsx",
                    [header(), empty, chart, row(1, *(cell(f"{c}1", v("1")) for c in "ABCD")),
                     header(2)],
                    names=["Data", "Empty", "Chart", "Hidden", "More"],
                    folders=["worksheets", "worksheets", "chartsheets", "worksheets",
                             "worksheets"], hidden=["Hidden"])
    assert rows_of(read(path, "stream")[0]) == [["A", "B", "C", "D"], ["1", "1", "1", "1"]]
    assert_same(path)


def test_rows_and_cells_without_numbers(tmp_path, blocking):
    """python-calamine numbers them on from the row and cell before."""
    rows = "".join(
        ("<row>" + "".join(cell("", v(str(n * 10 + c))) for c in range(3)) if n % 7 else
         f'<row r="{n * 3}">' + "".join(cell(f"{chr(66 + c)}{n * 3}", v(str(n * 10 + c)))
                                        if c % 2 else cell("", v(str(n * 10 + c)))
                                        for c in range(3))) + "</row>" for n in range(1, 60))
    path = handmade(tmp_path / "unnumbered.xlsx", [header() + rows])
    assert len(assert_same(path)) == 60


def test_a_very_wide_row(tmp_path, blocking):
    wide = "".join(cell(f"{letters}1", v(str(n))) for n, letters in enumerate(
        ["A", "Z", "AA", "AZ", "ZZ", "AAA", "XFD"]))
    path = handmade(tmp_path / "wide.xlsx", [f'<row r="1">{wide}</row>' + row(
        2, cell("XFD2", v("x"), "str"))])
    rows = assert_same(path)
    assert len(rows[0]) == 16384


@pytest.mark.parametrize(("cells", "message"), [
    (cell("A2", v("2"), "b"), "Unrecognized boolean cell value: 2"),
    (cell("A2", v("x"), "n"), "float"),
    (cell("A2", v("1"), "q"), "Unknown cell 't' attribute"),
    (cell("A2", v("99"), "s"), "shared strings"),
])
def test_cells_python_calamine_rejects_fail_the_same_way(tmp_path, blocking, cells, message):
    path = handmade(tmp_path / "bad.xlsx", [header() + row(2, cells)], STRINGS[:2])
    streamed = read(path, "stream")
    assert streamed[2] == read(path, "calamine")[2]
    assert streamed[2].startswith("sheet 'Sheet1' cannot be read (") and message in streamed[2]


def test_rows_out_of_order_across_blocks_fail_clearly(tmp_path, monkeypatch):
    """python-calamine would put row 2 back among the first rows; a stream
    has handed those on already, so it says the sheet cannot be read."""
    monkeypatch.setattr(xlsx_stream, "READ_BYTES", 50)
    monkeypatch.setattr(xlsx_stream, "BLOCK_BYTES", 1)
    monkeypatch.setattr(xlsx_stream, "MAX_BLOCK_BYTES", 1)
    rows = [row(n, cell(f"A{n}", v(str(n)))) for n in (1, 3, 4, 2, 5)]
    path = handmade(tmp_path / "order.xlsx", ["".join(rows)])
    assert rows_of(read(path, "calamine")[0]) == [["1"], ["2"], ["3"], ["4"], ["5"]]
    assert read(path, "stream")[2].startswith(
        "sheet 'Sheet1' cannot be read (row 2 comes after row ")
    assert read(path, "stream")[2].endswith(": the rows of a sheet must be in order)")


def test_a_broken_workbook_fails_as_before(tmp_path):
    path = tmp_path / "stops.xlsx"
    path.write_bytes(b"not a workbook")
    with pytest.raises(ImportFailed, match="stops.xlsx is not an Excel workbook"):
        list(workbook_batches(path))
    truncated = handmade(tmp_path / "cut.xlsx", [header() + '<row r="2"><c r="A2"><v>1'])
    for reader in ("stream", "calamine"):
        with pytest.raises(ImportFailed, match="sheet 'Sheet1' cannot be read"):
            list(workbook_batches(truncated, reader=reader))


# -- cutting the sheet into blocks ---------------------------------------------------

@pytest.mark.parametrize(("block", "cut"), [
    (b'<row r="1"></row><row r="2">', 17),
    (b'<row r="1"></row><row r="2"></row>', 34),
    (b'<row r="1"><c r="A1"/>', 0),
    (b"<!-- </row> -->", 0),
    (b'<row r="1"></row><!-- </row>', 17),
    (b'<row r="1"></row><!-- </row> --><row r="2"></row><![CDATA[</row>', 49),
    (b'<row r="1"></row><?pi </row>?></row>', 36),
    (b'<row r="1"><c r="A1"><is><t>!?</t></is></c></row>', 49),
])
def test_blocks_are_cut_after_a_row_outside_comments(block, cut):
    assert xlsx_stream._cut(block, b"</row>") == cut


def test_blocks_grow_with_the_shared_strings(tmp_path):
    """python-calamine parses a block's shared strings each time and holds
    them while it parses: with a large table, larger blocks, one at a time."""
    small = xlsx_stream.StreamedWorkbook(handmade(tmp_path / "small.xlsx", [header()],
                                                  STRINGS))
    assert (small.block_bytes, small.parsers) == (xlsx_stream.BLOCK_BYTES,
                                                  xlsx_stream.PARSERS)
    many = [f"<si><t>{n:08d}</t></si>" for n in range(300_000)]
    path = handmade(tmp_path / "big.xlsx", [header()], many)
    size = len(zipfile.ZipFile(path).read("xl/sharedStrings.xml"))
    big = xlsx_stream.StreamedWorkbook(path)
    assert xlsx_stream.SHARED_STRINGS_SHARE * size > xlsx_stream.BLOCK_BYTES
    assert (big.block_bytes, big.parsers) == (min(
        xlsx_stream.SHARED_STRINGS_SHARE * size, xlsx_stream.MAX_BLOCK_BYTES), 1)


def test_the_reader_is_chosen_by_the_workbook_and_the_setting(tmp_path, monkeypatch):
    xlsx = write_xlsx(tmp_path / "stops.xlsx", [[MD_HEADER, *stops(1, 2)]])
    xls = write_xls(tmp_path / "stops.xls", [[MD_HEADER, *stops(1, 2)]])
    monkeypatch.delenv(READER_VARIABLE, raising=False)
    for path, kind in ((xlsx, _StreamBook), (xls, _CalamineBook)):
        book = _open_book(path, None)
        assert type(book) is kind
        book.close()
    monkeypatch.setenv(READER_VARIABLE, "calamine")
    book = _open_book(xlsx, None)
    assert type(book) is _CalamineBook
    book.close()
    monkeypatch.setenv(READER_VARIABLE, "sax")
    with pytest.raises(ValueError, match="no reader 'sax'"):
        _open_book(xlsx, None)


# -- memory ------------------------------------------------------------------------

# The peak is the process's own high-water mark (VmHWM): ru_maxrss would
# start at the forking test process's size.
PEAK = """
import json, sys
from services.ingest.md import xlsx_stream
from services.ingest.md.format import workbook_batches
xlsx_stream.READ_BYTES = xlsx_stream.BLOCK_BYTES = xlsx_stream.MAX_BLOCK_BYTES = 1 << 20
rows = sum(len(batch) for _, batch in workbook_batches(sys.argv[1]))
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"rows": rows, "peak": peak}))
"""


def one_big_sheet(path: Path, rows: int) -> Path:
    """A workbook of `rows` stop rows in one sheet, its XML as openpyxl writes
    it, written directly (openpyxl takes a minute for 100,000 rows)."""
    texts = [f'<c r="{chr(65 + n)}{{n}}" t="inlineStr"><is><t>{value}</t></is></c>'
             for n, value in enumerate(stop_row(OFFICERID="{n}"))]
    template = '<row r="{n}">' + "".join(texts) + "</row>"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("xl/worksheets/sheet1.xml", "w") as part:
            part.write(f'<?xml version="1.0"?><worksheet xmlns="{MAIN}"><sheetData>'.encode())
            part.write(header().encode())
            for start in range(2, rows + 2, 1000):
                part.write("".join(template.format(n=n) for n in range(
                    start, min(start + 1000, rows + 2))).encode())
            part.write(b"</sheetData></worksheet>")
    book = handmade(path.with_suffix(".parts.xlsx"), [header()])
    with zipfile.ZipFile(book) as parts, zipfile.ZipFile(path, "a") as archive:
        for name in parts.namelist():
            if name != "xl/worksheets/sheet1.xml":
                archive.writestr(name, parts.read(name))
    return path


def peak_kb(path: Path) -> tuple[int, int]:
    result = subprocess.run([sys.executable, "-c", PEAK, str(path)], cwd=ROOT, check=True,
                            capture_output=True, text=True, timeout=300)
    answer = json.loads(result.stdout)
    return answer["rows"], answer["peak"]


def test_memory_does_not_grow_with_the_sheet(tmp_path):
    """The reading process's peak (its resident set: python-calamine's own
    memory is not Python's, so tracemalloc would not see a whole sheet)
    for one sheet of N rows and of 4N, in blocks of 1 MB: python-calamine on
    the whole sheet grows by some 70 MB from N to 4N here (about 1.6 KB a
    row), the stream by a few."""
    count = 15_000
    small = one_big_sheet(tmp_path / "small.xlsx", count)
    large = one_big_sheet(tmp_path / "large.xlsx", 4 * count)
    rows, small_peak = peak_kb(small)
    assert rows == count + 1
    rows, large_peak = peak_kb(large)
    assert rows == 4 * count + 1
    assert large_peak < 1.2 * small_peak + 10_000, (small_peak, large_peak)
