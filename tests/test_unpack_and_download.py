"""Unit tests of the two steps before parsing: unpacking a release zip safely
(services.ingest.unpack) and fetching it over http, ftp or file://
(services.ingest.download). No database or broker: local HTTP and FTP servers
stand in for the states' servers."""

from __future__ import annotations

import io
import random
import struct
import zipfile
from pathlib import Path

import pytest

from services.ingest.download import fetch
from services.ingest.errors import ImportFailed
from services.ingest.unpack import safe_unzip
from shared.config import Config

MB = 1 << 20


def plain_config(**changes) -> Config:
    """The tests' servers listen on the loopback, which is allowed here."""
    changes.setdefault("download_allowed_networks", ("127.0.0.0/8",))
    return Config.from_env(environ={}, env_file=None).with_changes(
        download_timeout=15.0, **changes)


def make_zip(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data)
    return path


def files_under(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {path.relative_to(folder).as_posix(): path.read_bytes()
            for path in folder.rglob("*") if path.is_file()}


# -- safe_unzip ------------------------------------------------------------------


def test_normal_zip_unpacks_every_member(tmp_path):
    members = {"Stop.txt": b"1\tAlder\r\n" * 100, "sub/PERSON.txt": b"1\t1\tD\r\n",
               "QUERY_README.txt": b"not data"}
    archive = make_zip(tmp_path / "release.zip", members)
    seen = []

    paths = safe_unzip(archive, tmp_path / "out", max_bytes=10 * MB,
                       progress=lambda done, total: seen.append((done, total)))

    out = (tmp_path / "out").resolve()
    assert sorted(paths) == sorted(out / name for name in members)
    assert files_under(out) == members
    declared = sum(len(data) for data in members.values())
    assert seen and seen[-1] == (declared, declared)


def test_directory_entries_are_not_returned_as_files(tmp_path):
    archive = tmp_path / "release.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(zipfile.ZipInfo("folder/"), b"")
        zipped.writestr("folder/Stop.txt", b"data")

    paths = safe_unzip(archive, tmp_path / "out", max_bytes=MB)

    assert paths == [(tmp_path / "out").resolve() / "folder" / "Stop.txt"]


@pytest.mark.parametrize("name", ["../evil.txt", "sub/../../evil.txt", "..\\evil.txt"])
def test_entry_climbing_out_of_the_folder_is_refused(tmp_path, name):
    archive = make_zip(tmp_path / "evil.zip", {"Stop.txt": b"fine", name: b"pwned"})
    out = tmp_path / "out"

    with pytest.raises(ImportFailed) as failure:
        safe_unzip(archive, out, max_bytes=MB)

    assert failure.value.phase == "unpack"
    assert repr(name) in failure.value.message
    assert "outside the destination folder" in failure.value.message
    assert not (tmp_path / "evil.txt").exists()
    # The whole archive is refused before anything is written.
    assert files_under(out) == {}


def test_absolute_entry_is_refused(tmp_path):
    outside = tmp_path / "outside.txt"
    for name in ("/etc/x", str(outside)):
        archive = make_zip(tmp_path / "abs.zip", {name: b"pwned"})
        with pytest.raises(ImportFailed) as failure:
            safe_unzip(archive, tmp_path / "out", max_bytes=MB)
        assert repr(name) in failure.value.message
        assert "outside the destination folder" in failure.value.message
    assert not outside.exists()
    assert files_under(tmp_path / "out") == {}


def test_symbolic_link_entry_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        link = zipfile.ZipInfo("Stop.txt")
        link.external_attr = 0o120777 << 16
        zipped.writestr(link, "/etc/passwd")

    with pytest.raises(ImportFailed) as failure:
        safe_unzip(archive, tmp_path / "out", max_bytes=MB)

    assert "'Stop.txt' is a symbolic link" in failure.value.message
    assert not (tmp_path / "out" / "Stop.txt").is_symlink()
    assert files_under(tmp_path / "out") == {}


def test_declared_size_over_the_cap_is_refused_before_writing(tmp_path):
    archive = make_zip(tmp_path / "big.zip", {"a.txt": b"A" * 600, "b.txt": b"B" * 400})

    with pytest.raises(ImportFailed) as failure:
        safe_unzip(archive, tmp_path / "out", max_bytes=999)

    assert "big.zip would unpack to 1,000 bytes" in failure.value.message
    assert "limit of 999" in failure.value.message
    assert files_under(tmp_path / "out") == {}
    # Exactly at the cap is fine.
    assert len(safe_unzip(archive, tmp_path / "out", max_bytes=1000)) == 2


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_zip_lying_about_its_sizes_cannot_write_past_the_cap(tmp_path, compression):
    # A member of 100,000 real bytes whose headers claim 10: the declared
    # total passes the cap, the bytes written must not.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as zipped:
        zipped.writestr("bomb.txt", b"A" * 100_000)
    data = bytearray(buffer.getvalue())
    assert data[:4] == b"PK\x03\x04"
    struct.pack_into("<I", data, 22, 10)  # local header: uncompressed size
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 10)  # central directory: the same
    archive = tmp_path / "lying.zip"
    archive.write_bytes(bytes(data))
    with zipfile.ZipFile(archive) as check:
        assert check.getinfo("bomb.txt").file_size == 10

    with pytest.raises(ImportFailed) as failure:
        safe_unzip(archive, tmp_path / "out", max_bytes=1000)

    assert failure.value.phase == "unpack"
    written = sum(len(content) for content in files_under(tmp_path / "out").values())
    assert written <= 1000


