"""Gunicorn's settings for the gateway:

    gunicorn --config python:services.gateway.gunicorn_conf --bind 0.0.0.0:8000 \\
        services.gateway.wsgi:app

- Metrics of several workers: prometheus_client's multiprocess mode. Each
  worker writes its values into files in PROMETHEUS_MULTIPROC_DIR, which
  `/metrics` sums (shared/metrics.py). The variable is set here, in the
  arbiter, before any worker imports prometheus_client (a fresh temporary
  folder, removed at exit, when the environment does not name one); the
  folder is emptied when the arbiter starts, so a restart begins at zero,
  and a dead worker is marked as such (its counts stay in the sums).
- Logs follow LOG_FORMAT: with `json`, gunicorn's error log and its access
  log (on, on standard output, one line per request) are JSON objects like
  the app's (shared/logs.py); with `text`, gunicorn's own lines.
- Two sync workers (WEB_CONCURRENCY for another count), a worker silent for
  30 s is restarted, and a shutdown waits 30 s for the requests in progress
  (k8s/base/gateway-deployment.yaml gives the pod 45). No control socket:
  nothing here uses gunicornc, its default path is shared by every gunicorn
  of the user, and a container's home is read-only.

- Errors gunicorn answers itself, before the app (a request line over
  4094 bytes: 414, header fields too large: 431, a request that is not
  HTTP: 400, a worker's crash: 500), are JSON like the app's errors
  ({"title", "description"}), not gunicorn's HTML page, and say nothing of
  the request or of internals.

Command-line options win over these settings.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile

from gunicorn import util as gunicorn_util
from gunicorn.glogging import Logger

from shared.config import Config
from shared.logs import formatter

_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
_OWN_DIR = None
if not os.environ.get(_MULTIPROC_DIR):
    _OWN_DIR = os.environ[_MULTIPROC_DIR] = tempfile.mkdtemp(prefix="odp-gateway-metrics-")

_SETTINGS = Config.from_env()
formatter(_SETTINGS.log_format)  # an unknown LOG_FORMAT stops gunicorn here

workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
timeout = 30
graceful_timeout = 30
control_socket_disable = True
accesslog = "-"
loglevel = _SETTINGS.log_level.lower()


class GatewayLogger(Logger):
    """Gunicorn's logger, writing JSON lines when LOG_FORMAT is json."""

    as_json = _SETTINGS.log_format == "json"

    def setup(self, cfg) -> None:
        super().setup(cfg)
        if self.as_json:
            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    handler.setFormatter(formatter("json"))

    def access(self, resp, req, environ, request_time) -> None:
        if not self.as_json:
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled:
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        method = environ.get("REQUEST_METHOD")
        uri = environ.get("RAW_URI")
        # One record with the fields a collector filters on, built from what
        # is at hand (gunicorn's atoms copy every header and variable).
        self.access_log.info("%s %s %s", method, uri, status, extra={
            "remote_addr": environ.get("REMOTE_ADDR"),
            "method": method,
            "path": uri,
            "status": int(status) if str(status).isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "user_agent": environ.get("HTTP_USER_AGENT"),
            "referer": environ.get("HTTP_REFERER"),
        })


logger_class = GatewayLogger


def on_starting(server) -> None:
    """The arbiter starts: an empty metrics folder (counts start at zero)."""
    path = os.environ[_MULTIPROC_DIR]
    os.makedirs(path, exist_ok=True)
    for name in glob.glob(os.path.join(path, "*.db")):
        os.remove(name)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _OWN_DIR is not None:
        shutil.rmtree(_OWN_DIR, ignore_errors=True)


# What gunicorn's own error answers say: the app's error shape, a sentence
# per status, and no echo of the request.
_ERROR_DESCRIPTIONS = {
    400: "the request is not valid HTTP",
    403: "the request is forbidden",
    414: "the URL is too long (at most 4094 bytes with the method and version)",
    417: "the expectation cannot be met",
    431: "the request's header fields are too large",
    500: "internal error",
    501: "the transfer coding is not supported",
}


def write_json_error(sock, status_int, reason, mesg):
    """gunicorn.util.write_error's replacement: the same status line, a JSON
    body. gunicorn has no setting for its error page, and its workers call
    util.write_error through the module, so replacing it here, in the
    arbiter before the workers fork, reaches every worker."""
    import json

    body = json.dumps({"title": reason,
                       "description": _ERROR_DESCRIPTIONS.get(status_int, reason.lower())
                       }).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin1")
    gunicorn_util.write_nonblock(sock, head + body)


gunicorn_util.write_error = write_json_error
