"""What imports leave in the data folder (services/ingest/import_folders.py),
against the real database and local HTTP servers: a loaded import keeps only
its reports, a failed one keeps its files until they expire or the state's
next import loads, a running import's folder and anything that is not an
import's own are never removed, a zip the disk cannot hold is refused, and
`odp files` says what is kept."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from odp.files import size
from services.ingest import import_folders
from services.ingest.formats import RELEASES
from services.ingest.import_folders import MANIFEST
from services.ingest.nc.synthetic import write_simple_stops
from services.ingest.pipeline import prune_now, run_import
from shared.config import ENVIRONMENT_NAMES, Config
from shared.db import raw_connection
from tests.support.releases import ALDER, new_id, request, small_release

ROOT = Path(__file__).resolve().parent.parent
DAY = 86400
RELEASE_FILES = {"STOPS_Extract.zip", "Stop.txt", "PERSON.txt", "Search.txt",
                 "Contraband.txt", "SearchBasis.txt"}


def files_in(folder: Path) -> set[str]:
    """Every entry under `folder` but its folders, links included."""
    if not folder.exists():
        return set()
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*")
            if path.is_symlink() or not path.is_dir()}


def make_old(folder: Path, days: float) -> None:
    """Every file under `folder` last written `days` ago."""
    then = time.time() - days * DAY
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.utime(path, (then, then))


def too_many_rejects(writer) -> None:
    """Fails in the load phase, after the download and the unpack."""
    write_simple_stops(writer, 100)
    for stop_id in range(1000, 1010):
        writer.stop(stop_id, ALDER, "2015-13-01 10:00:00")


@pytest.fixture
def serve(file_server, release):
    """serve(writer) -> an http URL of a release zip built with `writer`."""
    def add(write) -> str:
        return file_server.add(f"/{uuid.uuid4().hex}/STOPS_Extract.zip", release(write))
    return add


def import_nc(config, url: str, **extra) -> tuple[dict, Path]:
    job = request(url, **extra)
    outcome = run_import(job, config)
    folder = Path(extra["destination"]) if extra.get("destination") else (
        config.data_dir / "nc" / job["import_id"])
    return outcome, folder


def odp(config, *args: str, **environ: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "odp", *args], cwd=ROOT,
                          env=config.as_environ() | environ, capture_output=True,
                          text=True, timeout=300)


ROW = re.compile(r"(?P<state>\S+)\s+(?P<import_id>\S+)\s+(?P<status>\S+)\s+(?P<kept>.+?)"
                 r"\s{2,}(?P<size>[\d,.]+ (?:B|kB|MB|GB|TB))\s{2,}(?P<age>.+?)"
                 r"\s{2,}(?P<folder>/\S+)")


def listed(output: str) -> dict[str, dict[str, str]]:
    """`odp files`'s rows by import id (what --prune printed before them left out)."""
    lines = output.splitlines()
    header = next(number for number, line in enumerate(lines) if line.startswith("STATE"))
    assert lines[header].split() == ["STATE", "IMPORT", "STATUS", "KEPT", "SIZE", "AGE",
                                     "FOLDER"], output
    rows = {}
    for line in lines[header + 1:-1]:
        row = ROW.fullmatch(line)
        assert row, line
        rows[row["import_id"]] = {key: value for key, value in row.groupdict().items()
                                  if key != "import_id"}
    return rows


def insert_run(db_engine, import_id: str, state: str, status: str, days_ago: float) -> None:
    from sqlalchemy import text

    with db_engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO ingest.import_runs (import_id, state, url, status, attempts, "
            "started_at, finished_at) VALUES (:id, :state, 'http://example.org/x.zip', "
            ":status, 1, now() - make_interval(days => :days), "
            "CASE WHEN :status = 'running' THEN NULL ELSE now() - make_interval(days => :days) "
            "END)"), {"id": import_id, "state": state, "status": status, "days": days_ago})


# -- after an import ends ------------------------------------------------------------


def test_a_loaded_import_keeps_only_its_reports(config, serve, db):
    outcome, folder = import_nc(config, serve(small_release))

    assert outcome["event"] == "dataset_loaded", outcome
    assert files_in(folder) == {"rejects.csv", MANIFEST}
    assert Path(outcome["payload"]["rejects_file"]) == folder / "rejects.csv"
    assert (folder / "rejects.csv").read_text().splitlines() == ["file,line,reason,content"]
    assert db("SELECT count(*) FROM nc.stop") == [(4,)]


