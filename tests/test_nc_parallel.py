"""nc's Stop.txt and PERSON.txt parsed in pieces by parse workers
(INGEST_PARSE_WORKERS, services/ingest/nc/piece_merge.py) load exactly what
one pass in the import's process loads: every table, the agency ids and
their order, the rejects file byte for byte, the outcome's counts, dropped
rows and new agencies, and the same failures.

Each release is imported twice, with one worker and with several, from the
same agency ids; rawfile's block is made tiny (for both imports, since a
block that is not UTF-8 is decoded as a whole) and a piece one block, so the
small releases here are cut into many pieces, with lines, multi-byte
characters and NUL bytes across the cuts.
"""

from __future__ import annotations

import os
import random
import uuid
from pathlib import Path

import psutil
import pytest
from sqlalchemy import text

from services.ingest import rawfile
from services.ingest.errors import ImportFailed
from services.ingest.idset import BITMAP_LIMIT, IdSet
from services.ingest.nc import piece_merge
from services.ingest.nc.piece_parse import parse_piece
from services.ingest.nc.synthetic import (
    STOP_WIDTHS,
    RawReleaseWriter,
    format_line,
    write_simple_stops,
    zip_release,
)
from services.ingest.pipeline import run_import
from services.ingest.rawfile import LineTooLong, line_batches, piece_batches, reading_of
from shared.config import Config
from tests.support.releases import ALDER, BIRCHWOOD, PATROL, request

BLOCK = 512
# The dirty releases here reject far more than a real one may.
LENIENT = 0.5
TABLES = ("agency", "stop", "person", "search", "contraband", "search_basis")
# Differs between two imports of one release whatever they parse.
PER_IMPORT = ("import_id", "data_version", "loaded_at", "rejects_file")


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(rawfile, "BLOCK", BLOCK)
    monkeypatch.setattr(piece_merge, "PIECE_BLOCKS", 1)


@pytest.fixture
def pieces(monkeypatch) -> dict[str, int]:
    """How many pieces the import took from the workers, and how many it
    parsed again itself."""
    counts = {"taken": 0, "parsed again": 0}
    taken, parsed_again = piece_merge._taken, piece_merge._parsed_again

    def counting_taken(*args):
        counts["taken"] += 1
        return taken(*args)

    def counting_parsed_again(*args):
        counts["parsed again"] += 1
        return parsed_again(*args)

    monkeypatch.setattr(piece_merge, "_taken", counting_taken)
    monkeypatch.setattr(piece_merge, "_parsed_again", counting_parsed_again)
    return counts


def build(tmp_path: Path, write, line_ends: bytes = b"\r\n") -> Path:
    """A release zip written by `write(writer)`, its CR LF line ends turned
    into `line_ends`."""
    folder = tmp_path / f"release-{uuid.uuid4().hex[:8]}"
    with RawReleaseWriter(folder) as writer:
        write(writer)
    if line_ends != b"\r\n":
        for path in folder.glob("*.txt"):
            path.write_bytes(path.read_bytes().replace(b"\r\n", line_ends))
    return zip_release(folder, folder / "STOPS_Extract.zip")


def imported(config: Config, engine, db, url: str, workers: int, **limits) -> dict:
    """Import with `workers` parse workers; everything the import left behind
    that the number of workers must not change."""
    highest = db("SELECT coalesce(max(id), 0) FROM ingest.agency_ids WHERE state = 'nc'")[0][0]
    children = _children()
    outcome = run_import(request(url, **limits),
                         config.with_changes(ingest_parse_workers=workers))
    assert not _children() - children, "parse workers outlived their import"
    payload = outcome["payload"]
    rejects = Path(payload["rejects_file"]).read_bytes()
    result = {
        "event": outcome["event"],
        "payload": {key: value for key, value in payload.items() if key not in PER_IMPORT},
        "rejects": rejects,
        # Also in the order the reasons first came.
        "dropped": list(payload.get("dropped", {}).items()),
        "new agency ids": db("SELECT id, name FROM ingest.agency_ids "
                             "WHERE state = 'nc' AND id > :id ORDER BY id", id=highest),
    }
    if "error" in payload:
        result["payload"]["error"] = payload["error"].replace(payload["rejects_file"], "…")
    if outcome["event"] == "dataset_loaded":
        result["tables"] = {table: db(f"SELECT * FROM nc.{table} ORDER BY 1")
                            for table in TABLES}
    # The next import starts from the same agency ids.
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM ingest.agency_ids WHERE state = 'nc' AND id > :id"),
                     {"id": highest})
    return result


