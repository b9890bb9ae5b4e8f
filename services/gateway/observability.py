"""The gateway's request metrics (shared/metrics.py) and its `/metrics`.

`RequestMetrics`, the outermost middleware, counts and times every request
by the route template Falcon matched, without its converters
(`/{state}/api/agency/{agency_id}/`, as in the OpenAPI document), never the
raw path, so the number of series stays bounded: `unmatched` when no route
matched, `/static/{file}` for the static files. `/metrics` itself is not
counted.

`Metrics` answers `/metrics` in Prometheus's text format, summed over the
gunicorn workers (multiprocess mode, see gunicorn_conf.py). With
METRICS_PORT set it answers only requests that arrived on that local port
(the accepted socket's own port, which a client cannot fake as it can the
Host header) and is a 404 elsewhere; with 0, it answers on the gateway's
port.
"""

from __future__ import annotations

import re
from time import perf_counter

import falcon

from shared import metrics

METRICS_PATH = "/metrics"
UNMATCHED = "unmatched"
STATIC_ROUTE = "/static/{file}"
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
# "{agency_id:int(min=1, max=2147483647)}" -> "{agency_id}"
CONVERTER = re.compile(r"\{(\w+)(?::[^}]*)?\}")


def route_label(template: str) -> str:
    return CONVERTER.sub(r"{\1}", template)


def local_port(env: dict) -> int | None:
    """The local port the request's connection was accepted on (gunicorn's
    socket), or None when the server does not say."""
    sock = env.get("gunicorn.socket")
    if sock is None:
        return None
    try:
        address = sock.getsockname()
    except OSError:
        return None
    return address[1] if isinstance(address, tuple) else None


class Metrics:
    """GET /metrics. `port`: the only local port it answers on (0: any)."""

    def __init__(self, port: int = 0):
        self.port = port

    def on_get(self, req, resp) -> None:
        if self.port and local_port(req.env) != self.port:
            # The same answer as a path with no route.
            raise falcon.HTTPNotFound()
        resp.data, resp.content_type = metrics.exposition(req.get_header("Accept"))
        resp.cache_control = ["no-store"]


class RequestMetrics:
    """Middleware counting and timing each request; `uncounted` is the
    resource whose requests are left out (the Metrics resource)."""

    def __init__(self, uncounted=None, static_prefix: str = "/static/"):
        self.uncounted = object() if uncounted is None else uncounted
        self.static_prefix = static_prefix
        # (template, method, status) -> the counter's and histogram's
        # children: labels() takes a lock and validates, and the label is
        # made from the template once; a dict lookup costs neither.
        self.series: dict[tuple[str | None, str, int], tuple] = {}

    def process_request(self, req, resp) -> None:
        req.context.started = perf_counter()

    def process_response(self, req, resp, resource, req_succeeded: bool) -> None:
        if resource is self.uncounted:
            return
        started = req.context.get("started")
        if started is None:
            return
        template = req.uri_template
        if template is None and req.path.startswith(self.static_prefix):
            template = STATIC_ROUTE
        method = req.method
        if method not in METHODS:  # any word a client sends: bounded here
            method = "other"
        key = (template, method, resp.status_code)
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = self._series(*key)
        series[0].inc()
        series[1].observe(perf_counter() - started)

    @staticmethod
    def _series(template: str | None, method: str, status: int) -> tuple:
        labels = (UNMATCHED if template is None else route_label(template),
                  method, str(status))
        return metrics.HTTP_REQUESTS.labels(*labels), metrics.HTTP_DURATION.labels(*labels)
