"""`python -m bench.api`: how fast the public API answers, against the seed.

Loads a generated nc release of `--stops` stops (bench/ingest.py's release,
kept in bench-data/), then measures each figure `--runs` times (3 by
default) in the same run, and ends with one table: each figure beside its
target and beside the original site's way, measured in the same run, with
each run's value, the min (the max for a figure where higher is better,
marked so) and the median. A verdict compares the median of the runs with
the target (an error count: the worst run). The figures, for the largest
agency:

- the stats refresh, a full one each run (nc's generation is forgotten
  first): target under 5 s for 1 million stops, judged only when the
  database holds 0.9 to 1.1 million stops; the original had no refresh
  (per-request SQL);
- the original site's per-request SQL on the same data: a join of persons
  and stops grouped by race and year, and by ethnicity and year, for the one
  agency (the seed's queries), once each per run after one warm-up;
- each endpoint through the real gunicorn server, uncached (a query
  parameter the gateway ignores makes every URL a cache key of its own) and
  cached (sequential requests of one client); target: stops/ uncached at
  least 100 times faster than the seed's SQL, cached p99 under 10 ms;
- the cached stops/ endpoint under load from wrk (Debian's package: its own
  process, in C; 16 connections over 2 threads for 10 s by default), as a
  200 from memcached and as a 304 (If-None-Match with its ETag); target for
  each: at least 3,000 requests per second, p99 under 10 ms, no errors
  (wrk counts a 304 as a success);
- the website's page of the agency (`/nc/agencies/{id}/`): its time to the
  first byte on a new connection, uncached (target: median under 100 ms)
  and cached (target: p99 under 10 ms), and the bytes a browser downloads
  for it: the HTML and the /static/ files it links (site.css, site.js),
  gzip not assumed (target: at most 300 KB).

Gunicorn runs as deployed: the gateway's gunicorn conf (access log on),
2 sync workers unless told otherwise.

    python -m bench.api --stops 1000000
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg2
from pymemcache.client.base import Client as MemcacheClient
from sqlalchemy import text

from bench.ingest import (
    REFRESH_TARGET,
    ROOT,
    release_folder,
    run_import,
    settle,
    timed_refresh,
)
from bench.report import Figure, fixed, print_table
from shared.config import Config
from shared.db import make_engine, psycopg2_dsn

HOST = "127.0.0.1"
STATE = "nc"
TIME_ZONE = "America/New_York"

# The refresh target is judged only on a database of about 1 million stops.
REFRESH_TARGET_STOPS = (900_000, 1_100_000)
# Uncached requests are measured back to back (as a busy server gets them) and
# again this far apart: the gateway's memcached client waits for a delayed ACK
# when a command follows a noreply set within ~40 ms (see the report).
UNCACHED_GAP = 0.1
SEED_RATIO_TARGET = 100.0  # seed SQL time / uncached response time
CACHED_P99_TARGET = 10.0  # ms, sequential requests of one client
THROUGHPUT_TARGET = 3000.0  # requests per second under wrk, 200 and 304 each
LOAD_P99_TARGET = 10.0  # ms, latency under wrk, 200 and 304 each
LOAD_CONNECTIONS = 16  # wrk's connections
LOAD_THREADS = 2  # wrk's threads
PAGE_UNCACHED_TARGET = 100.0  # ms to the first byte of the agency page, median
PAGE_CACHED_TARGET = 10.0  # ms to the first byte of the agency page, p99
PAGE_BYTES_TARGET = 300_000  # bytes a browser downloads for the agency page (300 KB)
PAGE = "agency page"

AGGREGATES = ("stops", "stops_by_reason", "searches", "searches_by_type", "use_of_force",
              "contraband_hit_rate", "stops_by_purpose_group", "arrests", "contraband_types")
ANALYTICS = ("disparities", "officers")
STATEWIDE = ("stops", "stops_by_reason", "disparities")

# The original site's SQL behind one stops/ request: drivers of the agency's
# stops counted by race and year, and by ethnicity and year.
SEED_QUERIES = {
    "race": "SELECT p.race, extract(year FROM s.date AT TIME ZONE %(zone)s) AS year, count(*) "
            "FROM nc.person p JOIN nc.stop s ON s.stop_id = p.stop_id "
            "WHERE s.agency_id = %(agency)s AND p.type = 'D' GROUP BY 1, 2",
    "ethnicity": "SELECT p.ethnicity, extract(year FROM s.date AT TIME ZONE %(zone)s) AS year, "
                 "count(*) FROM nc.person p JOIN nc.stop s ON s.stop_id = p.stop_id "
                 "WHERE s.agency_id = %(agency)s AND p.type = 'D' GROUP BY 1, 2",
}


# --- the seed's SQL ---------------------------------------------------------

def largest_agency(engine) -> tuple[int, str, int]:
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT stop.agency_id, agency.name, count(*) AS stops FROM nc.stop "
            "JOIN nc.agency ON agency.id = stop.agency_id "
            "GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT 1")).one()
    return row.agency_id, row.name, row.stops


def time_seed(config: Config, agency_id: int) -> dict[str, tuple[float, list]]:
    """{variant: (seconds, rows)} of one execution of each of the seed's queries."""
    conn = psycopg2.connect(psycopg2_dsn(config.database_url))
    conn.autocommit = True
    results = {}
    try:
        with conn.cursor() as cursor:
            for name, sql in SEED_QUERIES.items():
                started = time.perf_counter()
                cursor.execute(sql, {"zone": TIME_ZONE, "agency": agency_id})
                rows = cursor.fetchall()
                results[name] = (time.perf_counter() - started, rows)
    finally:
        conn.close()
    return results


