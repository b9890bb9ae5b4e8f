"""Prometheus metrics: the gateway under real gunicorn with two workers and
its conf (services/gateway/gunicorn_conf.py), a nameko service serving its
own on METRICS_PORT, and the counting in the import, refresh and mail code."""

from __future__ import annotations

import glob
import json
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client import REGISTRY
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from services.admin import reports
from shared import metrics
from shared.events import ADMIN_SOURCE, IMPORT_REQUESTED
from shared.nameko_support import publisher
from tests.support.gateway import ALDER, load_and_refresh, town_release
from tests.support.releases import new_id, request_import, small_release
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
CONF = "python:services.gateway.gunicorn_conf"
STOPS = "/{state}/api/agency/{agency_id}/stops/"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """(sample name, its labels) -> value, read by prometheus_client's parser."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples}


def value(scraped: dict, name: str, **labels) -> float | None:
    return scraped.get((name, frozenset(labels.items())))


def total(scraped: dict, name: str, **labels) -> float:
    """The sum of `name` over the samples carrying `labels` (among others)."""
    wanted = set(labels.items())
    return sum(number for (sample, labelset), number in scraped.items()
               if sample == name and wanted <= labelset)


def scrape(url: str) -> dict:
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    return samples(response.text)


@pytest.fixture
def start_metered_gateway(start_service):
    """The gateway as Kubernetes runs it: gunicorn with the conf, two workers,
    the public port and, with `metrics_port`, a second bind for Prometheus."""
    def start(metrics_port: int = 0, **environ) -> str:
        port = free_port()
        binds = ["--bind", f"127.0.0.1:{port}"]
        if metrics_port:
            binds += ["--bind", f"127.0.0.1:{metrics_port}"]
            environ["METRICS_PORT"] = str(metrics_port)
        argv = [sys.executable, "-m", "gunicorn", "--config", CONF, "--workers", "2",
                "--no-control-socket", *binds, "services.gateway.wsgi:app"]
        start_service("gateway", argv=argv, ready_mark="Listening at: ", PORT=str(port),
                      **environ)
        return f"http://127.0.0.1:{port}"

    return start


def stale_counts(folder: Path) -> None:
    """What an earlier gateway left in the metrics folder: 1000 requests of a
    route of its own, written by a process of its own."""
    code = ("from shared import metrics; "
            "metrics.HTTP_REQUESTS.labels('/stale/', 'GET', '200').inc(1000)")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                   env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)})
    assert glob.glob(str(folder / "counter_*.db"))


def requests_by_process(folder: Path) -> list[float]:
    """Each gunicorn worker's own count of requests, from its file."""
    counts = []
    for path in sorted(glob.glob(str(folder / "counter_*.db"))):
        counted = sum(sample.value for metric in MultiProcessCollector.merge([path])
                      if metric.name == "odp_http_requests" for sample in metric.samples
                      if sample.name == "odp_http_requests_total")
        counts.append(counted)
    return counts


def test_the_gateway_counts_requests_by_route_over_its_workers(
        town, start_metered_gateway, tmp_path):
    folder = tmp_path / "prometheus"
    folder.mkdir()
    stale_counts(folder)
    metrics_port = free_port()
    base = start_metered_gateway(metrics_port, PROMETHEUS_MULTIPROC_DIR=str(folder))
    scrape_url = f"http://127.0.0.1:{metrics_port}/metrics"
    url = f"{base}/nc/api/agency/{town[ALDER]}/stops/"

    # A first request fills the cache; then concurrent ones, until both
    # workers have answered some.
    caches = [requests.get(url, timeout=10).headers["X-Cache"]]
    with ThreadPoolExecutor(8) as pool:
        while len([n for n in requests_by_process(folder) if n]) < 2:
            answers = list(pool.map(lambda _: requests.get(url, timeout=10), range(16)))
            assert {answer.status_code for answer in answers} == {200}
            caches += [answer.headers["X-Cache"] for answer in answers]
            assert len(caches) < 500, "one worker answered every request"
    assert requests.get(f"{base}/no/such/path/", timeout=10).status_code == 404

    scraped = scrape(scrape_url)

    answered = len(caches)
    labels = {"route": STOPS, "method": "GET", "status": "200"}
    assert value(scraped, "odp_http_requests_total", **labels) == answered
    # Summed over both workers, each of which counted a part.
    per_worker = [n for n in requests_by_process(folder) if n]
    assert len(per_worker) == 2 and sum(per_worker) == answered + 1
    assert value(scraped, "odp_http_request_duration_seconds_count", **labels) == answered
    assert value(scraped, "odp_http_request_duration_seconds_bucket", le="+Inf",
                 **labels) == answered
    assert value(scraped, "odp_http_request_duration_seconds_bucket", le="0.001",
                 **labels) is not None
    assert 0 < value(scraped, "odp_http_request_duration_seconds_sum", **labels) < 60
    assert value(scraped, "odp_http_requests_total", route="unmatched", method="GET",
                 status="404") == 1
    # Never a raw path.
    assert not [labelset for (name, labelset) in scraped
                if name == "odp_http_requests_total" and ("route", url) in labelset]
    assert value(scraped, "odp_cache_lookups_total", result="miss") == caches.count("miss")
    assert value(scraped, "odp_cache_lookups_total", result="hit") == caches.count("hit")
    # The first request filled the cache, which answered every later one.
    assert caches.count("miss") == 1 and caches[0] == "miss"
    # The arbiter emptied the folder: nothing of the earlier gateway.
    assert total(scraped, "odp_http_requests_total", route="/stale/") == 0

    # /metrics is no request of the API: scraping counts nothing.
    again = scrape(scrape_url)
    assert total(again, "odp_http_requests_total") == total(scraped, "odp_http_requests_total")
    assert total(again, "odp_http_requests_total", route="/metrics") == 0

    # Only on the metrics port: the public port answers 404, whatever the
    # Host header claims.
    public = requests.get(f"{base}/metrics", timeout=10)
    assert public.status_code == 404
    assert "odp_http_requests_total" not in public.text
    spoofed = requests.get(f"{base}/metrics", timeout=10,
                           headers={"Host": f"127.0.0.1:{metrics_port}"})
    assert spoofed.status_code == 404
    assert total(scrape(scrape_url), "odp_http_requests_total", route="/metrics") == 0


