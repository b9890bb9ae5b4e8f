"""LOG_FORMAT: `text` keeps the readable line, `json` writes one object per
line, in the services, the gateway and gunicorn's own logs."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import sys
from datetime import UTC, datetime, timedelta

import pytest
import requests

from shared.logs import setup_logging
from tests.support.waiting import wait_until

TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.fixture
def logged():
    """logged(log_format) -> (logger, stream); the root logger is restored after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def setup(log_format: str):
        stream = io.StringIO()
        setup_logging("INFO", stream, log_format=log_format)
        return logging.getLogger("odp.test"), stream

    yield setup
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_time_level_logger_and_message(logged):
    log, stream = logged("json")

    log.info("import %s loaded", "42")
    log.warning("slow")
    log.debug("not at INFO")

    first, second = lines(stream)
    assert first == {"time": first["time"], "level": "INFO", "logger": "odp.test",
                     "message": "import 42 loaded"}
    assert second["level"] == "WARNING" and second["message"] == "slow"
    assert TIME.match(first["time"]), first["time"]
    when = datetime.strptime(first["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - when) < timedelta(seconds=5)


def test_a_json_line_carries_the_traceback_and_the_extra_fields(logged):
    log, stream = logged("json")

    try:
        {}["missing"]
    except KeyError:
        log.exception("could not %s", "load", extra={
            "import_id": "42", "counts": {"stops": 4}, "engine": object()})
    log.info("after")

    failed, after = lines(stream)  # the traceback stays on its record's line
    assert failed["level"] == "ERROR" and failed["message"] == "could not load"
    assert failed["exception"].startswith("Traceback (most recent call last):")
    assert "KeyError: 'missing'" in failed["exception"]
    assert failed["import_id"] == "42" and failed["counts"] == {"stops": 4}
    assert "engine" not in failed  # JSON cannot hold it
    assert "exception" not in after


def test_the_text_format_is_the_readable_line(logged):
    log, stream = logged("text")

    log.info("import %s loaded", "42", extra={"import_id": "42"})

    assert re.fullmatch(r"\d\d:\d\d:\d\d INFO    odp\.test: import 42 loaded\n",
                        stream.getvalue()), stream.getvalue()


def test_an_unknown_format_is_refused(logged):
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logged("xml")


def json_lines(output: str) -> list[dict]:
    """Every line of a process's output, each of which must be a JSON object."""
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_a_nameko_service_logs_json_lines(start_service):
    service = start_service("services.census", LOG_FORMAT="json")

    logged = json_lines(service.log())
    assert any(line["logger"] == "shared.nameko_support"
               and line["message"].startswith("services ready") for line in logged)
    assert all(TIME.match(line["time"]) for line in logged)


def start_gunicorn(start_service, **environ):
    """The gateway under gunicorn with its conf; (process, base URL)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [sys.executable, "-m", "gunicorn", "--config",
            "python:services.gateway.gunicorn_conf", "--workers", "2",
            "--no-control-socket", "--bind", f"127.0.0.1:{port}", "services.gateway.wsgi:app"]
    process = start_service("gateway", argv=argv, ready_mark="Listening at: ",
                            PORT=str(port), **environ)
    return process, f"http://127.0.0.1:{port}"


def test_gunicorn_logs_json_lines_with_the_access_log_on(start_service):
    gateway, base = start_gunicorn(start_service, LOG_FORMAT="json")
    assert requests.get(f"{base}/healthz?probe=1", timeout=10).ok

    access = wait_until(lambda: [line for line in json_lines(gateway.log())
                                 if line["logger"] == "gunicorn.access"], timeout=10)
    assert len(access) == 1
    assert access[0] | {"time": None, "duration_ms": None, "bytes": None} == {
        "time": None, "level": "INFO", "logger": "gunicorn.access",
        "message": "GET /healthz?probe=1 200", "remote_addr": "127.0.0.1", "method": "GET",
        "path": "/healthz?probe=1", "status": 200, "bytes": None, "duration_ms": None,
        "user_agent": requests.utils.default_user_agent(), "referer": None}
    assert access[0]["bytes"] > 0 and access[0]["duration_ms"] >= 0
    logged = json_lines(gateway.log())
    assert any(line["logger"] == "gunicorn.error" and "Listening at: " in line["message"]
               for line in logged)


def test_gunicorn_keeps_its_text_access_log(start_service):
    gateway, base = start_gunicorn(start_service)
    assert requests.get(f"{base}/healthz", timeout=10).ok

    wait_until(lambda: re.search(r'^127\.0\.0\.1 - - \[.+\] "GET /healthz HTTP/1\.1" 200 ',
                                 gateway.log(), re.MULTILINE), timeout=10)
    assert "[INFO] Listening at: " in gateway.log()
