"""Fixtures over the real services: PostgreSQL (database `odp_test`, created
fresh for each session), RabbitMQ (vhost `odp_test`, fresh for each session),
local HTTP and FTP servers standing in for the states' servers, and the
services run as processes the way `make run` runs them.

Tests come in three tiers, as pytest markers (`pytest -m unit`, ...):

- `unit`: pure logic, no service at all;
- `interface`: the real PostgreSQL and RabbitMQ, the code driven in process
  (the gateway through falcon's TestClient, the pipeline, handlers);
- `e2e`: service processes started as `make run` starts them.

A test's tier is its module's or its own marker, or else what its fixtures
need: a service process makes it `e2e`, the database or broker `interface`.
A test's services start on an emptied vhost, and the imports a test left
unfinished are ended when it stops, so nothing one test leaves reaches
the next.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import text

from services.gateway.backends import Deps
from services.ingest.nc.synthetic import RawReleaseWriter, zip_release
from shared.config import Config
from shared.db import make_engine, psycopg2_dsn
from shared.dbsetup import setup
from shared.states import COMBINED, STATES, State, register
from tests.support.broker import EventListener
from tests.support.gateway import (
    agency_ids,
    gateway_client,
    load_and_refresh,
    town_release,
)
from tests.support.servers import FileServer, FtpServer
from tests.support.smtp import SmtpSink

ROOT = Path(__file__).resolve().parent.parent
# Overridable so that two suites (say, two branches) can run side by side;
# each pytest-xdist worker (`make test` runs two) has its own of both.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
TEST_DATABASE = os.environ.get("ODP_TEST_DATABASE", "odp_test") + (WORKER and f"_{WORKER}")
TEST_VHOST = os.environ.get("ODP_TEST_VHOST", "odp_test") + (WORKER and f"_{WORKER}")


# The rendered k8s/ manifests' fixtures (rendered, every_render, overlay,
# dev, prod), for every module that reads them.
pytest_plugins = ["tests.support.k8s_render"]

TIERS = ("unit", "interface", "e2e")
PROCESS_FIXTURES = {"start_service"}
SERVICE_FIXTURES = {"base_config", "engine"}


def pytest_configure(config) -> None:
    for tier, meaning in zip(TIERS, ("no service at all", "the real database and broker, "
                                     "code driven in process", "service processes"),
                             strict=True):
        config.addinivalue_line("markers", f"{tier}: {meaning}")
    config.addinivalue_line("markers", "fault: faults on private PostgreSQL, RabbitMQ, memcached")


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if any(item.get_closest_marker(tier) for tier in TIERS):
            continue
        needs = set(item.fixturenames)
        item.add_marker("e2e" if needs & PROCESS_FIXTURES
                        else "interface" if needs & SERVICE_FIXTURES else "unit")


def _fresh_vhost() -> str:
    """A clean vhost, so no message of an earlier run (or test) remains."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        # Without a vhost of their own, test workers would take each other's messages.
        raise RuntimeError("rabbitmqctl is not installed: the tests need it to make their "
                           "RabbitMQ vhost (make test installs RabbitMQ)")
    subprocess.run([ctl, "delete_vhost", TEST_VHOST], capture_output=True)
    subprocess.run([ctl, "add_vhost", TEST_VHOST], check=True, capture_output=True)
    subprocess.run([ctl, "set_permissions", "-p", TEST_VHOST, "guest", ".*", ".*", ".*"],
                   check=True, capture_output=True)
    return TEST_VHOST


def leave_nothing_behind(engine) -> None:
    """After a test that ran services: an import it left unfinished is
    ended, so it cannot hold up the next test's imports of the same state.
    (Messages are dropped with the vhost before the next test's services
    start: start_service.)"""
    with engine.begin() as conn:
        conn.execute(text(
            "UPDATE admin.imports SET status = 'failed', finished_at = now(), "
            "error = 'left unfinished by an earlier test' "
            "WHERE status IN ('queued', 'running', 'loaded')"))
        # Nor may its unsent requests reach the next test's ingest, nor its
        # unfinished runs be ended under it.
        conn.execute(text("UPDATE admin.outbox SET published_at = now() "
                          "WHERE published_at IS NULL AND event_type = 'import_requested'"))
        conn.execute(text("UPDATE ingest.import_runs SET status = 'failed', "
                          "finished_at = now(), error = 'left unfinished by an earlier test' "
                          "WHERE status = 'running'"))