# --- the gateway under gunicorn ---------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start_gateway(config: Config, port: int, workers: int, worker_class: str,
                  log_path: Path) -> subprocess.Popen:
    environ = config.as_environ()
    # as_environ() leaves PORT out; MEMCACHED_SERVERS is set again explicitly
    # in case it ever leaves that out too.
    environ["PORT"] = str(port)
    environ["MEMCACHED_SERVERS"] = ",".join(config.memcached_servers)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "wb")
    # As deployed: the gateway's gunicorn conf (access log on, metrics in
    # multiprocess mode). No control socket: its default path is shared by
    # every gunicorn of the user, and other people start gunicorns here.
    command = [sys.executable, "-m", "gunicorn",
               "--config", "python:services.gateway.gunicorn_conf",
               "-w", str(workers), "-k", worker_class,
               "-b", f"{HOST}:{port}", "--no-control-socket", "services.gateway.wsgi:app"]
    process = subprocess.Popen(command, cwd=ROOT, env=environ, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}; see {log_path}")
        try:
            status, _, _ = get(port, "/healthz")
            if status == 200:
                return process
        except OSError:
            pass
        time.sleep(0.2)
    stop_gateway(process)
    raise SystemExit(f"gunicorn did not answer /healthz within 60 s; see {log_path}")