def _children() -> set[int]:
    """This process's live children, less multiprocessing's resource
    tracker: one per process that ever started a worker, ending with it (an
    import worker's, with its import)."""
    live = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if "multiprocessing.resource_tracker" not in " ".join(child.cmdline()):
                live.add(child.pid)
        except psutil.Error:  # ended meanwhile
            pass
    return live


def same_in_pieces(config, engine, db, url: str, pieces: dict[str, int], **limits) -> dict:
    """Import `url` in one pass and in pieces (two and three workers); the
    one-pass result, after checking the others equal it."""
    one_pass = imported(config, engine, db, url, 1, **limits)
    assert pieces["taken"] == 0
    for workers in (2, 3):
        taken = pieces["taken"]
        in_pieces = imported(config, engine, db, url, workers, **limits)
        assert pieces["taken"] - taken > 1, "the file was not parsed in pieces"
        assert in_pieces.keys() == one_pass.keys()
        for key, value in one_pass.items():
            assert in_pieces[key] == value, f"{key} differs with {workers} workers"
    return one_pass


# -- releases ----------------------------------------------------------------

def new_agencies() -> tuple[str, str, str]:
    """Names no import has given an id yet."""
    return tuple(f"{name} Police Department {uuid.uuid4().hex[:6]}"
                 for name in ("Newcomer", "Late", "Refused First"))


def dirty_release(newcomer: str, late: str, refused_first: str):
    """Stops and persons with every kind of line the rules treat apart,
    spread so that pieces of a few lines each hold them, and ids repeated
    pieces apart."""
    def write(writer):
        agencies = (ALDER, BIRCHWOOD, newcomer, PATROL, "Café Zürich Police Department",
                    "日本 Sheriff's Office")
        # An agency first named on a rejected line, loaded only near the end.
        writer.stop(900, refused_first, "2015-02-30 10:00:00")
        for stop_id in range(1, 241):
            agency = agencies[stop_id % len(agencies)]
            date = (f"20{1 + stop_id % 16:02d}-{1 + stop_id % 12:02d}-"
                    f"{1 + stop_id % 28:02d} 10:00:00")
            if stop_id % 37 == 0:
                writer.raw("Stop.txt", f"{stop_id}\t{agency}\t{date}\r\n".encode())
            elif stop_id % 41 == 0:
                writer.stop(stop_id, agency, date[:5] + "13" + date[7:])
            elif stop_id % 43 == 0:
                # Windows-1252: the block holding it is decoded as such.
                writer.raw("Stop.txt", format_line(stop_values(stop_id, agency, date, "Café"),
                                                   STOP_WIDTHS).replace("é".encode(), b"\xe9"))
            elif stop_id % 29 == 0:
                writer.stop(f"X{stop_id}", agency, date)
            elif stop_id % 23 == 0:
                writer.raw("Stop.txt", format_line(stop_values(stop_id, agency, date, "Alder"),
                                                   STOP_WIDTHS).replace(b"10:00", b"1\x000:0\x000"))
            else:
                writer.stop(stop_id, agency, date, officer_id=f"Ö{stop_id}",
                            city="Saint-Étienne" if stop_id % 3 else "Zürich",
                            extra=("", "9") if stop_id % 31 == 0 else ())
            writer.person(stop_id, stop_id, race="B" if stop_id % 2 else "W")
            if stop_id == 60:
                writer.person(1000, 4, race="X")  # refused, then loaded below
                writer.person(1001, 5)            # loaded, then repeated wrongly below
        # Stops seen before: loaded, dropped (before 2002), rejected.
        writer.stop(3, ALDER, "2015-01-01 10:00:00")
        writer.stop(16, BIRCHWOOD, "2015-01-01 10:00:00")
        writer.stop(41, ALDER, "2015-01-01 10:00:00")
        writer.stop(901, refused_first, "2016-02-02 10:00:00")
        writer.stop(501, ALDER, "2015-01-01 10:00:00", city='"Alder\tEast"')
        writer.stop(502, BIRCHWOOD, "2015-01-01 10:00:00", city="Back\\slash")
        writer.raw("Stop.txt", b"\r\n")
        writer.stop(503, late, "2016-12-31 23:59:00")
        # Persons seen before, refused before, of stops rejected or never seen.
        writer.person(2, 2)
        writer.person(1000, 4)
        writer.person(1001, 6, race="X")
        writer.person(1002, 41)
        writer.person(1003, 9999)
        writer.person(1004, 503)
        writer.person(1005, 900)
        writer.search(1, 1, 1)
        writer.search(2, 2, 2, search_type=9)
        writer.contraband(1, 1, 1, 1, ounces="2.5")
        writer.search_basis(1, 1, 1, 1, "OB")
        # The last line, with no line ending.
        writer.raw("Stop.txt", format_line(stop_values(504, late, "2016-01-01 10:00:00",
                                                       "Alder"), STOP_WIDTHS)[:-2])
    return write