def test_a_failed_import_keeps_its_files_until_the_state_next_loads(config, serve, db):
    failed, failed_folder = import_nc(config, serve(too_many_rejects))
    assert failed["event"] == "dataset_failed" and failed["payload"]["phase"] == "load Stop.txt"
    kept = files_in(failed_folder)
    assert kept == RELEASE_FILES | {"rejects.csv", MANIFEST}
    assert "2015-13-01" in (failed_folder / "rejects.csv").read_text()

    # Another state's import, and another failure of this one, leave it.
    il = run_import({"import_id": new_id(), "state": "il",
                     "url": RELEASES["il"].sample.as_uri()}, config)
    assert il["event"] == "dataset_loaded", il
    again, again_folder = import_nc(config, serve(too_many_rejects))
    assert again["event"] == "dataset_failed"
    assert files_in(failed_folder) == kept
    assert files_in(again_folder) == kept

    loaded, loaded_folder = import_nc(config, serve(small_release))

    assert loaded["event"] == "dataset_loaded", loaded
    assert not failed_folder.exists() and not again_folder.exists()
    assert files_in(loaded_folder) == {"rejects.csv", MANIFEST}
    assert sorted(path.name for path in (config.data_dir / "nc").iterdir()) == [
        loaded_folder.name]


def test_a_failure_past_the_keep_days_goes_when_an_import_of_its_state_ends(
        config, serve, file_server, db):
    old, old_folder = import_nc(config, serve(too_many_rejects))
    recent, recent_folder = import_nc(config, serve(too_many_rejects))
    assert old["event"] == recent["event"] == "dataset_failed"
    make_old(old_folder, 8)
    make_old(recent_folder, 6)
    assert config.ingest_keep_failed_days == 7

    # A download refused by the server: the end of an import all the same.
    gone, gone_folder = import_nc(config, file_server.add("/gone.zip", b"", status=404))

    assert gone["event"] == "dataset_failed" and gone["payload"]["phase"] == "download"
    assert not old_folder.exists()
    assert files_in(recent_folder) == RELEASE_FILES | {"rejects.csv", MANIFEST}
    assert gone_folder.is_dir()

    # The number of days is a setting.
    shorter = config.with_changes(ingest_keep_failed_days=5)
    import_nc(shorter, file_server.add("/gone-again.zip", b"", status=404))
    assert not recent_folder.exists()
    assert gone_folder.is_dir()


def test_only_what_the_import_wrote_is_removed(config, serve, tmp_path, db):
    # An operator's dataset destination, holding files of the operator's own.
    destination = config.data_dir / "releases" / "nc-2026-11"
    destination.mkdir(parents=True)
    (destination / "notes.txt").write_text("received on a USB stick\n")
    loaded, _ = import_nc(config, serve(small_release), destination=str(destination))
    assert loaded["event"] == "dataset_loaded", loaded
    assert files_in(destination) == {"notes.txt", "rejects.csv", MANIFEST}

    # Imported again, failing; then someone puts links among its files and
    # a path out of the folder in its manifest.
    failed, _ = import_nc(config, serve(too_many_rejects), destination=str(destination))
    assert failed["event"] == "dataset_failed"
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "Stop.txt").write_text("not the import's")
    (precious / "escape.txt").write_text("not the import's either")
    (destination / "Stop.txt").unlink()
    (destination / "Stop.txt").symlink_to(precious / "Stop.txt")
    manifest = import_folders.read_manifest(destination)
    manifest["written"].append(os.path.relpath(precious / "escape.txt", destination))
    (destination / MANIFEST).write_text(json.dumps(manifest))
    make_old(destination, 30)

    pruned = prune_now(config, "nc")

    assert [done.folder.path for done in pruned] == [destination.resolve()]
    assert files_in(destination) == {"notes.txt", "Stop.txt"}
    assert (destination / "Stop.txt").is_symlink()
    assert files_in(precious) == {"Stop.txt", "escape.txt"}

    # Outside DATA_DIR, also through a link from inside it, nothing is removed.
    outside = tmp_path / "outside"
    loaded, _ = import_nc(config, serve(small_release), destination=str(outside))
    assert loaded["event"] == "dataset_loaded", loaded
    assert files_in(outside) == RELEASE_FILES | {"rejects.csv"}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (config.data_dir / "linked").symlink_to(elsewhere)
    loaded, folder = import_nc(config, serve(small_release),
                               destination=str(config.data_dir / "linked" / "nc"))
    assert loaded["event"] == "dataset_loaded", loaded
    assert files_in(elsewhere / "nc") == RELEASE_FILES | {"rejects.csv"}


class GatedServer:
    """Serves one body: its headers at once, the body when `gate` is set."""

    def __init__(self, body: bytes):
        self.gate = gate = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.flush()
                gate.wait(120)
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        host, port = self.server.server_address[:2]
        self.url = f"http://{host}:{port}/STOPS_Extract.zip"

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


