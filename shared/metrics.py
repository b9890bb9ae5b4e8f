"""The platform's Prometheus metrics, declared once: every process imports
this module and counts into the metrics its own code touches.

    gateway   odp_http_requests_total{route,method,status}
              odp_http_request_duration_seconds{route,method,status}  (histogram)
              odp_cache_lookups_total{result}                     hit / miss
    ingest    odp_imports_total{state,outcome}                    loaded / failed
              odp_import_duration_seconds{state}                  (histogram)
              odp_rows_loaded_total{state}, odp_rows_rejected_total{state}
    stats     odp_refresh_duration_seconds{state}                 (histogram)
    admin     odp_mails_total{outcome}                            queued / sent / failed

A nameko service serves them with `serve_metrics(METRICS_PORT)`; the gateway
answers `/metrics` itself (services/gateway/observability.py).

The gateway runs in several gunicorn workers: with PROMETHEUS_MULTIPROC_DIR
set (services/gateway/gunicorn_conf.py sets it) prometheus_client keeps each
process's values in files there and `registry()` sums them over the
processes. The variable is read when prometheus_client is first imported,
so it must be in the environment before that.
"""

from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

# A cached answer takes about a millisecond, the slowest analytics seconds.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# An import takes from seconds (a sample) to hours (a full nc release).
IMPORT_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
REFRESH_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

HTTP_LABELS = ("route", "method", "status")
HTTP_REQUESTS = Counter(
    "odp_http_requests_total",
    "Requests the gateway answered, by route template, method and status", HTTP_LABELS)
HTTP_DURATION = Histogram(
    "odp_http_request_duration_seconds",
    "Time the gateway took to answer, by route template, method and status", HTTP_LABELS,
    buckets=HTTP_BUCKETS)
CACHE_LOOKUPS = Counter(
    "odp_cache_lookups_total", "Response cache lookups in memcached, by result (hit, miss)",
    ("result",))

IMPORTS = Counter(
    "odp_imports_total", "Imports ended, by state and outcome (loaded, failed)",
    ("state", "outcome"))
IMPORT_DURATION = Histogram(
    "odp_import_duration_seconds", "Time an import took, from its worker's start to its "
    "outcome", ("state",), buckets=IMPORT_BUCKETS)
ROWS_LOADED = Counter(
    "odp_rows_loaded_total", "Rows the imports that went live loaded, over every file",
    ("state",))
ROWS_REJECTED = Counter(
    "odp_rows_rejected_total", "Lines the imports rejected (listed in rejects.csv)",
    ("state",))
REFRESH_DURATION = Histogram(
    "odp_refresh_duration_seconds", "Time a stats refresh took to publish new numbers",
    ("state",), buckets=REFRESH_BUCKETS)
MAILS = Counter(
    "odp_mails_total", "Report mails queued, sent, and failed sending attempts (a mail "
    "retried later counts again)", ("outcome",))


def count_import(state: str, outcome: dict | None, seconds: float | None = None) -> None:
    """An import of `state` ended with `outcome`, the event the pipeline
    returned ({"event": "dataset_loaded" | "dataset_failed", "payload": ...});
    None: it ended without one (the worker died or could not start).

    An outcome marked `"replayed": true` is the earlier outcome of an import
    that had already ended (a redelivered request): it was counted when the
    import ended, so it is not counted again."""
    if outcome is not None and outcome.get("replayed"):
        return
    payload = (outcome or {}).get("payload") or {}
    loaded = outcome is not None and outcome.get("event") == "dataset_loaded"
    IMPORTS.labels(state=state, outcome="loaded" if loaded else "failed").inc()
    if seconds is not None:
        IMPORT_DURATION.labels(state=state).observe(seconds)
    if loaded:
        ROWS_LOADED.labels(state=state).inc(sum((payload.get("counts") or {}).values()))
    ROWS_REJECTED.labels(state=state).inc(payload.get("rejected_rows") or 0)


_registry = None


def registry():
    """What to expose: this process's metrics, or with PROMETHEUS_MULTIPROC_DIR
    those of every process writing there, summed."""
    global _registry
    if _registry is None:
        if os.environ.get(MULTIPROC_DIR):
            from prometheus_client.multiprocess import MultiProcessCollector

            _registry = CollectorRegistry()
            MultiProcessCollector(_registry)
        else:
            _registry = REGISTRY
    return _registry


def exposition(accept: str | None = None) -> tuple[bytes, str]:
    """(body, content type) of a scrape, in the format the Accept header asks."""
    from prometheus_client.exposition import choose_encoder

    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry()), content_type


def serve_metrics(port: int, addr: str = "0.0.0.0"):
    """Serve /metrics on `port` from a background thread (a green thread in a
    nameko process, where eventlet has patched threading and sockets): the
    server prometheus_client ships. Returns (server, thread)."""
    import logging

    from prometheus_client import start_http_server

    server, thread = start_http_server(port, addr=addr, registry=registry())
    logging.getLogger(__name__).info("metrics served on port %d", port)
    return server, thread