def test_random_bytes_are_not_a_readable_zip(tmp_path):
    archive = tmp_path / "noise.zip"
    archive.write_bytes(random.Random(5).randbytes(4096))

    with pytest.raises(ImportFailed) as failure:
        safe_unzip(archive, tmp_path / "out", max_bytes=MB)

    assert failure.value.phase == "unpack"
    assert "noise.zip is not a readable zip" in failure.value.message


def test_truncated_zip_is_not_a_readable_zip(tmp_path):
    whole = make_zip(tmp_path / "whole.zip",
                     {"Stop.txt": random.Random(3).randbytes(50_000)},
                     compression=zipfile.ZIP_STORED)
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(whole.read_bytes()[:25_000])

    with pytest.raises(ImportFailed) as failure:
        safe_unzip(truncated, tmp_path / "out", max_bytes=MB)

    assert "truncated.zip is not a readable zip" in failure.value.message


# -- download.fetch: http ----------------------------------------------------------


def test_http_download_streams_the_bytes_and_reports_progress(tmp_path, file_server):
    body = random.Random(11).randbytes(3 * MB + 12_345)
    url = file_server.add("/nc/STOPS_Extract.zip", body)
    calls = []

    path = fetch(url, tmp_path, plain_config(), progress=lambda d, t: calls.append((d, t)))

    assert path == tmp_path / "STOPS_Extract.zip"
    assert path.read_bytes() == body
    done = [d for d, _ in calls]
    assert len(done) >= 2
    assert all(a < b for a, b in zip(done, done[1:], strict=False))
    assert calls[-1] == (len(body), len(body))


def test_http_url_without_a_file_name_saves_release_zip(tmp_path, file_server):
    url = file_server.add("/", b"zip bytes")

    path = fetch(url, tmp_path, plain_config())

    assert path == tmp_path / "release.zip"
    assert path.read_bytes() == b"zip bytes"


def test_http_error_status_fails_naming_the_status(tmp_path, file_server):
    url = file_server.add("/gone.zip", b"no such release", status=404)

    with pytest.raises(ImportFailed) as failure:
        fetch(url, tmp_path, plain_config())

    assert failure.value.phase == "download"
    assert "HTTP 404" in failure.value.message
    assert url in failure.value.message


def test_unreachable_http_server_fails_saying_so(tmp_path):
    with pytest.raises(ImportFailed) as failure:
        fetch("http://127.0.0.1:9/STOPS_Extract.zip", tmp_path, plain_config())

    assert failure.value.phase == "download"
    assert "could not be reached" in failure.value.message
    assert "http://127.0.0.1:9/STOPS_Extract.zip" in failure.value.message