def stop_gateway(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # the gunicorn arbiter stops its workers
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def get(port: int, path: str, connection: http.client.HTTPConnection | None = None
        ) -> tuple[int, bytes, float]:
    """(status, body, seconds) of one GET; `connection` is reused when given
    (http.client reconnects by itself when the server closed it)."""
    own = connection is None
    connection = connection or http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        started = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        return response.status, body, time.perf_counter() - started
    finally:
        if own:
            connection.close()


def fetch(port: int, path: str, headers: dict[str, str] | None = None
          ) -> tuple[int, dict[str, str], bytes]:
    """(status, headers by lower-case name, body) of one GET on a new connection."""
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        body = response.read()
        return (response.status, {name.lower(): value for name, value in response.getheaders()},
                body)
    finally:
        connection.close()


def endpoints(agency_id: int) -> dict[str, str]:
    agency = f"/{STATE}/api/agency/{agency_id}/"
    return {
        **{f"{name}/": f"{agency}{name}/" for name in (*AGGREGATES, *ANALYTICS)},
        "stops/ by month": f"{agency}stops/?by=month",
        "disparities/ 2010-2012": f"{agency}disparities/?from=2010&to=2012",
        **{f"statewide/{name}/": f"/{STATE}/api/statewide/{name}/" for name in STATEWIDE},
        "agency detail": agency,
        "agency list": f"/{STATE}/api/agency/",
        "facts": f"/{STATE}/api/facts/",
        "find a stop (page 1)": f"/{STATE}/api/stops/?agency={agency_id}",
        PAGE: f"/{STATE}/agencies/{agency_id}/",
    }


def with_param(path: str, name: str, value: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}{name}={value}"


def measure_uncached(port: int, paths: dict[str, str], rounds: int, gap: float = 0.0
                     ) -> dict[str, list[float]]:
    """Seconds of each endpoint's requests, each URL made unique with a
    parameter the gateway ignores (validation.py: unknown parameters are
    ignored), so each one misses the cache and runs its queries; `gap`
    seconds apart."""
    seconds: dict[str, list[float]] = {name: [] for name in paths}
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        for _ in range(rounds):
            for name, path in paths.items():
                busted = with_param(path, "_bench", uuid.uuid4().hex)
                status, body, took = get(port, busted, connection)
                if status != 200:
                    raise SystemExit(f"{busted} answered {status}: {body[:300]!r}")
                seconds[name].append(took)
                time.sleep(gap)
    finally:
        connection.close()
    return seconds


def measure_cached(port: int, path: str, requests: int) -> list[float]:
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        get(port, path, connection)  # fills the cache for this generation
        seconds = []
        for _ in range(requests):
            status, body, took = get(port, path, connection)
            if status != 200:
                raise SystemExit(f"{path} answered {status}: {body[:300]!r}")
            seconds.append(took)
    finally:
        connection.close()
    return seconds


def first_byte(port: int, path: str) -> tuple[int, float, bytes]:
    """(status, seconds to the first byte of the answer, body) of one GET on
    a new connection, as a browser's first visit makes it (no gzip asked)."""
    request = (f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: text/html\r\n"
               "Connection: close\r\n\r\n").encode()
    with socket.create_connection((HOST, port), timeout=60) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.perf_counter()
        sock.sendall(request)
        chunks = [sock.recv(65536)]
        took = time.perf_counter() - started
        if not chunks[0]:
            raise ConnectionError(f"{path}: the server closed the connection")
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), took, body


def measure_page(port: int, path: str, requests: int) -> dict:
    """The agency page: time to the first byte uncached (each URL unique,
    UNCACHED_GAP apart) and cached, and the bytes a browser downloads for it
    (the HTML, then each /static/ file it links)."""
    uncached, cached = [], []
    for _ in range(requests):
        busted = with_param(path, "_bench", uuid.uuid4().hex)
        status, took, body = first_byte(port, busted)
        if status != 200:
            raise SystemExit(f"{busted} answered {status}: {body[:300]!r}")
        uncached.append(took)
        time.sleep(UNCACHED_GAP)
    first_byte(port, path)  # fills the cache for this generation
    for _ in range(requests):
        status, took, html = first_byte(port, path)
        if status != 200:
            raise SystemExit(f"{path} answered {status}: {html[:300]!r}")
        cached.append(took)
    downloads = {"HTML": len(html)}
    for asset in dict.fromkeys(re.findall(rb'(?:href|src)="(/static/[^"]+)"', html)):
        status, body, _ = get(port, asset.decode())
        if status != 200:
            raise SystemExit(f"{asset.decode()} answered {status}")
        downloads[asset.decode()] = len(body)
    return {"uncached": uncached, "cached": cached, "downloads": downloads,
            "bytes": sum(downloads.values())}


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


# --- the load generator: wrk ------------------------------------------------

def find_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed; it is this benchmark's load generator "
                         "(Debian/Ubuntu: sudo apt-get install wrk; `make bench-api` "
                         "installs it when run as root)")
    return wrk


_TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_TIME = r"([\d.]+)(us|ms|s|m|h)"


def parse_wrk(output: str) -> dict:
    """Requests/sec, the latency distribution (seconds by percent), the
    requests and the failures of wrk's report (printed with --latency)."""
    rate = re.search(r"^Requests/sec:\s+([\d.]+)\s*$", output, re.MULTILINE)
    done = re.search(rf"^\s*(\d+) requests in {_TIME}", output, re.MULTILINE)
    latency = {int(share): float(value) * _TIME_UNITS[unit] for share, value, unit in
               re.findall(rf"^\s+(\d+)%\s+{_TIME}\s*$", output, re.MULTILINE)}
    if rate is None or done is None or not {50, 99} <= latency.keys():
        raise SystemExit(f"could not read wrk's report:\n{output}")
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                        output)
    socket_errors = dict(zip(("connect", "read", "write", "timeout"),
                             (int(count) for count in sockets.groups()), strict=True)
                         ) if sockets else {}
    other = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    non_2xx_3xx = int(other.group(1)) if other else 0
    return {"rate": float(rate.group(1)), "requests": int(done.group(1)),
            "seconds": float(done.group(2)) * _TIME_UNITS[done.group(3)],
            "p50": latency[50], "p99": latency[99], "non_2xx_3xx": non_2xx_3xx,
            "socket_errors": socket_errors,
            "errors": non_2xx_3xx + sum(socket_errors.values())}