def stop_values(stop_id, agency, date, city) -> list:
    return [stop_id, agency, date, 1, 3, 0, 0, 0, 0, 0, 0, 0, "1000", "Alder", city]


def test_a_dirty_release_loads_the_same_in_pieces(config, engine, db, tmp_path, small_blocks,
                                                 pieces):
    config = config.with_changes(ingest_max_reject_share=LENIENT)
    newcomer, late, refused_first = new_agencies()
    url = build(tmp_path, dirty_release(newcomer, late, refused_first)).as_uri()

    result = same_in_pieces(config, engine, db, url, pieces)

    assert pieces["parsed again"] > 0, "no piece repeated an id of an earlier piece"
    payload = result["payload"]
    assert result["event"] == "dataset_loaded", payload
    assert payload["rejected_rows"] > 10
    names = [name for _, name in result["new agency ids"]]
    # New names get ids in the order their first loaded stop came, the late
    # one last, the one first seen on a rejected line where it was loaded.
    assert names.index(newcomer) < names.index(refused_first) < names.index(late)
    assert names[-1] == late
    agencies = {name for _, name in result["tables"]["agency"]}
    assert {"Café Zürich Police Department", "日本 Sheriff's Office"} <= agencies


def test_multi_byte_characters_and_lines_cut_by_a_piece_load_the_same(
        config, engine, db, tmp_path, small_blocks, pieces):
    def write(writer):
        for stop_id in range(1, 120):
            writer.stop(stop_id, "Ærø Police Department" if stop_id % 2 else ALDER,
                        "2015-03-01 08:30:00.000", officer_id="日本語" * (stop_id % 4),
                        county="Ñandú", city="€" * (stop_id % 7))
            writer.person(stop_id, stop_id)

    zip_path = build(tmp_path, write)
    stop_file = (zip_path.parent / "Stop.txt").read_bytes()
    cuts = range(BLOCK, len(stop_file), BLOCK)
    assert any(stop_file[cut] & 0xC0 == 0x80 for cut in cuts), "no character across a cut"
    assert any(stop_file[cut - 1:cut] != b"\n" for cut in cuts)

    result = same_in_pieces(config, engine, db, zip_path.as_uri(), pieces)

    assert result["payload"]["rejected_rows"] == 0
    assert ("Ærø Police Department",) in [(name,) for _, name in result["tables"]["agency"]]
    assert {row[-1] for row in result["tables"]["stop"]} == {"€" * n for n in range(7)}


@pytest.mark.parametrize("line_ends", [b"\n", b"\r"], ids=["LF", "CR"])
def test_other_line_endings_load_the_same(config, engine, db, tmp_path, small_blocks, pieces,
                                          line_ends):
    config = config.with_changes(ingest_max_reject_share=LENIENT)
    newcomer, late, refused_first = new_agencies()
    url = build(tmp_path, dirty_release(newcomer, late, refused_first), line_ends).as_uri()

    result = same_in_pieces(config, engine, db, url, pieces)

    assert result["event"] == "dataset_loaded"
    assert result["payload"]["counts"]["stops"] > 150


def test_a_stop_id_range_loads_the_same_in_pieces(config, engine, db, tmp_path, small_blocks,
                                                 pieces):
    config = config.with_changes(ingest_max_reject_share=LENIENT)
    newcomer, late, refused_first = new_agencies()
    url = build(tmp_path, dirty_release(newcomer, late, refused_first)).as_uri()

    result = same_in_pieces(config, engine, db, url, pieces, min_stop_id=20, max_stop_id=200)

    assert result["payload"]["dropped"]["outside stop id range"] > 0
    assert {row[0] for row in result["tables"]["stop"]} <= set(range(20, 201))


