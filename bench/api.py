"""`python -m bench.api`: how fast the public API answers, against the seed.

Loads a generated nc release of `--stops` stops (bench/ingest.py's release,
kept in bench-data/), refreshes the stats, and in the same run measures for
the largest agency:

- the stats refresh (target: under 20 s for 1 million stops);
- the original site's per-request SQL on the same data: a join of persons
  and stops grouped by race and year, and by ethnicity and year, for the one
  agency (the seed's queries);
- each endpoint through the real gunicorn server, uncached (a query
  parameter the gateway ignores makes every URL a cache key of its own) and
  cached (sequential requests of one client); target: uncached at least 30
  times faster than the seed's SQL, cached p99 under 10 ms;
- throughput of the cached stops/ endpoint under a load generator in
  separate processes (target: at least 1,500 requests per second on this
  2-core machine);
- the website's page of the agency (`/nc/agencies/{id}/`): uncached and
  cached with the endpoints, then its time to the first byte on a new
  connection, uncached (target: median under 100 ms) and cached (target:
  p99 under 10 ms), and the bytes a browser downloads for it: the HTML and
  the /static/ files it links (site.css, site.js), gzip not assumed
  (target: at most 300 KB).

    python -m bench.api --stops 1000000
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import multiprocessing
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg2
from pymemcache.client.base import Client as MemcacheClient
from sqlalchemy import text

from bench.ingest import ROOT, release_folder, run_import, settle
from services.stats.refresh import refresh
from shared.config import Config
from shared.db import make_engine, psycopg2_dsn

HOST = "127.0.0.1"
STATE = "nc"
TIME_ZONE = "America/New_York"

REFRESH_TARGET = 20.0  # seconds, for the 1-million-stop release
# Uncached requests are measured back to back (as a busy server gets them) and
# again this far apart: the gateway's memcached client waits for a delayed ACK
# when a command follows a noreply set within ~40 ms (see the report).
UNCACHED_GAP = 0.1
SEED_RATIO_TARGET = 30.0  # seed SQL time / uncached response time
CACHED_P99_TARGET = 10.0  # ms
THROUGHPUT_TARGET = 1500.0  # requests per second
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


# --- the stats refresh ------------------------------------------------------

def timed_refresh(engine, data_version: int) -> tuple[float, dict]:
    started = time.monotonic()
    payload = refresh(engine, STATE, data_version)
    took = time.monotonic() - started
    if payload is None:
        # The stats already cover this load (a stats service got there first).
        # This is the development database, so forgetting nc's generation to
        # force a full refresh is acceptable for a benchmark; the generation
        # numbers start again at 1, and the gateway's cache keys also carry
        # refreshed_at, so no stale entry can be served.
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM stats.generations WHERE state = :state"),
                         {"state": STATE})
        started = time.monotonic()
        payload = refresh(engine, STATE, data_version)
        took = time.monotonic() - started
    if payload is None:
        raise SystemExit("the stats refresh did nothing, even after forgetting the generation")
    return took, payload


# --- the seed's SQL ---------------------------------------------------------

def largest_agency(engine) -> tuple[int, str, int]:
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT stop.agency_id, agency.name, count(*) AS stops FROM nc.stop "
            "JOIN nc.agency ON agency.id = stop.agency_id "
            "GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT 1")).one()
    return row.agency_id, row.name, row.stops


def time_seed(config: Config, agency_id: int, runs: int) -> dict[str, tuple[float, float, list]]:
    """{variant: (best seconds, median seconds, rows)} of the seed's queries."""
    conn = psycopg2.connect(psycopg2_dsn(config.database_url))
    conn.autocommit = True
    results = {}
    try:
        with conn.cursor() as cursor:
            for name, sql in SEED_QUERIES.items():
                seconds, rows = [], []
                for _ in range(runs):
                    started = time.perf_counter()
                    cursor.execute(sql, {"zone": TIME_ZONE, "agency": agency_id})
                    rows = cursor.fetchall()
                    seconds.append(time.perf_counter() - started)
                results[name] = (min(seconds), statistics.median(seconds), rows)
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


# --- the load generator (runs in other processes) ---------------------------