def test_without_a_metrics_port_the_gateway_answers_metrics_on_its_own_port(
        start_metered_gateway):
    base = start_metered_gateway()
    for _ in range(3):
        assert requests.get(f"{base}/healthz", timeout=10).status_code == 200

    scraped = scrape(f"{base}/metrics")

    assert value(scraped, "odp_http_requests_total", route="/healthz", method="GET",
                 status="200") == 3
    assert total(scraped, "odp_http_requests_total", route="/metrics") == 0


def test_a_nameko_service_serves_its_import_metrics(
        config, release, events, start_ingest_service, file_server):
    port = free_port()
    start_ingest_service(METRICS_PORT=str(port))
    loaded = request_import(config, release(small_release).as_uri())
    failed = request_import(config, file_server.add("/missing.zip", b"", status=404))
    payload = events.wait_for("dataset_loaded", loaded)
    events.wait_for("dataset_failed", failed)

    url = f"http://127.0.0.1:{port}/metrics"
    scraped = wait_until(lambda: (lambda s: s if value(
        s, "odp_import_duration_seconds_count", state="nc") == 2 else None)(scrape(url)))

    assert value(scraped, "odp_imports_total", state="nc", outcome="loaded") == 1
    assert value(scraped, "odp_imports_total", state="nc", outcome="failed") == 1
    assert value(scraped, "odp_rows_loaded_total", state="nc") == sum(
        payload["counts"].values()) == 12
    assert value(scraped, "odp_rows_rejected_total", state="nc") == payload["rejected_rows"]
    assert value(scraped, "odp_import_duration_seconds_sum", state="nc") > 0
    # A process of its own: prometheus_client's process metrics.
    assert total(scraped, "process_cpu_seconds_total") > 0