def drop_database(name: str) -> None:
    maintenance = psycopg2.connect(psycopg2_dsn("postgresql:///postgres"))
    maintenance.autocommit = True
    with maintenance.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
    maintenance.close()


def rename_database(old: str, new: str) -> None:
    maintenance = psycopg2.connect(psycopg2_dsn("postgresql:///postgres"))
    maintenance.autocommit = True
    with maintenance.cursor() as cursor:
        cursor.execute(f"ALTER DATABASE {old} RENAME TO {new}")
    maintenance.close()


def create_database(config: Config) -> None:
    """The database of `config`, created and migrated as `make` does it."""
    setup(config)


def _fresh_database(config: Config) -> None:
    drop_database(TEST_DATABASE)
    create_database(config)


@pytest.fixture
def extra_state():
    """A state registered for the test alone, with no part in any service
    and no data: `yy`, Nowhere."""
    state = State("yy", "Nowhere", "America/Denver", "98", COMBINED, {1: "Speeding"},
                  {"Safety Violation": (1,)})
    register(state)
    yield state
    STATES.pop(state.code)


@pytest.fixture(scope="session")
def base_config(tmp_path_factory) -> Config:
    vhost = _fresh_vhost()
    config = Config.from_env(environ={}, env_file=None).with_changes(
        database_url=f"postgresql:///{TEST_DATABASE}",
        amqp_uri=f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        data_dir=tmp_path_factory.mktemp("data"),
        allow_file_urls=True,
        # The tests' HTTP and FTP servers listen on the loopback.
        download_allowed_networks=("127.0.0.0/8", "::1/128"),
        log_level="INFO",
    )
    _fresh_database(config)
    return config


@pytest.fixture
def config(base_config, tmp_path) -> Config:
    """The session's settings with a data folder of the test's own."""
    return base_config.with_changes(data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def engine(base_config):
    engine = make_engine(base_config)
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine):
    """Run a query and return all rows: db("SELECT ...", name=value)."""
    def query(sql: str, **params):
        with engine.connect() as conn:
            return conn.execute(text(sql), params).all()
    return query


@pytest.fixture
def release(tmp_path):
    """Build a release zip: release(lambda writer: writer.stop(...)) -> Path."""
    counter = iter(range(1_000_000))

    def build(write, names=None, zip_name="STOPS_Extract.zip") -> Path:
        folder = tmp_path / f"release-{next(counter)}"
        with RawReleaseWriter(folder) as writer:
            write(writer)
        kwargs = {"names": names} if names is not None else {}
        return zip_release(folder, folder / zip_name, **kwargs)

    return build


@pytest.fixture
def client(config):
    """A falcon TestClient of the gateway built with the test's settings."""
    with gateway_client(config) as client:
        yield client


@pytest.fixture
def town(config, engine, release, client) -> dict[str, int]:
    """The gateway tests' hand-built release, loaded and refreshed: agency ids
    by name."""
    load_and_refresh(config, engine, release, town_release)
    return agency_ids(client)


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium under Playwright, launched once per test process."""
    from playwright.sync_api import sync_playwright

    from tests.support.browser import launch

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium):
    """browser_page(width=1280) -> a fresh page in a context of its own, with
    `page.problems` listing console errors and failed requests."""
    from tests.support.browser import watched_page

    contexts = []

    def open_page(width: int = 1280, height: int = 900):
        context = chromium.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        return watched_page(context)

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def file_server():
    server = FileServer()
    yield server
    server.close()


@pytest.fixture
def ftp_server(tmp_path):
    root = tmp_path / "ftp"
    root.mkdir()
    server = FtpServer(root, user="nc-user", password="nc-secret")
    yield server
    server.close()


@pytest.fixture
def clean_vhost(base_config):
    """The session's vhost emptied before the test: nothing an earlier test
    published (in process or not) reaches this test's services or listener."""
    _fresh_vhost()


@pytest.fixture
def events(base_config, clean_vhost):
    """Every event the ingest and stats services publish during the test."""
    listener = EventListener(base_config.amqp_uri,
                             [state.ingest_service for state in STATES.values()] + ["stats"])
    yield listener
    listener.close()


