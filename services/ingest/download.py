"""Fetching a release: http and https (streamed), ftp, and file:// when enabled.

`ftp://nc.us/` is North Carolina's own server: host and credentials come
from the configuration (NC_FTP_HOST, NC_FTP_USER, NC_FTP_PASSWORD) and the
path defaults to the state's nightly extract.
"""

from __future__ import annotations

import ftplib
import re
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import requests

from services.ingest.errors import ImportFailed
from services.ingest.import_folders import is_manifest_name
from shared.config import Config
from shared.netguard import PrivateAddress, check_host, networks

NC_FTP_ALIAS = "nc.us"
NC_EXTRACT = "STOPS_Extract.zip"
CHUNK = 1 << 20
PHASE = "download"
MAX_REDIRECTS = 5


def fetch(url: str, folder: Path, config: Config, progress=lambda done, total: None,
          before_write=lambda files, folders: None) -> Path:
    """Download `url` into `folder` and return the local file (or folder) path.
    `before_write([path], [])` is told the file before it is written (a
    file:// URL's own file is never written, nor told)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return _fetch_http(url, folder, config, progress, before_write)
    if scheme == "ftp":
        return _fetch_ftp(parts, folder, config, progress, before_write)
    if scheme == "file":
        if not config.allow_file_urls:
            raise ImportFailed(PHASE, f"file:// URLs are not enabled on this server: {url} "
                               "(set ODP_ALLOW_FILE_URLS=1 to allow them)")
        path = Path(unquote(parts.path))
        if not path.exists():
            raise ImportFailed(PHASE, f"{url}: no such file or folder")
        return path
    raise ImportFailed(PHASE, f"unsupported URL scheme {scheme or '(none)'!r} in {url}: "
                       "use http, https or ftp")


def _file_name(path: str, default: str) -> str:
    name = Path(unquote(path)).name
    # The folder's record of what the import wrote is the import's own: a
    # download may not take its name (nor its partial file's).
    if is_manifest_name(name):
        return default
    return name or default


def _guard(url: str, host: str, config: Config) -> None:
    """Refuse a host outside the public internet (shared/netguard.py)."""
    try:
        check_host(host, networks(config.download_allowed_networks))
    except PrivateAddress as error:
        raise ImportFailed(PHASE, f"{url} is not fetched: {error}") from None


def _get_following_redirects(url: str, config: Config) -> tuple[str, requests.Response]:
    """GET `url`, following redirects by hand: each one's host is checked
    before it is asked, so a public server cannot send the fetch inward."""
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            raise ImportFailed(PHASE, f"a redirect led to {url}: only http and https are "
                               "followed")
        _guard(url, parts.hostname or "", config)
        response = requests.get(url, stream=True, allow_redirects=False,
                                timeout=(10, config.download_timeout))
        if not response.is_redirect:
            return url, response
        response.close()
        url = urljoin(url, response.headers["Location"])
    raise ImportFailed(PHASE, f"more than {MAX_REDIRECTS} redirects, the last to {url}")


def _fetch_http(url: str, folder: Path, config: Config, progress, before_write) -> Path:
    target = folder / _file_name(urlsplit(url).path, "release.zip")
    before_write([target], [])
    try:
        url, response = _get_following_redirects(url, config)
        with response:
            if response.status_code >= 400:
                raise ImportFailed(PHASE, f"{url} answered HTTP {response.status_code} "
                                   f"{response.reason}")
            total = int(response.headers.get("Content-Length") or 0) or None
            done = 0
            with open(target, "wb") as out:
                for chunk in response.iter_content(CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    progress(done, total)
            if total is not None and done < total:
                raise ImportFailed(PHASE, f"{url}: the download stopped after {done} of "
                                   f"{total} bytes")
    except requests.RequestException as error:
        raise ImportFailed(PHASE, f"could not download {url}: {_reason(error)}") from error
    return target


def _reason(error: Exception) -> str:
    text = str(error)
    if isinstance(error, requests.ConnectionError):
        cause = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
        return f"the server could not be reached ({cause.group(1) if cause else text})"
    if isinstance(error, requests.Timeout):
        return "the server did not answer in time"
    return text


def _fetch_ftp(parts, folder: Path, config: Config, progress, before_write) -> Path:
    if (parts.hostname or "").lower() == NC_FTP_ALIAS:
        if not config.nc_ftp_host:
            raise ImportFailed(PHASE, "ftp://nc.us/ needs NC_FTP_HOST (and NC_FTP_USER, "
                               "NC_FTP_PASSWORD) in the configuration")
        host, _, port = config.nc_ftp_host.partition(":")
        user, password = config.nc_ftp_user, config.nc_ftp_password
        remote = unquote(parts.path).lstrip("/") or NC_EXTRACT
        shown = f"ftp://nc.us/{remote}"
    else:
        host, port = parts.hostname or "", parts.port
        user, password = unquote(parts.username or "anonymous"), unquote(parts.password or "")
        remote = unquote(parts.path).lstrip("/")
        shown = f"ftp://{host}/{remote}"
        # The state's own server (above) is configured; an operator's host is checked.
        _guard(shown, host, config)
    target = folder / _file_name(remote, NC_EXTRACT)
    before_write([target], [])
    try:
        with ftplib.FTP(timeout=config.download_timeout) as ftp:
            ftp.connect(host, int(port or 21))
            ftp.login(user, password)
            ftp.voidcmd("TYPE I")  # SIZE is refused in ASCII mode by many servers
            try:
                total = ftp.size(remote)
            except ftplib.all_errors:
                total = None
            done = 0
            with open(target, "wb") as out:
                def write(block: bytes) -> None:
                    nonlocal done
                    out.write(block)
                    done += len(block)
                    progress(done, total)

                ftp.retrbinary(f"RETR {remote}", write, blocksize=CHUNK)
    except ftplib.error_perm as error:
        raise ImportFailed(PHASE, f"the FTP server refused {shown}: {error}") from error
    except (OSError, EOFError, ftplib.Error) as error:
        raise ImportFailed(PHASE, f"could not download {shown}: {error or type(error).__name__}"
                           ) from error
    return target