def wait_for(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_a_running_imports_folder_is_never_removed(config, release, engine, db):
    server = GatedServer(release(small_release).read_bytes())
    job = request(server.url)
    folder = config.data_dir / "nc" / job["import_id"]
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(run_import(job, config)))
    try:
        runner.start()
        wait_for(lambda: (folder / "STOPS_Extract.zip").exists(), "the download to start")
        during = files_in(folder)
        assert during == {"STOPS_Extract.zip", MANIFEST}
        eager = config.with_changes(ingest_keep_failed_days=0)

        # `odp files --prune` leaves a state with an import under way to it.
        result = odp(eager, "files", "--prune")
        assert result.returncode == 0, result.stderr
        assert "nc: an import is running; it prunes the nc folders when it ends" in \
            result.stdout
        assert listed(result.stdout)[job["import_id"]]["status"] == "running"
        # An import of another state ends and prunes its own state only.
        il = run_import({"import_id": new_id(), "state": "il",
                         "url": RELEASES["il"].sample.as_uri()}, eager)
        assert il["event"] == "dataset_loaded", il
        # A pruner without the state's lock (an import of another state in the
        # same folder) still finds the folder taken.
        with raw_connection(config) as conn:
            conn.autocommit = True
            assert import_folders.prune(eager, engine, "nc", conn) == []
        assert files_in(folder) == during
    finally:
        server.gate.set()
        runner.join(120)
        server.close()

    assert outcome["event"] == "dataset_loaded", outcome
    assert files_in(folder) == {"rejects.csv", MANIFEST}


# -- a zip the disk cannot hold ------------------------------------------------------