def run_wrk(wrk: str, port: int, path: str, threads: int, connections: int, seconds: int,
            headers: dict[str, str] | None = None) -> dict:
    """wrk's report of `seconds` of GETs of `path` over `connections`
    connections in `threads` threads (its own process)."""
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    command.append(f"http://{HOST}:{port}{path}")
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited with {done.returncode}:\n"
                         f"{done.stdout}{done.stderr}")
    return parse_wrk(done.stdout)


def etag_of(port: int, path: str) -> str:
    """The ETag of `path`, checked: a GET with it in If-None-Match answers 304."""
    status, headers, body = fetch(port, path)
    etag = headers.get("etag")
    if status != 200 or not etag:
        raise SystemExit(f"{path} answered {status} with ETag {etag!r}: {body[:300]!r}")
    status, _, body = fetch(port, path, {"If-None-Match": etag})
    if status != 304:
        raise SystemExit(f"{path} with If-None-Match: {etag} answered {status}, not 304: "
                         f"{body[:300]!r}")
    return etag


def memcached_hits(config: Config) -> int | None:
    """Total get hits of the configured memcached servers, or None."""
    hits = 0
    for server in config.memcached_servers:
        host, _, port = server.rpartition(":")
        client = MemcacheClient((host, int(port)), connect_timeout=1, timeout=1)
        try:
            hits += int(client.stats()[b"get_hits"])
        except Exception:  # informational only
            return None
        finally:
            client.close()
    return hits


def describe_load(report: dict) -> str:
    sockets = ", ".join(f"{name} {count}" for name, count in report["socket_errors"].items())
    return (f"{report['requests']:,} requests in {report['seconds']:.1f}s, "
            f"{report['rate']:,.0f} requests/s, p50 {report['p50'] * 1000:.2f} ms, "
            f"p99 {report['p99'] * 1000:.2f} ms, {report['non_2xx_3xx']} non-2xx/3xx, "
            f"socket errors: {sockets or 'none'}")


# --- the report -------------------------------------------------------------

def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.2f}"


def check_counts(body: bytes, seed_rows: list) -> str:
    """Does stops/ give the seed's totals by year? (The seed counts every
    person of type D; the API one driver per stop.)"""
    api = {row["year"]: sum(row[key] for key in ("asian", "black", "native_american",
                                                 "other", "white"))
           for row in json.loads(body)}
    seed: dict[int, int] = {}
    for _, year, count in seed_rows:
        seed[int(year)] = seed.get(int(year), 0) + count
    if api == seed:
        return "stops/ totals by year equal the seed query's"
    differing = sorted(year for year in api.keys() | seed.keys() if api.get(year) != seed.get(year))
    return (f"stops/ totals differ from the seed query's in {len(differing)} year(s), e.g. "
            + ", ".join(f"{year}: api {api.get(year)} seed {seed.get(year)}"
                        for year in differing[:3]))