def test_a_clean_release_in_bigger_pieces_loads_the_same(config, engine, db, tmp_path,
                                                         monkeypatch, pieces):
    """Pieces of thousands of lines (64 KiB) rather than a few."""
    monkeypatch.setattr(rawfile, "BLOCK", 64 << 10)
    monkeypatch.setattr(piece_merge, "PIECE_BLOCKS", 1)
    url = build(tmp_path, lambda writer: write_simple_stops(writer, 2500)).as_uri()

    result = same_in_pieces(config, engine, db, url, pieces)

    assert result["payload"]["counts"] == {"stops": 2500, "persons": 2500, "searches": 0,
                                           "contraband": 0, "search_bases": 0}


# -- failures ------------------------------------------------------------------

def test_too_many_rejects_fail_the_same_in_pieces(config, engine, db, tmp_path, small_blocks,
                                                  pieces):
    def write(writer):
        write_simple_stops(writer, 60)
        for stop_id in range(100, 110):
            writer.raw("Stop.txt", f"{stop_id}\t{ALDER}\t2015-01-01 10:00:00\r\n".encode())

    result = same_in_pieces(config, engine, db, build(tmp_path, write).as_uri(), pieces)

    assert result["event"] == "dataset_failed"
    assert result["payload"]["phase"] == "load Stop.txt"
    assert result["payload"]["error"].startswith("Stop.txt: 10 of 70 lines rejected")
    assert result["rejects"].count(b"expected 15 tab-separated columns, found 3") == 10


def test_too_many_rejected_persons_fail_the_same_in_pieces(config, engine, db, tmp_path,
                                                           small_blocks, pieces):
    def write(writer):
        write_simple_stops(writer, 100)
        for person_id in range(200, 210):
            writer.person(person_id, 1, race="Q")

    result = same_in_pieces(config, engine, db, build(tmp_path, write).as_uri(), pieces)

    assert result["payload"]["phase"] == "load PERSON.txt"
    assert result["payload"]["error"].startswith("PERSON.txt: 10 of 110 lines rejected")


def test_a_line_too_long_fails_the_same_in_pieces_with_its_number(
        config, engine, db, tmp_path, small_blocks, pieces, monkeypatch):
    monkeypatch.setattr(rawfile, "MAX_LINE", 2 * BLOCK)

    def write(writer):
        write_simple_stops(writer, 30)
        writer.raw("Stop.txt", b"\r\n")
        writer.raw("Stop.txt", b"31\t" + b"x" * (6 * BLOCK))

    result = same_in_pieces(config, engine, db, build(tmp_path, write).as_uri(), pieces)

    assert result["payload"]["phase"] == "load Stop.txt"
    assert result["payload"]["error"].startswith(
        "Stop.txt: line 32 runs past 1,024 bytes without a line ending")


def _failing_piece(task):
    """A parse worker that fails on a piece well into the file."""
    if task.start >= 8 * task.reading.block:
        raise ValueError("a piece could not be parsed")
    return parse_piece(task)


def _dying_piece(task):
    if task.start >= 8 * task.reading.block:
        os._exit(3)
    return parse_piece(task)


@pytest.mark.parametrize("piece", [_failing_piece, _dying_piece], ids=["raises", "dies"])
def test_a_failing_worker_fails_the_import_cleanly(config, engine, db, tmp_path, small_blocks,
                                                   monkeypatch, piece):
    monkeypatch.setattr(piece_merge, "parse_piece", piece)
    live = build(tmp_path, lambda writer: write_simple_stops(writer, 3)).as_uri()
    assert run_import(request(live), config)["event"] == "dataset_loaded"
    before = db("SELECT * FROM nc.stop ORDER BY 1")
    url = build(tmp_path, lambda writer: write_simple_stops(writer, 200)).as_uri()

    result = imported(config, engine, db, url, 2)

    assert result["event"] == "dataset_failed"
    assert result["payload"]["phase"] == "load Stop.txt"
    assert result["payload"]["error"] == (
        "internal error during load Stop.txt: ValueError: a piece could not be parsed"
        if piece is _failing_piece else
        "internal error during load Stop.txt: BrokenProcessPool: A process in the process "
        "pool was terminated abruptly while the future was running or pending.")
    assert db("SELECT * FROM nc.stop ORDER BY 1") == before
    assert db("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'nc\\_staging\\_%'") == []