def test_a_replayed_import_is_not_counted_again(
        config, release, events, start_ingest_service):
    """A redelivered request of an import that already ended: the worker
    answers with the earlier outcome, marked replayed, which is not counted."""
    port = free_port()
    service = start_ingest_service(METRICS_PORT=str(port))
    request = {"import_id": new_id("replay"), "state": "nc",
               "url": release(small_release).as_uri()}
    dispatch = publisher(config)
    dispatch(ADMIN_SOURCE, IMPORT_REQUESTED, request)
    payload = events.wait_for("dataset_loaded", request["import_id"])
    url = f"http://127.0.0.1:{port}/metrics"
    wait_until(lambda: value(scrape(url), "odp_import_duration_seconds_count", state="nc"))
    dispatch(ADMIN_SOURCE, IMPORT_REQUESTED, request)  # as a redelivery would bring it
    wait_until(lambda: f"import {request['import_id']} had already ended" in service.log())

    scraped = scrape(url)
    assert value(scraped, "odp_imports_total", state="nc", outcome="loaded") == 1
    assert value(scraped, "odp_imports_total", state="nc", outcome="failed") in (None, 0)
    assert value(scraped, "odp_rows_loaded_total", state="nc") == sum(
        payload["counts"].values()) == 12
    assert value(scraped, "odp_import_duration_seconds_count", state="nc") == 1
    assert len(events.of("dataset_loaded", request["import_id"])) == 1


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_an_import_outcome_is_counted_with_its_rows():
    before = {outcome: sample("odp_imports_total", state="zz", outcome=outcome)
              for outcome in ("loaded", "failed")}
    rows = sample("odp_rows_loaded_total", state="zz")
    rejected = sample("odp_rows_rejected_total", state="zz")
    imports = sample("odp_import_duration_seconds_count", state="zz")
    quick = sample("odp_import_duration_seconds_bucket", state="zz", le="15.0")

    metrics.count_import("zz", {"event": "dataset_loaded", "payload": {
        "counts": {"stops": 4, "persons": 5}, "rejected_rows": 2}}, 12.5)
    metrics.count_import("zz", {"event": "dataset_failed", "payload": {
        "phase": "load", "rejected_rows": 3}}, 1.0)
    metrics.count_import("zz", None)  # the worker died
    # The earlier outcome of an import that had already ended: not again.
    metrics.count_import("zz", {"event": "dataset_loaded", "replayed": True, "payload": {
        "counts": {"stops": 4, "persons": 5}, "rejected_rows": 2}}, 0.5)

    assert sample("odp_imports_total", state="zz", outcome="loaded") == before["loaded"] + 1
    assert sample("odp_imports_total", state="zz", outcome="failed") == before["failed"] + 2
    assert sample("odp_rows_loaded_total", state="zz") == rows + 9
    assert sample("odp_rows_rejected_total", state="zz") == rejected + 5
    assert sample("odp_import_duration_seconds_count", state="zz") == imports + 2
    assert sample("odp_import_duration_seconds_bucket", state="zz", le="15.0") == quick + 2


def test_a_stats_refresh_is_timed(config, engine, release):
    before = sample("odp_refresh_duration_seconds_count", state="nc")

    load_and_refresh(config, engine, release, town_release)

    assert sample("odp_refresh_duration_seconds_count", state="nc") == before + 1
    assert sample("odp_refresh_duration_seconds_sum", state="nc") > 0


def test_mails_are_counted_queued_failed_and_sent(admin_config, engine, smtp):
    record = {"id": 876543, "dataset_id": None, "dataset": "NC metrics test", "state": "nc",
              "status": "failed", "phase": "download", "progress": {"done": 0, "total": None},
              "requested_at": None, "started_at": None, "finished_at": None, "counts": {},
              "rejected_rows": 0, "new_agencies": [], "error": "the server said 550"}
    before = {outcome: sample("odp_mails_total", outcome=outcome)
              for outcome in ("queued", "sent", "failed")}

    with engine.begin() as conn:
        reports.import_failed(conn, record, ["ops@example.org"])
    assert sample("odp_mails_total", outcome="queued") == before["queued"] + 1

    down = admin_config.with_changes(smtp_port=free_port())
    assert reports.send_pending(engine, down) == 0
    assert sample("odp_mails_total", outcome="failed") == before["failed"] + 1
    assert sample("odp_mails_total", outcome="sent") == before["sent"]

    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE admin.mails SET next_attempt_at = now() "
                             "WHERE import_id = 876543")
    sent = reports.send_pending(engine, admin_config)
    assert sent >= 1
    assert sample("odp_mails_total", outcome="sent") == before["sent"] + sent
    smtp.wait_for(lambda message: '"NC metrics test" failed' in message["Subject"])


def test_errors_gunicorn_answers_itself_are_json(start_metered_gateway):
    # Before the app runs: a request line over gunicorn's limit, header
    # fields over its limit, a request that is not HTTP.
    base = start_metered_gateway()
    host, port = base.removeprefix("http://").split(":")

    def raw(request: bytes) -> tuple[str, dict, bytes]:
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(request)
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status, *lines = head.decode("latin1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines)
        return status, headers, body

    long_url = b"GET /nc/api/agency/?" + b"x" * 5000 + b" HTTP/1.1\r\nHost: a\r\n\r\n"
    big_header = b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: " + b"y" * 9000 + b"\r\n\r\n"
    for request, status, description in (
            (long_url, "HTTP/1.1 414 URI Too Long",
             "the URL is too long (at most 4094 bytes with the method and version)"),
            (big_header, "HTTP/1.1 431 Request Header Fields Too Large",
             "the request's header fields are too large"),
            (b"NOT HTTP AT ALL\r\n\r\n", "HTTP/1.1 400 Bad Request",
             "the request is not valid HTTP")):
        answered, headers, body = raw(request)
        assert answered == status
        assert headers["Content-Type"] == "application/json"
        assert json.loads(body) == {"title": status.split(" ", 2)[2],
                                    "description": description}