class _Client:
    """A minimal HTTP/1.1 client over one socket: keeps the connection while
    the server does and reconnects when it closes (gunicorn's sync workers
    close after every response). Cheap, so the generator is not the limit."""

    def __init__(self, port: int, path: str):
        self.address = (HOST, port)
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                        "Accept: application/json\r\n\r\n").encode()
        self.sock: socket.socket | None = None
        self.buffer = b""

    def get(self) -> int:
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buffer = b""
        self.sock.sendall(self.request)
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._fill()
        self.buffer = self.buffer[length:]
        if headers.get("connection") == "close":
            self.close()
        return status

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-response")
        self.buffer += chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _load_thread(port: int, path: str, start_at: float, stop_at: float, limit: int,
                 tally: dict) -> None:
    client = _Client(port, path)
    latencies = tally["latencies"]
    while time.time() < start_at:
        time.sleep(0.001)
    done = 0
    while done < limit:
        began = time.perf_counter()
        if time.time() >= stop_at:
            break
        try:
            status = client.get()
        except OSError:
            client.close()
            status = 0
        with tally["lock"]:
            if status == 200:
                tally["ok"] += 1
                latencies.append(time.perf_counter() - began)
            else:
                tally["errors"] += 1
        done += 1
    client.close()
    with tally["lock"]:
        tally["last"] = max(tally["last"], time.time())