# -- download.fetch: ftp -------------------------------------------------------------


def nc_ftp_config(ftp_server, password="nc-secret") -> Config:
    return plain_config(nc_ftp_host=ftp_server.address, nc_ftp_user="nc-user",
                        nc_ftp_password=password)


def test_nc_alias_downloads_the_extract_from_the_configured_ftp_server(tmp_path,
                                                                       ftp_server):
    body = random.Random(13).randbytes(2 * MB + 777)
    (ftp_server.root / "STOPS_Extract.zip").write_bytes(body)
    folder = tmp_path / "download"
    folder.mkdir()
    calls = []

    path = fetch("ftp://nc.us/", folder, nc_ftp_config(ftp_server),
                 progress=lambda d, t: calls.append(d))

    assert path == folder / "STOPS_Extract.zip"
    assert path.read_bytes() == body
    assert calls and calls[-1] == len(body)
    assert all(a < b for a, b in zip(calls, calls[1:], strict=False))


def test_ftp_progress_reports_the_file_size_as_total(tmp_path, ftp_server):
    # fetch asks the server for the size (SIZE) to report progress against;
    # servers like this one (and ProFTPD) refuse SIZE in ASCII mode, the
    # default transfer type, so it must switch to binary (TYPE I) first.
    body = b"Z" * 300_000
    (ftp_server.root / "STOPS_Extract.zip").write_bytes(body)
    totals = []

    fetch("ftp://nc.us/", tmp_path, nc_ftp_config(ftp_server),
          progress=lambda d, t: totals.append(t))

    assert totals and set(totals) == {len(body)}


def test_nc_alias_with_a_path_fetches_that_file(tmp_path, ftp_server):
    (ftp_server.root / "older.zip").write_bytes(b"older release")
    folder = tmp_path / "download"
    folder.mkdir()

    path = fetch("ftp://nc.us/older.zip", folder, nc_ftp_config(ftp_server))

    assert path == folder / "older.zip"
    assert path.read_bytes() == b"older release"


def test_nc_alias_with_a_wrong_password_is_refused(tmp_path, ftp_server):
    (ftp_server.root / "STOPS_Extract.zip").write_bytes(b"secret")

    with pytest.raises(ImportFailed) as failure:
        fetch("ftp://nc.us/", tmp_path, nc_ftp_config(ftp_server, password="wrong"))

    assert failure.value.phase == "download"
    assert "the FTP server refused ftp://nc.us/STOPS_Extract.zip" in failure.value.message
    assert not (tmp_path / "STOPS_Extract.zip").exists()


def test_nc_alias_with_a_missing_file_is_refused(tmp_path, ftp_server):
    with pytest.raises(ImportFailed) as failure:
        fetch("ftp://nc.us/", tmp_path, nc_ftp_config(ftp_server))

    assert "the FTP server refused ftp://nc.us/STOPS_Extract.zip" in failure.value.message


def test_nc_alias_without_a_configured_host_names_the_setting(tmp_path):
    with pytest.raises(ImportFailed) as failure:
        fetch("ftp://nc.us/", tmp_path, plain_config())

    assert failure.value.phase == "download"
    assert "NC_FTP_HOST" in failure.value.message


# -- download.fetch: file:// and others ---------------------------------------------


def test_file_url_is_refused_unless_enabled(tmp_path):
    release = tmp_path / "STOPS_Extract.zip"
    release.write_bytes(b"local")

    with pytest.raises(ImportFailed) as failure:
        fetch(release.as_uri(), tmp_path / "unused", plain_config(allow_file_urls=False))

    assert failure.value.phase == "download"
    assert "ODP_ALLOW_FILE_URLS" in failure.value.message


