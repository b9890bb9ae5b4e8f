"""A local HTTP server speaking the Census data API's format, standing in for
api.census.gov in the tests and under `make run`:

    api = LocalCensusApi()                  # services/census/fixture.json
    config = config.with_changes(census_api_url=api.url)
    ...
    api.requests   # [("/data/2022/acs/acs5", {"get": "NAME,GEO_ID,...", ...}), ...]
    api.close()

    python -m services.census.local_api --port 8391

It answers `GET /data/{year}/acs/acs5?get=NAME,GEO_ID,VAR,...&for=county:*
&in=state:37[&key=...]` (or `for=place:*`) with a JSON array whose first row
is the header (the `get` names, then `state` and `county` or `place`) and
whose values are strings, as the real API does; `for=state:37` (no `in`)
answers the state's own row, its header ending with `state`. Its data is
keyed by year, each a list of geographies (a state's kind is "state" and its
code its FIPS code):

    {"2022": [{"geoid": "0500000US37063", "name": "Alder County, North Carolina",
               "state_fips": "37", "kind": "county", "code": "063",
               "B03002_001E": 331412, ...},
              {"geoid": "0400000US37", "name": "North Carolina", "state_fips": "37",
               "kind": "state", "code": "37", "B03002_001E": 10539171, ...}, ...]}

A query that matches nothing is answered 204 with no body, as the real API does.

A variable none of the year's geographies has is unknown (400, "error:
unknown variable 'XYZ'"); the key "bad-key" is refused (400, "Invalid Key").
`responder(request_count, path, params)` may answer instead, with
(status, body) or (status, body, headers), or None to answer normally.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

FIXTURE = Path(__file__).resolve().parent / "fixture.json"
DEFAULT_PORT = 8391
BAD_KEY = "bad-key"
MAX_VARIABLES = 50
GEOGRAPHY_FIELDS = {"geoid", "name", "state_fips", "kind", "code"}
DATASET = re.compile(r"^/data/(\d{4})/acs/acs5/?$")
PREDICATE = re.compile(r"^(county|place|state):(\*|\d+(?:,\d+)*)$")
STATE = re.compile(r"^state:(\d{2})$")

INVALID_KEY = (
    "<html><head><title>Invalid Key</title></head><body>"
    "<h1>Invalid Key</h1><p>A valid <em>key</em> must be included with each data API "
    "request. You included a key with this request, however, it is not valid. Please "
    "check your key and try again.</p><p>If you do not have a key you may sign up for "
    "one here.</p></body></html>")


def load_fixture(path: str | Path = FIXTURE) -> dict[str, list[dict]]:
    """The geographies of a data file by year (its "data" member, or the
    whole file when it is keyed by year)."""
    document = json.loads(Path(path).read_text())
    return document.get("data", document) if isinstance(document, dict) else document


def answer(data: dict[str, list[dict]], path: str,
           params: dict[str, str]) -> tuple[int, str, str]:
    """(status, body, content type) as the Census API answers the request."""
    if params.get("key") == BAD_KEY:
        return 400, INVALID_KEY, "text/html"
    match = DATASET.match(path)
    if not match or match.group(1) not in data:
        return 404, f"error: unknown/unsupported dataset: {path}", "text/plain"
    geographies = data[match.group(1)]
    if not params.get("get"):
        return 400, "error: missing 'get' argument", "text/plain"
    if not params.get("for"):
        return 400, "error: missing 'for' argument", "text/plain"
    wanted = PREDICATE.match(params["for"])
    within = STATE.match(params.get("in", ""))
    # Counties and places are asked for within a state; states by themselves.
    kind = wanted.group(1) if wanted else None
    if kind is None or (kind == "state" and "in" in params) or (
            kind != "state" and not within):
        return 400, "error: unknown/unsupported geography hierarchy", "text/plain"
    names = params["get"].split(",")
    if len(names) > MAX_VARIABLES:
        return 400, (f"error: you requested {len(names)} variables; a request may ask for "
                     f"at most {MAX_VARIABLES}"), "text/plain"
    known = {"NAME", "GEO_ID"} | {key for geography in geographies for key in geography
                                  if key not in GEOGRAPHY_FIELDS}
    for name in names:
        if name not in known:
            return 400, f"error: unknown variable '{name}'", "text/plain"
    codes = wanted.group(2)
    fips = within.group(1) if kind != "state" else None
    rows = [[*names, "state"] if kind == "state" else [*names, "state", kind]]
    for geography in geographies:
        if geography["kind"] != kind or fips not in (None, geography["state_fips"]):
            continue
        if codes != "*" and geography["code"] not in codes.split(","):
            continue
        row = []
        for name in names:
            value = {"NAME": geography["name"], "GEO_ID": geography["geoid"]}.get(
                name, geography.get(name))
            row.append(None if value is None else str(value))
        row.append(geography["state_fips"])
        if kind != "state":
            row.append(geography["code"])
        rows.append(row)
    if len(rows) == 1:  # the real API answers an empty result so
        return 204, "", "application/json"
    return 200, "[" + ",\n".join(json.dumps(row) for row in rows) + "]", "application/json"


class LocalCensusApi:
    """The Census API on 127.0.0.1 (a free port unless given), in a daemon thread."""

    def __init__(self, data: dict | None = None, responder=None, host: str = "127.0.0.1",
                 port: int = 0):
        source = load_fixture() if data is None else data
        self.data = {str(year): list(geographies) for year, geographies in source.items()}
        self.responder = responder
        self.requests: list[tuple[str, dict[str, str]]] = []
        lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                parts = urlsplit(self.path)
                params = {name: values[-1] for name, values in
                          parse_qs(parts.query, keep_blank_values=True).items()}
                with lock:
                    api.requests.append((parts.path, params))
                    count = len(api.requests)
                headers: dict = {}
                content_type = "text/plain"
                given = api.responder(count, parts.path, params) if api.responder else None
                if given is not None:
                    status, body, *rest = given
                    headers = rest[0] if rest else {}
                else:
                    status, body, content_type = answer(api.data, parts.path, params)
                payload = body.encode() if isinstance(body, str) else bytes(body)
                self.send_response(status)
                self.send_header("Content-Type", f"{content_type}; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, str(value))
                self.end_headers()
                if status != 204:
                    try:
                        self.wfile.write(payload)
                    except (BrokenPipeError, ConnectionResetError):
                        pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.census.local_api",
        description="Serve census data in the Census API's format (CENSUS_API_URL).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--data", type=Path, default=FIXTURE,
                        help="a JSON file of geographies by year (default: the bundled "
                             "fixture)")
    options = parser.parse_args(argv)

    api = LocalCensusApi(load_fixture(options.data), host=options.host, port=options.port)
    stop = threading.Event()

    def stopping(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    print(f"serving the census fixture at {api.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        api.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