def test_progress_counts_the_bytes_of_the_file_in_pieces(config, engine, db, tmp_path, small_blocks,
                                                         pieces):
    zip_path = build(tmp_path, lambda writer: write_simple_stops(writer, 200))
    size = (zip_path.parent / "Stop.txt").stat().st_size
    reports = []
    outcome = run_import(request(zip_path.as_uri()),
                         config.with_changes(ingest_parse_workers=2),
                         lambda phase, done, total: reports.append((phase, done, total)))

    assert outcome["event"] == "dataset_loaded"
    assert pieces["taken"] > 1
    loading = [(done, total) for phase, done, total in reports if phase == "load Stop.txt"]
    assert loading[-1] == (size, size)
    assert [done for done, _ in loading] == sorted(done for done, _ in loading)


# -- the pieces of a file, without the database ---------------------------------

def _random_file(rng: random.Random, ends: bytes) -> bytes:
    parts = []
    for _ in range(rng.randrange(0, 150)):
        length = rng.choice((0, 1, 5, 40, 300, 900))
        text = "".join(rng.choice("ab\t é日€\"\\") for _ in range(length)).encode()
        if rng.random() < 0.05:
            text = text.replace(b"\xc3\xa9", b"\xe9")  # Windows-1252, not UTF-8
        if rng.random() < 0.1:
            text = text[:len(text) // 2] + b"\x00" * rng.randrange(1, 4) + text[len(text) // 2:]
        parts.append(text + ends)
    data = b"".join(parts)
    return data[:len(data) - rng.randrange(0, 3)]


@pytest.mark.parametrize("seed", range(40))
def test_the_pieces_of_a_file_hold_its_batches(tmp_path, monkeypatch, seed):
    rng = random.Random(seed)
    ends = rng.choice((b"\r\n", b"\n", b"\r"))
    block = rng.choice((32, 64, 333, 1024))
    monkeypatch.setattr(rawfile, "BLOCK", block)
    monkeypatch.setattr(rawfile, "MAX_LINE", rng.choice((block, 4 * block, 1 << 20)))
    path = tmp_path / "Stop.txt"
    path.write_bytes(_random_file(rng, ends))
    piece = block * rng.choice((1, 2, 3))

    whole, failed = [], None
    try:
        whole.extend(line_batches(path))
    except ImportFailed as error:
        failed = str(error)

    reading = reading_of(path)
    size = path.stat().st_size
    in_pieces, lines_before, failed_in_pieces = [], 0, None
    for start in range(0, size, piece):
        lines_in_piece = 0
        try:
            for first, lines in piece_batches(path, start, min(start + piece, size), reading):
                in_pieces.append((first + lines_before, lines))
                lines_in_piece += len(lines)
        except LineTooLong as error:
            failed_in_pieces = str(error.after(lines_before))
            break
        lines_before += lines_in_piece
    assert in_pieces == whole
    assert failed_in_pieces == failed


def test_id_parts_find_and_add_ids_across_processes():
    ids, others = IdSet(), IdSet()
    for value in (3, 900, 9_000_000, BITMAP_LIMIT + 5):
        ids.add(value)
    others.add(901)
    part = ids.part()

    assert not others.intersects(part)
    others.absorb(part)
    assert len(others) == 5 and 9_000_000 in others and BITMAP_LIMIT + 5 in others
    assert others.intersects(ids.part())
    others.absorb(part)
    assert len(others) == 5
    assert not IdSet().intersects(IdSet().part())


def test_parse_workers_are_a_setting():
    assert Config.from_env(environ={"INGEST_PARSE_WORKERS": "1"},
                           env_file=None).ingest_parse_workers == 1
    configured = Config.from_env(environ={"INGEST_PARSE_WORKERS": "3"}, env_file=None)
    # What services hand their workers (as_environ) keeps the setting.
    assert Config.from_env(environ=configured.as_environ(),
                           env_file=None).ingest_parse_workers == 3


def test_an_import_failure_crosses_a_process_whole():
    """A parse worker's ImportFailed reaches the import with its phase, not
    as an internal error about an exception that would not unpickle."""
    import pickle

    from services.ingest.errors import ImportFailed

    again = pickle.loads(pickle.dumps(ImportFailed("load Stop.txt", "line 3: too long")))
    assert (type(again), again.phase, str(again)) == (ImportFailed, "load Stop.txt",
                                                      "line 3: too long")