def test_file_url_when_enabled_returns_the_local_path(tmp_path):
    release = tmp_path / "my release" / "STOPS_Extract.zip"
    release.parent.mkdir()
    release.write_bytes(b"local")

    path = fetch(release.as_uri(), tmp_path / "unused", plain_config(allow_file_urls=True))

    assert path == release
    assert path.read_bytes() == b"local"


def test_file_url_to_a_missing_file_fails(tmp_path):
    missing = (tmp_path / "nothing.zip").as_uri()

    with pytest.raises(ImportFailed) as failure:
        fetch(missing, tmp_path, plain_config(allow_file_urls=True))

    assert "no such file or folder" in failure.value.message


@pytest.mark.parametrize("url", ["gopher://example.org/release.zip", "example.org/release.zip"])
def test_unsupported_scheme_is_refused(tmp_path, url):
    with pytest.raises(ImportFailed) as failure:
        fetch(url, tmp_path, plain_config())

    assert failure.value.phase == "download"
    assert "unsupported URL scheme" in failure.value.message
    assert url in failure.value.message


# -- where a URL may lead (shared/netguard.py) --------------------------------

def test_a_loopback_url_is_not_fetched_unless_its_network_is_allowed(tmp_path, file_server):
    url = file_server.add("/STOPS_Extract.zip", b"release")

    with pytest.raises(ImportFailed) as refused:
        fetch(url, tmp_path, plain_config(download_allowed_networks=()))

    assert str(refused.value) == (
        f"{url} is not fetched: 127.0.0.1 is a loopback address: dataset URLs must point at "
        "public servers (DOWNLOAD_ALLOWED_NETWORKS lists private networks to allow)")
    assert file_server.requests == [], "the server was asked anyway"


def test_a_redirect_is_followed_and_each_host_checked(tmp_path, file_server):
    target = file_server.add("/new/STOPS_Extract.zip", b"release bytes")
    moved = file_server.redirect("/old/STOPS_Extract.zip", target)
    assert fetch(moved, tmp_path, plain_config()).read_bytes() == b"release bytes"

    inward = file_server.redirect("/metadata.zip", "http://169.254.169.254/latest/meta-data/")
    with pytest.raises(ImportFailed) as refused:
        fetch(inward, tmp_path, plain_config())

    assert "http://169.254.169.254/latest/meta-data/ is not fetched: 169.254.169.254 is a " \
           "link-local address" in str(refused.value)


def test_an_operators_ftp_host_is_checked_but_the_states_own_server_is_not(
        tmp_path, ftp_server):
    (ftp_server.root / "STOPS_Extract.zip").write_bytes(b"release")
    host, _, port = ftp_server.address.partition(":")
    closed = plain_config(download_allowed_networks=(), nc_ftp_host=ftp_server.address,
                          nc_ftp_user="nc-user", nc_ftp_password="nc-secret")

    with pytest.raises(ImportFailed) as refused:
        fetch(f"ftp://nc-user:nc-secret@{host}:{port}/STOPS_Extract.zip", tmp_path, closed)
    assert "is a loopback address" in str(refused.value)
    # ftp://nc.us/ is the configured server: the operator did not choose it.
    assert fetch("ftp://nc.us/", tmp_path, closed).read_bytes() == b"release"


@pytest.mark.parametrize("name", [".odp-import.json", "sub/.odp-import.json",
                                  ".odp-import.json.partial"])
def test_a_member_named_as_the_imports_own_record_is_refused(tmp_path, name):
    """The folder's manifest says what a later prune removes: a release may
    not write it (it could list the operator's own files)."""
    archive = make_zip(tmp_path / "release.zip", {"Stop.txt": b"1\r\n", name: b"{}"})
    with pytest.raises(ImportFailed, match="the import's own record"):
        safe_unzip(archive, tmp_path / "out", max_bytes=MB)
    assert not (tmp_path / "out" / "Stop.txt").exists()


def test_a_download_never_takes_the_manifests_name():
    from services.ingest.download import _file_name

    assert _file_name("/releases/.odp-import.json", "release.zip") == "release.zip"
    assert _file_name("/releases/STOPS_Extract.zip", "release.zip") == "STOPS_Extract.zip"