# --- the run ----------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stops", type=int, default=1_000_000)
    parser.add_argument("--skip-import", action="store_true",
                        help="use the nc data already loaded instead of importing the release")
    parser.add_argument("--runs", type=int, default=3,
                        help="times each figure is measured (the table gives min and median)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class")
    parser.add_argument("--uncached-rounds", type=int, default=5,
                        help="uncached requests of each endpoint per run (their median counts)")
    parser.add_argument("--cached-requests", type=int, default=200,
                        help="cached requests of each endpoint per run")
    parser.add_argument("--page-requests", type=int, default=30,
                        help="agency page requests timed to the first byte, each way, per run")
    parser.add_argument("--load-threads", type=int, default=LOAD_THREADS, help="wrk's threads")
    parser.add_argument("--load-connections", type=int, default=LOAD_CONNECTIONS,
                        help="wrk's connections")
    parser.add_argument("--load-seconds", type=int, default=10,
                        help="seconds of each wrk run (200 and 304), per run")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    wrk = find_wrk()
    config = Config.from_env()
    engine = make_engine(config)

    if args.skip_import:
        with engine.connect() as conn:
            data_version = conn.execute(text(
                "SELECT max(data_version) FROM ingest.import_runs "
                "WHERE state = :state AND status = 'loaded'"), {"state": STATE}).scalar()
        if data_version is None:
            raise SystemExit("--skip-import: no nc import is loaded in this database")
        print(f"using the loaded nc data (data version {data_version})", flush=True)
    else:
        folder = release_folder(args.stops)
        print(f"importing {folder} ...", flush=True)
        took, _, payload, _ = run_import(config, folder)
        data_version = payload["data_version"]
        print(f"  imported {payload['counts']} in {took:.1f}s (data version {data_version}; "
              f"{payload['rejected_rows']:,} lines rejected, dropped {payload['dropped']})",
              flush=True)

    with engine.connect() as conn:
        total_stops = conn.execute(text(f"SELECT count(*) FROM {STATE}.stop")).scalar()
    runs = range(1, args.runs + 1)

    # The stats refresh, a full one each run, before the gateway starts.
    refresh_seconds = []
    for run in runs:
        settle(config)
        took, refreshed = timed_refresh(engine, data_version)
        refresh_seconds.append(took)
        print(f"run {run}: stats refresh {took:.2f}s for {total_stops:,} stops -> generation "
              f"{refreshed['generation']}", flush=True)
    with engine.connect() as conn:
        summary_rows = conn.execute(text(f"SELECT count(*) FROM stats.{STATE}_stop_summary")
                                    ).scalar()
        analyzed = conn.execute(text(
            "SELECT greatest(last_analyze, last_autoanalyze) FROM pg_stat_user_tables "
            "WHERE schemaname = 'stats' AND relname = :name"),
            {"name": f"{STATE}_stop_summary"}).scalar()
    print(f"  {summary_rows:,} summary rows; the summary table was "
          + (f"last analyzed at {analyzed:%H:%M:%S}" if analyzed
             else "analyzed in the refresh's own transaction"), flush=True)

    agency_id, agency_name, agency_stops = largest_agency(engine)
    print(f"largest agency: {agency_id} {agency_name} ({agency_stops:,} stops)", flush=True)
    time_seed(config, agency_id)  # warm-up, untimed: the runs find the pages in memory

    port = free_port()
    log_path = ROOT / "bench-data" / "runs" / "gateway-bench.log"
    gateway = start_gateway(config, port, args.workers, args.worker_class, log_path)
    print(f"gunicorn ({args.workers} {args.worker_class} workers, access log on) on "
          f"{HOST}:{port}, log in {log_path}; wrk: {args.load_threads} threads, "
          f"{args.load_connections} connections, {args.load_seconds}s", flush=True)
    paths = endpoints(agency_id)
    seed_runs: list[dict[str, tuple[float, list]]] = []
    uncached: list[dict[str, float]] = []  # per run: each endpoint's median, seconds
    spaced: list[dict[str, float]] = []
    cached: list[dict[str, list[float]]] = []  # per run: each endpoint's seconds
    pages: list[dict] = []
    loads: list[dict] = []  # per run: wrk's reports, 200 and 304, and memcached's hits
    try:
        # Every worker opens its database and cache connections before anything
        # is timed.
        for _ in range(4 * args.workers):
            get(port, with_param(f"/{STATE}/api/agency/", "_warm", uuid.uuid4().hex))
        for run in runs:
            seed_runs.append(time_seed(config, agency_id))
            rounds = measure_uncached(port, paths, args.uncached_rounds)
            uncached.append({name: statistics.median(seconds)
                             for name, seconds in rounds.items()})
            rounds = measure_uncached(port, paths, args.uncached_rounds, UNCACHED_GAP)
            spaced.append({name: statistics.median(seconds) for name, seconds in rounds.items()})
            cached.append({name: measure_cached(port, path, args.cached_requests)
                           for name, path in paths.items()})
            pages.append(measure_page(port, paths[PAGE], args.page_requests))

            stops_path = paths["stops/"]
            status, headers, stops_body = fetch(port, stops_path)
            if status != 200:
                raise SystemExit(f"{stops_path} answered {status}: {stops_body[:300]!r}")
            hits_before = memcached_hits(config)
            ok = run_wrk(wrk, port, stops_path, args.load_threads, args.load_connections,
                         args.load_seconds)
            hits_after = memcached_hits(config)
            etag = etag_of(port, stops_path)
            not_modified = run_wrk(wrk, port, stops_path, args.load_threads,
                                   args.load_connections, args.load_seconds,
                                   {"If-None-Match": etag})
            hits = (hits_after - hits_before if hits_before is not None
                    and hits_after is not None else None)
            loads.append({"200": ok, "304": not_modified, "hits": hits,
                          "x-cache": headers.get("x-cache")})
            seed_seconds = sum(seconds for seconds, _ in seed_runs[-1].values())
            print(f"run {run}: seed SQL {seed_seconds * 1000:.0f} ms, stops/ uncached "
                  f"{uncached[-1]['stops/'] * 1000:.1f} ms, {PAGE} uncached "
                  f"{statistics.median(pages[-1]['uncached']) * 1000:.1f} ms", flush=True)
            print(f"  wrk 200 (X-Cache: {headers.get('x-cache')}): {describe_load(ok)}; "
                  + (f"memcached get hits +{hits:,}" if hits is not None
                     else "memcached's hits unknown"), flush=True)
            print(f"  wrk 304 (If-None-Match: {etag}): {describe_load(not_modified)}",
                  flush=True)
    finally:
        stop_gateway(gateway)
    engine.dispose()

    # --- the endpoints, over the runs ---
    seed_totals = [sum(seconds for seconds, _ in seed.values()) for seed in seed_runs]
    seed_best, seed_median = min(seed_totals), statistics.median(seed_totals)
    print(f"\n{'endpoint (agency ' + str(agency_id) + ')':<27}{'uncached':>9}{'min':>8}"
          f"{'seed/unc.':>10}{'spaced':>9}{'cached p50':>12}{'p99':>8}{'min':>8}{'max':>8}"
          "   (ms)")
    for name in paths:
        runs_uncached = [run[name] for run in uncached]
        p99s = [percentile(run[name], 0.99) for run in cached]
        median_uncached = statistics.median(runs_uncached)
        print(f"{name:<27}{median_uncached * 1000:>9.1f}{min(runs_uncached) * 1000:>8.1f}"
              f"{seed_median / median_uncached:>9.0f}x"
              f"{statistics.median(run[name] for run in spaced) * 1000:>9.1f}"
              f"{statistics.median(percentile(run[name], 0.5) for run in cached) * 1000:>12.2f}"
              f"{statistics.median(p99s) * 1000:>8.2f}{min(p99s) * 1000:>8.2f}"
              f"{max(max(run[name]) for run in cached) * 1000:>8.1f}")
    print(f"(over {args.runs} runs, the median and the min: uncached, each run's median of "
          f"{args.uncached_rounds} requests, each URL unique, back to back; seed/unc.: the "
          f"seed SQL's median over the uncached median; spaced: the same "
          f"{UNCACHED_GAP * 1000:.0f} ms apart; cached: {args.cached_requests} sequential "
          "requests of one client per run after one that fills the cache, p50 and p99 of each "
          "run, max of all)")
    downloads = pages[-1]["downloads"]
    print(f"{PAGE} {paths[PAGE]}: a browser downloads {pages[-1]['bytes']:,} bytes for it, "
          "gzip not assumed: " + ", ".join(f"{name} {size:,}" for name, size in downloads.items()))
    for name, _ in SEED_QUERIES.items():
        times = [seed[name][0] for seed in seed_runs]
        print(f"seed query by {name} and year: min {min(times) * 1000:.0f} ms, median "
              f"{statistics.median(times) * 1000:.0f} ms ({len(seed_runs[-1][name][1])} rows)")
    print(check_counts(stops_body, seed_runs[-1]["race"][1]))

    # --- the table ---
    aggregate_names = [f"{name}/" for name in AGGREGATES]
    api_names = [name for name in paths if name != PAGE]  # the page has rows of its own
    in_range = REFRESH_TARGET_STOPS[0] <= total_stops <= REFRESH_TARGET_STOPS[1]
    seed_ms = f"seed SQL {seed_median * 1000:.1f} ms"
    per_request = "none (per-request SQL)"

    def times(value: float) -> str:
        return f"{value:,.0f}x"

    count = fixed(0)

    figures = [
        Figure(f"stats refresh, {total_stops:,} stops (s)",
               f"< {REFRESH_TARGET:.0f} s at 1M", per_request, lambda value: f"{value:.2f}",
               (lambda value: value < REFRESH_TARGET) if in_range else None,
               values=refresh_seconds),
        Figure("seed SQL per stops/ request, race + ethnicity (ms)", "-",
               "(the original's way)", ms, values=seed_totals),
        Figure("stops/ uncached (ms)", "-", seed_ms, ms,
               values=[run["stops/"] for run in uncached]),
        Figure("stops/ uncached, times faster than the seed SQL",
               f">= {SEED_RATIO_TARGET:.0f}x", "1x", times,
               lambda value: value >= SEED_RATIO_TARGET, higher_is_better=True,
               values=[seed / run["stops/"] for seed, run in
                       zip(seed_totals, uncached, strict=True)]),
        Figure("slowest aggregate uncached, times faster than the seed SQL", "-", "1x", times,
               higher_is_better=True,
               values=[seed / max(run[name] for name in aggregate_names)
                       for seed, run in zip(seed_totals, uncached, strict=True)]),
        Figure("cached p99, slowest API endpoint, 1 client (ms)",
               f"< {CACHED_P99_TARGET:.0f} ms", seed_ms, ms,
               lambda value: value * 1000 < CACHED_P99_TARGET,
               values=[max(percentile(run[name], 0.99) for name in api_names)
                       for run in cached]),
    ]
    for kind in ("200", "304"):
        label = f"stops/ cached {kind}, wrk {args.load_connections} connections"
        figures += [
            Figure(f"{label}: requests/s", f">= {THROUGHPUT_TARGET:,.0f}",
                   f"{1 / seed_best:,.1f} (1 / seed SQL)", count,
                   lambda value: value >= THROUGHPUT_TARGET, higher_is_better=True,
                   values=[load[kind]["rate"] for load in loads]),
            Figure(f"{label}: p99 (ms)", f"< {LOAD_P99_TARGET:.0f} ms", per_request, ms,
                   lambda value: value * 1000 < LOAD_P99_TARGET,
                   values=[load[kind]["p99"] for load in loads]),
            Figure(f"{label}: errors (non-2xx/3xx, socket)", "0", "-", count,
                   lambda value: value == 0, judge_worst=True,
                   values=[load[kind]["errors"] for load in loads]),
        ]
    figures += [
        Figure("memcached get hits per wrk 200 request", "-", "-", lambda value: f"{value:.2f}",
               values=[load["hits"] / load["200"]["requests"] if load["hits"] is not None
                       else math.nan for load in loads]),
        Figure(f"{PAGE} uncached, first byte, median (ms)",
               f"< {PAGE_UNCACHED_TARGET:.0f} ms", "-", ms,
               lambda value: value * 1000 < PAGE_UNCACHED_TARGET,
               values=[statistics.median(page["uncached"]) for page in pages]),
        Figure(f"{PAGE} cached, first byte, p99 (ms)", f"< {PAGE_CACHED_TARGET:.0f} ms", "-",
               ms, lambda value: value * 1000 < PAGE_CACHED_TARGET,
               values=[percentile(page["cached"], 0.99) for page in pages]),
        Figure(f"{PAGE} download, no gzip (KB)", f"<= {PAGE_BYTES_TARGET / 1000:.0f} KB", "-",
               lambda value: f"{value / 1000:,.1f}", lambda value: value <= PAGE_BYTES_TARGET,
               values=[page["bytes"] for page in pages]),
    ]
    print(f"\nagency {agency_id} ({agency_stops:,} of {total_stops:,} stops), "
          f"{args.runs} runs, gunicorn {args.workers} {args.worker_class} workers:\n")
    print_table(figures, args.runs)
    if not in_range:
        print(f"(the refresh's target is for 1M stops; {total_stops:,} stops loaded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