class ServiceProcess:
    """`python -m services.<name>`, started as `make run` starts it."""

    def __init__(self, config: Config, module: str = "services.ingest", argv=None,
                 ready_mark: str = "services ready", **environ):
        self.output: list[str] = []
        self.ready = threading.Event()
        env = config.as_environ() | {"PYTHONUNBUFFERED": "1"} | environ
        self.process = subprocess.Popen(
            argv or [sys.executable, "-m", module], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.ready_mark = ready_mark
        self.module = module
        threading.Thread(target=self._pump, daemon=True).start()
        if not self.ready.wait(60):
            self.stop()
            raise RuntimeError(f"{module} did not start:\n" + "".join(self.output))

    def _pump(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)
            if self.ready_mark in line:
                self.ready.set()

    def log(self) -> str:
        return "".join(self.output)

    def stop(self) -> None:
        self.terminate()
        self.wait_stopped()

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()

    def wait_stopped(self) -> None:
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def start_service(config, engine, clean_vhost):
    """start_service("services.stats", NAME=value) -> a running ServiceProcess.
    The services start on an emptied vhost (clean_vhost)."""
    started = []

    def start(module: str, **options) -> ServiceProcess:
        service = ServiceProcess(config, module, **options)
        started.append(service)
        return service

    def stop_all(module: str) -> None:
        for service in started:
            if service.module == module:
                service.stop()

    start.stop_all = stop_all
    start.started = started
    yield start
    # All at once: each takes a moment to shut down gracefully.
    for service in started:
        service.terminate()
    for service in started:
        service.wait_stopped()
        # Shown by pytest only when the test failed: what each service said.
        print(f"----- {service.module} -----\n{service.log()[-6000:]}")
    leave_nothing_behind(engine)


@pytest.fixture
def start_gateway(start_service):
    """The gateway under gunicorn on a free port; returns its base URL."""
    def start(**environ) -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        argv = [sys.executable, "-m", "gunicorn", "--workers", "2", "--no-control-socket",
                "--bind", f"127.0.0.1:{port}", "services.gateway.wsgi:app"]
        start_service("gateway", argv=argv, ready_mark="Listening at: ", PORT=str(port),
                      **environ)
        return f"http://127.0.0.1:{port}"

    return start


@pytest.fixture
def start_ingest_service(start_service):
    return lambda **environ: start_service("services.ingest", **environ)


OPERATOR_TOKEN = "operator-token-for-tests"


@pytest.fixture
def smtp():
    """A local SMTP server; the admin service started by `start_admin` mails it."""
    sink = SmtpSink()
    yield sink
    sink.close()


@pytest.fixture
def admin_config(config, smtp) -> Config:
    return config.with_changes(smtp_host=smtp.host, smtp_port=smtp.port,
                               admin_tokens=(OPERATOR_TOKEN,),
                               mail_from="Open Data Policing <odp@example.org>")


@pytest.fixture
def start_admin(start_service, admin_config):
    """The admin service as a process, mailing the test's SMTP server and
    accepting OPERATOR_TOKEN."""
    def start(**environ):
        env = {name: value for name, value in admin_config.as_environ().items()
               if name in ("SMTP_HOST", "SMTP_PORT", "ODP_ADMIN_TOKENS", "MAIL_FROM")}
        return start_service("services.admin", **(env | environ))

    return start


def with_operator_calls(client):
    """`client.call(method, path, **kwargs)` sends the operator token."""
    def call(method: str, path: str, token: str | None = OPERATOR_TOKEN, **kwargs):
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return client.simulate_request(method, path, headers=headers, **kwargs)

    client.call = call
    return client


@pytest.fixture
def operator(admin_config, start_admin):
    """A TestClient of the gateway, with the admin service running behind it
    as a process, over the broker; `operator.call(method, path)` sends the
    operator token."""
    start_admin()
    with gateway_client(admin_config) as client:
        yield with_operator_calls(client)


@pytest.fixture
def operator_api(admin_config, engine):
    """The same with the admin service driven in process (tests/support/admin.py):
    the operator API's own behaviour, without a process to start and stop."""
    from services.gateway.backends import cache_client, reader_engine
    from tests.support.admin import InProcessAdmin

    deps = Deps(engine=reader_engine(admin_config), cache=cache_client(admin_config),
                admin=InProcessAdmin(admin_config, engine))
    try:
        with gateway_client(admin_config, deps) as client:
            yield with_operator_calls(client)
    finally:
        deps.close()