def zip_declaring(path: Path, total: int) -> Path:
    """A zip whose central directory declares `total` bytes in all (4 GB a
    member at most, without zip64); its members really hold a byte each."""
    sizes = [4_000_000_000] * (total // 4_000_000_000) + [total % 4_000_000_000]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for number in range(len(sizes)):
            archive.writestr(f"part{number}.txt", b"x")
    data = bytearray(path.read_bytes())
    at = 0
    for declared in sizes:
        at = data.index(b"PK\x01\x02", at)
        struct.pack_into("<I", data, at + 24, declared)
        at += 4
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as check:
        assert sum(info.file_size for info in check.infolist()) == total
    return path


@pytest.mark.parametrize("case", ["more than the free space",
                                  "less than the free space but into the reserve"])
def test_a_zip_declaring_more_than_the_disk_can_take_is_refused(case, config, tmp_path, db):
    # The real free space of the data folder's disk: no simulation.
    config.data_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(config.data_dir).free
    if case == "more than the free space":
        reserve = config.ingest_disk_reserve_bytes
        declared = free + 16 * 1024**3
    else:
        reserve = min(10 * 1024**3, free // 2)
        declared = free - reserve // 2
    # The configured cap is far above: the disk is the limit.
    config = config.with_changes(ingest_max_unzipped_bytes=1 << 60,
                                 ingest_disk_reserve_bytes=reserve)
    archive = zip_declaring(tmp_path / "huge.zip", declared)

    outcome, folder = import_nc(config, archive.as_uri())

    assert outcome["event"] == "dataset_failed", outcome
    payload = outcome["payload"]
    assert payload["phase"] == "unpack"
    found = re.fullmatch(
        rf"huge\.zip would unpack to {declared:,} bytes, but the file system of "
        rf"{re.escape(str(folder.resolve()))} has ([\d,]+) bytes free, of which {reserve:,} "
        r"stay in reserve \(INGEST_DISK_RESERVE_BYTES\): make room \(`odp files --prune` "
        r"removes the files of ended imports\) or give DATA_DIR a larger disk",
        payload["error"])
    assert found, payload["error"]
    assert declared > int(found.group(1).replace(",", "")) - reserve
    assert files_in(folder) == {MANIFEST}


# -- odp files --------------------------------------------------------------------------


def test_odp_files_lists_what_is_kept_and_prunes_on_request(config, serve, db):
    loaded_id = new_id("cli")
    result = odp(config, "ingest", "nc", "--url", serve(small_release),
                 "--import-id", loaded_id)
    assert result.returncode == 0, result.stderr
    failed, failed_folder = import_nc(config, serve(too_many_rejects))
    failed_id = failed["payload"]["import_id"]
    make_old(failed_folder, 8)
    loaded_folder = (config.data_dir / "nc" / loaded_id).resolve()

    listing = odp(config, "files")

    assert listing.returncode == 0, listing.stderr
    rows = listed(listing.stdout)
    assert set(rows) == {loaded_id, failed_id}
    assert rows[loaded_id] == {
        "state": "nc", "status": "loaded", "kept": "reports",
        "size": size(sum(path.stat().st_size for path in loaded_folder.iterdir())),
        "age": rows[loaded_id]["age"], "folder": str(loaded_folder)}
    assert re.fullmatch(r"\d+s|\d+m", rows[loaded_id]["age"])
    failed_size = sum(path.stat().st_size for path in failed_folder.iterdir())
    assert rows[failed_id] == {
        "state": "nc", "status": "failed", "kept": "release files, reports",
        "size": size(failed_size), "age": "8d 0h", "folder": str(failed_folder.resolve())}
    loaded_size = sum(path.stat().st_size for path in loaded_folder.iterdir())
    assert listing.stdout.splitlines()[-1] == (
        f"2 folders, {size(loaded_size + failed_size)} in {config.data_dir.resolve()}")

    freed = failed_size - (failed_folder / MANIFEST).stat().st_size

    pruned = odp(config, "files", "--prune")

    assert pruned.returncode == 0, pruned.stderr
    [removed] = [line for line in pruned.stdout.splitlines() if line.startswith("removed")]
    assert removed == (f"removed nc import {failed_id} (failed): {len(RELEASE_FILES) + 1} "
                       f"files, {size(freed)}: {failed_folder.resolve()}")
    assert not failed_folder.exists()
    assert set(listed(pruned.stdout)) == {loaded_id}

    # Without the database: the listing says it cannot tell, pruning refuses.
    down = {"DATABASE_URL": "postgresql://127.0.0.1:1/odp"}
    blind = odp(config, "files", **down)
    assert blind.returncode == 0, blind.stderr
    assert listed(blind.stdout)[loaded_id]["status"] == "?"
    assert "note: the database did not answer" in blind.stderr
    refused = odp(config, "files", "--prune", **down)
    assert refused.returncode == 1
    assert "error: nothing more pruned: the database did not answer" in refused.stderr
    assert loaded_folder.is_dir()


def test_folders_from_before_manifests_are_pruned_only_when_their_import_is_known(
        config, engine, db):
    # <DATA_DIR>/nc/<digits> is admin import <digits>'s own folder.
    base = 9_000_000_000 + int(uuid.uuid4().hex[:8], 16)
    known, interrupted, unknown, recent = (str(base + offset) for offset in range(4))
    folders = {}
    for import_id in (known, interrupted, unknown, recent):
        folder = config.data_dir / "nc" / import_id
        (folder / "sub").mkdir(parents=True)
        for name in ("STOPS_Extract.zip", "Stop.txt", "sub/PERSON.txt", "rejects.csv"):
            (folder / name).write_bytes(b"x" * 100)
        folders[import_id] = folder
    insert_run(engine, known, "nc", "failed", 20)
    insert_run(engine, interrupted, "nc", "running", 20)
    # Started after every nc import that loaded: neither superseded nor old.
    insert_run(engine, recent, "nc", "failed", 0)
    for import_id in (known, interrupted, unknown):
        make_old(folders[import_id], 20)

    listing = listed(odp(config, "files", "--state", "nc").stdout)
    assert {import_id: row["status"] for import_id, row in listing.items()} == {
        known: "failed", interrupted: "interrupted", unknown: "unknown", recent: "failed"}
    assert listing[known]["kept"] == "release files, reports"

    pruned = prune_now(config, "nc")

    assert sorted(done.folder.import_id for done in pruned) == sorted([known, interrupted])
    assert not folders[known].exists() and not folders[interrupted].exists()
    assert files_in(folders[unknown]) == {"STOPS_Extract.zip", "Stop.txt", "sub/PERSON.txt",
                                          "rejects.csv"}
    assert len(files_in(folders[recent])) == 4


def test_the_settings_and_their_defaults():
    config = Config.from_env(environ={}, env_file=None)
    assert config.ingest_keep_failed_days == 7
    assert config.ingest_disk_reserve_bytes == 1024**3
    assert ENVIRONMENT_NAMES["ingest_keep_failed_days"] == "INGEST_KEEP_FAILED_DAYS"
    assert ENVIRONMENT_NAMES["ingest_disk_reserve_bytes"] == "INGEST_DISK_RESERVE_BYTES"
    read = Config.from_env(environ={"INGEST_KEEP_FAILED_DAYS": "0.5",
                                    "INGEST_DISK_RESERVE_BYTES": "5000"}, env_file=None)
    assert (read.ingest_keep_failed_days, read.ingest_disk_reserve_bytes) == (0.5, 5000)