def _load_process(port: int, path: str, threads: int, limit: int, seconds: float, ready,
                  start_value, results) -> None:
    ready.put(os.getpid())
    while start_value.value == 0:
        time.sleep(0.001)
    start_at = start_value.value
    tally = {"ok": 0, "errors": 0, "last": 0.0, "latencies": [], "lock": threading.Lock()}
    workers = [threading.Thread(target=_load_thread, args=(
        port, path, start_at, start_at + seconds, limit, tally)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    results.put({"ok": tally["ok"], "errors": tally["errors"], "last": tally["last"],
                 "latencies": tally["latencies"]})


def throughput(port: int, path: str, processes: int, threads: int, seconds: float,
               limit: int) -> dict:
    context = multiprocessing.get_context("fork")
    ready, results = context.Queue(), context.Queue()
    start_value = context.Value("d", 0.0)
    workers = [context.Process(target=_load_process, args=(
        port, path, threads, limit, seconds, ready, start_value, results))
        for _ in range(processes)]
    for worker in workers:
        worker.start()
    try:
        for _ in workers:
            ready.get(timeout=60)
        start_at = time.time() + 0.5
        start_value.value = start_at
        reports = [results.get(timeout=seconds + 120) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.terminate()
    ok = sum(report["ok"] for report in reports)
    errors = sum(report["errors"] for report in reports)
    elapsed = max(report["last"] for report in reports) - start_at
    latencies = [value for report in reports for value in report["latencies"]]
    return {"ok": ok, "errors": errors, "seconds": elapsed, "rate": ok / elapsed,
            "p50": percentile(latencies, 0.5) if latencies else math.nan,
            "p99": percentile(latencies, 0.99) if latencies else math.nan}


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


# --- the run ----------------------------------------------------------------

def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stops", type=int, default=1_000_000)
    parser.add_argument("--skip-import", action="store_true",
                        help="use the nc data already loaded instead of importing the release")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class")
    parser.add_argument("--seed-runs", type=int, default=3)
    parser.add_argument("--uncached-rounds", type=int, default=5)
    parser.add_argument("--cached-requests", type=int, default=200)
    parser.add_argument("--page-requests", type=int, default=30,
                        help="agency page requests timed to the first byte, each way")
    parser.add_argument("--load-processes", type=int, default=4)
    parser.add_argument("--load-threads", type=int, default=2)
    parser.add_argument("--load-seconds", type=float, default=10.0)
    parser.add_argument("--load-limit", type=int, default=100_000,
                        help="most requests per load thread")
    args = parser.parse_args(argv)
    config = Config.from_env()
    engine = make_engine(config)

    if args.skip_import:
        with engine.connect() as conn:
            data_version = conn.execute(text(
                "SELECT max(data_version) FROM ingest.import_runs "
                "WHERE state = :state AND status = 'loaded'"), {"state": STATE}).scalar()
        print(f"using the loaded nc data (data version {data_version})", flush=True)
    else:
        folder = release_folder(args.stops)
        print(f"importing {folder} ...", flush=True)
        took, _, payload, _ = run_import(config, folder)
        data_version = payload["data_version"]
        print(f"  imported {payload['counts']} in {took:.1f}s (data version {data_version}; "
              f"{payload['rejected_rows']:,} lines rejected, dropped {payload['dropped']})",
              flush=True)

    settle(config)
    refresh_seconds, refreshed = timed_refresh(engine, data_version)
    with engine.connect() as conn:
        summary_rows = conn.execute(text(f"SELECT count(*) FROM stats.{STATE}_stop_summary")
                                    ).scalar()
        total_stops = conn.execute(text(f"SELECT count(*) FROM {STATE}.stop")).scalar()
    print(f"stats refresh: {refresh_seconds:.1f}s for {total_stops:,} stops -> generation "
          f"{refreshed['generation']}, {summary_rows:,} summary rows", flush=True)

    agency_id, agency_name, agency_stops = largest_agency(engine)
    print(f"largest agency: {agency_id} {agency_name} ({agency_stops:,} stops)", flush=True)

    seed = time_seed(config, agency_id, args.seed_runs)
    seed_best = sum(best for best, _, _ in seed.values())
    seed_median = sum(median for _, median, _ in seed.values())
    for name, (best, median, rows) in seed.items():
        print(f"seed query by {name} and year: best {best * 1000:.0f} ms, median "
              f"{median * 1000:.0f} ms of {args.seed_runs} ({len(rows)} rows)", flush=True)

    port = free_port()
    log_path = ROOT / "bench-data" / "runs" / "gateway-bench.log"
    gateway = start_gateway(config, port, args.workers, args.worker_class, log_path)
    try:
        print(f"gunicorn ({args.workers} {args.worker_class} workers) on {HOST}:{port}, "
              f"log in {log_path}", flush=True)
        paths = endpoints(agency_id)
        # Every worker opens its database and cache connections before anything
        # is timed.
        for _ in range(4 * args.workers):
            get(port, with_param(f"/{STATE}/api/agency/", "_warm", uuid.uuid4().hex))
        uncached = measure_uncached(port, paths, args.uncached_rounds)
        spaced = measure_uncached(port, paths, args.uncached_rounds, UNCACHED_GAP)
        cached = {name: measure_cached(port, path, args.cached_requests)
                  for name, path in paths.items()}
        _, stops_body, _ = get(port, paths["stops/"])
        page = measure_page(port, paths[PAGE], args.page_requests)

        hits_before = memcached_hits(config)
        load = throughput(port, paths["stops/"], args.load_processes, args.load_threads,
                          args.load_seconds, args.load_limit)
        hits_after = memcached_hits(config)
    finally:
        stop_gateway(gateway)
    with engine.connect() as conn:
        analyzed = conn.execute(text(
            "SELECT greatest(last_analyze, last_autoanalyze) FROM pg_stat_user_tables "
            "WHERE schemaname = 'stats' AND relname = :name"),
            {"name": f"{STATE}_stop_summary"}).scalar()

    # --- the report ---
    print(f"\n{'endpoint (agency ' + str(agency_id) + ')':<24}{'uncached':>10}"
          f"{'seed/unc.':>10}{'spaced':>9}{'cached p50':>12}{'p99':>8}{'max':>8}   (ms)")
    for name in paths:
        uncached_ms = statistics.median(uncached[name]) * 1000
        print(f"{name:<24}{uncached_ms:>10.1f}{seed_best * 1000 / uncached_ms:>9.0f}x"
              f"{statistics.median(spaced[name]) * 1000:>9.1f}"
              f"{percentile(cached[name], 0.5) * 1000:>12.2f}"
              f"{percentile(cached[name], 0.99) * 1000:>8.2f}{max(cached[name]) * 1000:>8.1f}")
    print(f"(uncached: median of {args.uncached_rounds} requests, each URL unique, back to back;"
          f" spaced: the same {UNCACHED_GAP * 1000:.0f} ms apart; cached: "
          f"{args.cached_requests} sequential requests of one client after one that fills "
          "the cache)")

    page_uncached = statistics.median(page["uncached"]) * 1000
    page_cached = percentile(page["cached"], 0.99) * 1000
    print(f"\n{PAGE} {paths[PAGE]}: first byte on a new connection, uncached median "
          f"{page_uncached:.1f} ms (p99 {percentile(page['uncached'], 0.99) * 1000:.1f}), "
          f"cached median {statistics.median(page['cached']) * 1000:.2f} ms (p99 "
          f"{page_cached:.2f}); {args.page_requests} requests each")
    print(f"  a browser downloads {page['bytes']:,} bytes for it, gzip not assumed: "
          + ", ".join(f"{name} {size:,}" for name, size in page["downloads"].items()))

    stops_uncached = statistics.median(uncached["stops/"])
    ratio = seed_best / stops_uncached
    aggregate_names = [f"{name}/" for name in AGGREGATES]
    worst_name = max(aggregate_names, key=lambda name: statistics.median(uncached[name]))
    worst_ratio = seed_best / statistics.median(uncached[worst_name])
    # The API's endpoints; the page has target lines of its own.
    worst_p99_name = max((name for name in paths if name != PAGE),
                         key=lambda name: percentile(cached[name], 0.99))
    worst_p99 = percentile(cached[worst_p99_name], 0.99) * 1000

    print(f"\nseed per-request SQL (race + ethnicity queries): best {seed_best * 1000:.0f} ms, "
          f"median {seed_median * 1000:.0f} ms")
    print(f"  by race alone: best {seed['race'][0] * 1000:.0f} ms")
    print(check_counts(stops_body, seed["race"][2]))
    hits = (f", memcached get hits +{hits_after - hits_before:,}"
            if hits_before is not None and hits_after is not None else "")
    print(f"throughput of cached stops/: {load['rate']:,.0f} requests/s "
          f"({load['ok']:,} ok, {load['errors']:,} errors in {load['seconds']:.1f}s; "
          f"{args.load_processes} processes x {args.load_threads} threads; latency under load "
          f"p50 {load['p50'] * 1000:.1f} ms, p99 {load['p99'] * 1000:.1f} ms{hits})")
    print(f"stats refresh: {refresh_seconds:.1f}s for {total_stops:,} stops; the summary "
          "table was " + (f"last analyzed at {analyzed:%H:%M:%S}" if analyzed
                          else "analyzed in the refresh's own transaction"))

    refresh_target = REFRESH_TARGET
    print("\ntargets:")
    print(f"  {verdict(ratio >= SEED_RATIO_TARGET)}  stops/ uncached {ratio:.0f}x faster than "
          f"the seed's SQL (at least {SEED_RATIO_TARGET:.0f}x); slowest aggregate "
          f"{worst_name} {worst_ratio:.0f}x; spaced {UNCACHED_GAP * 1000:.0f} ms apart, stops/ "
          f"{seed_best / statistics.median(spaced['stops/']):.0f}x")
    print(f"  {verdict(worst_p99 < CACHED_P99_TARGET)}  cached p99 at most {worst_p99:.2f} ms "
          f"({worst_p99_name}; under {CACHED_P99_TARGET:.0f} ms)")
    print(f"  {verdict(load['rate'] >= THROUGHPUT_TARGET and load['errors'] == 0)}  "
          f"{load['rate']:,.0f} cached requests/s, {load['errors']} errors "
          f"(at least {THROUGHPUT_TARGET:,.0f}, none failing)")
    print(f"  {verdict(refresh_seconds < refresh_target)}  stats refresh {refresh_seconds:.1f}s "
          f"(under {refresh_target:.0f}s for {total_stops:,} stops)")
    print(f"  {verdict(page_uncached < PAGE_UNCACHED_TARGET)}  {PAGE} uncached: first byte "
          f"after {page_uncached:.1f} ms, median (under {PAGE_UNCACHED_TARGET:.0f} ms)")
    print(f"  {verdict(page_cached < PAGE_CACHED_TARGET)}  {PAGE} cached: first byte after "
          f"{page_cached:.2f} ms, p99 (under {PAGE_CACHED_TARGET:.0f} ms)")
    print(f"  {verdict(page['bytes'] <= PAGE_BYTES_TARGET)}  {PAGE}: {page['bytes'] / 1000:,.1f} "
          f"KB downloaded, HTML + CSS + JS without gzip (at most "
          f"{PAGE_BYTES_TARGET / 1000:.0f} KB)")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
