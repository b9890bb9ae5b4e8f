"""`odp run` (what `make run` starts): every service in one supervised
process group (ingest, stats, admin, census, and the gateway under gunicorn),
the bundled sample releases imported through the bus, the sample agencies
mapped to census geographies and their profiles loaded (from a bundled
fixture served like the Census API when no CENSUS_API_KEY is set).

Each child's output is printed with its name in front; a child that dies is
started again after a growing pause; Ctrl-C stops them all.

The gateway answers /metrics on its port (gunicorn_conf.py sums its
workers' metrics). With METRICS_PORT set, the gateway answers /metrics on
that port instead, and the nameko services serve theirs on the ports after
it (ingest METRICS_PORT+1, stats +2, admin +3, census +4).
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests
from sqlalchemy import func, select

from shared.config import CENSUS_API_DEFAULT, Config
from shared.db import make_engine
from shared.events import ADMIN_SOURCE, IMPORT_REQUESTED
from shared.nameko_support import publisher
from shared.tables import census_profiles, generations, import_runs

ROOT = Path(__file__).resolve().parent.parent
NAMEKO_READY = "services ready"
GUNICORN_READY = "Listening at: "
GUNICORN_CONF = "python:services.gateway.gunicorn_conf"
LOCAL_CENSUS_PORT = 8391
COLORS = ("36", "33", "35", "32", "34", "31")


@dataclass
class Child:
    name: str
    argv: list[str]
    color: str
    ready_mark: str = NAMEKO_READY
    # Settings of this child alone, over the supervisor's environment.
    environ: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    failures: int = 0
    started_at: float = 0.0


class Supervisor:
    def __init__(self, children: list[Child], environ: dict):
        self.children = children
        self.environ = environ
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def say(self, name: str, color: str, text: str) -> None:
        with self.lock:
            sys.stdout.write(f"\033[{color}m{name:>8} |\033[0m {text}\n")
            sys.stdout.flush()

    def start(self, child: Child) -> None:
        child.ready.clear()
        child.started_at = time.monotonic()
        child.process = subprocess.Popen(
            child.argv, cwd=ROOT, env=self.environ | child.environ, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1,
            start_new_session=True)  # Ctrl-C reaches the supervisor, which stops them
        threading.Thread(target=self._pump, args=(child, child.process), daemon=True).start()

    def _pump(self, child: Child, process: subprocess.Popen) -> None:
        for line in process.stdout:
            if child.ready_mark in line:
                child.ready.set()
            self.say(child.name, child.color, line.rstrip())

    def watch(self) -> None:
        """Restart children that die, until stop() is called."""
        while not self.stopping.wait(1.0):
            for child in self.children:
                code = child.process.poll()
                if code is None:
                    continue
                if time.monotonic() - child.started_at > 60:
                    child.failures = 0
                child.failures += 1
                pause = min(30, 2 ** (child.failures - 1))
                self.say("odp", "1", f"{child.name} stopped (exit code {code}); "
                                      f"starting it again in {pause}s")
                if self.stopping.wait(pause):
                    return
                self.start(child)

    def stop(self) -> None:
        self.stopping.set()
        for child in self.children:
            if child.process and child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + 15
        for child in self.children:
            if child.process:
                try:
                    child.process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.process.kill()


def ensure_env_file(path: Path = ROOT / ".env") -> None:
    """Give a new checkout an operator token (the operator API reads it) and
    the key that signs the operator pages' cookies."""
    text = path.read_text() if path.exists() else ""
    with open(path, "a") as handle:
        if text and not text.endswith("\n"):
            handle.write("\n")
        if "ODP_ADMIN_TOKENS" not in text:
            token = secrets.token_urlsafe(24)
            handle.write(f"ODP_ADMIN_TOKENS={token}\nODP_TOKEN={token}\n")
        if "ODP_WEB_SECRET" not in text:
            handle.write(f"ODP_WEB_SECRET={secrets.token_urlsafe(32)}\n")


def samples() -> dict[str, Path]:
    """Each state's bundled sample release (formats.Release.sample)."""
    from services.ingest.formats import RELEASES

    return {state: release.sample for state, release in RELEASES.items()
            if release.sample is not None}


def import_samples(config: Config, say) -> None:
    """Request an import of each state's sample release when the state has no
    published numbers yet, the way the admin service does, and wait until
    the stats service has refreshed them."""
    engine = make_engine(config)
    dispatch = publisher(config)
    try:
        for state, sample in samples().items():
            if _generation(engine, state) is not None:
                say(f"{state} data already loaded; not importing the sample again")
                continue
            import_id = f"sample-{state}-{uuid.uuid4().hex[:8]}"
            say(f"importing the {state} sample release ({import_id})")
            dispatch(ADMIN_SOURCE, IMPORT_REQUESTED,
                     {"import_id": import_id, "state": state, "url": sample.as_uri()})
            status, result = _wait_for_run(engine, import_id)
            if status != "loaded":
                say(f"{state} sample import ended {status}: "
                    f"{(result or {}).get('payload', {}).get('error')}")
                continue
            say(f"{state} sample loaded: {result['payload']['counts']}")
            version = result["payload"]["data_version"]
            if _wait(lambda state=state, version=version:
                     (_generation(engine, state) or 0) >= version):
                say(f"{state} numbers refreshed and served")
            else:
                say(f"{state} numbers were not refreshed in time; see the stats log")
    finally:
        engine.dispose()


def load_sample_census(config: Config, say) -> None:
    """Map the sample agencies to census geographies and load the census
    profiles, through the operator API as an operator would, when that was
    not done yet."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {config.odp_token}"
    api = f"http://127.0.0.1:{config.port}/admin/api"
    try:
        for state, sample in samples().items():
            mapping = sample.with_name(f"{state}_agencies.csv")
            if session.get(f"{api}/agencies/{state}/mapping/", timeout=30).json():
                continue
            answer = session.put(f"{api}/agencies/{state}/mapping/", timeout=30,
                                 data=mapping.read_bytes(),
                                 headers={"Content-Type": "text/csv"})
            say(f"{state} sample agency mapping: {answer.json()}")
        engine = make_engine(config)
        try:
            with engine.connect() as conn:
                loaded = conn.execute(select(func.count()).select_from(census_profiles)).scalar()
        finally:
            engine.dispose()
        if loaded:
            say(f"{loaded:,} census profiles already loaded")
            return
        request = session.post(f"{api}/census/refresh/", json={}, timeout=30).json()
        say(f"loading the census profiles ({request['request_id']})")
        status = {"status": "requested"}
        deadline = time.monotonic() + 300
        while status["status"] == "requested" and time.monotonic() < deadline:
            time.sleep(1)
            status = session.get(f"{api}/census/refresh/{request['request_id']}/",
                                 timeout=30).json()
        say(f"census profiles: {status['status']} "
            f"{status.get('profiles') or status.get('error') or ''}")
    except (requests.RequestException, ValueError, KeyError) as error:
        say(f"the sample census profiles were not loaded: {error}")


def _generation(engine, state: str) -> int | None:
    """The data version the state's published numbers were computed from."""
    with engine.connect() as conn:
        return conn.execute(select(generations.c.data_version)
                            .where(generations.c.state == state)).scalar()


def _wait(predicate, timeout: float = 600) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def _wait_for_run(engine, import_id: str):
    """(status, result) of the import once it ended, or ("still running", None)."""
    ended = []

    def finished() -> bool:
        with engine.connect() as conn:
            row = conn.execute(select(import_runs.c.status, import_runs.c.result)
                               .where(import_runs.c.import_id == import_id)).first()
        if row is not None and row.status in ("loaded", "failed"):
            ended.append((row.status, row.result))
        return bool(ended)

    return ended[0] if _wait(finished) else ("still running", None)


def run_stack(config: Config) -> int:
    ensure_env_file()
    config = Config.from_env().with_changes(allow_file_urls=True)
    local_census = (config.census_api_url == CENSUS_API_DEFAULT
                    and not config.census_api_key)
    if local_census:
        # No key for the Census Bureau: the bundled fixture, served the same way.
        config = config.with_changes(census_api_url=f"http://127.0.0.1:{LOCAL_CENSUS_PORT}")
    environ = config.as_environ()
    binds = ["--bind", f"127.0.0.1:{config.port}"]
    if config.metrics_port:
        binds += ["--bind", f"127.0.0.1:{config.metrics_port}"]
    children = [
        Child("ingest", [sys.executable, "-m", "services.ingest"], COLORS[0]),
        Child("stats", [sys.executable, "-m", "services.stats"], COLORS[1]),
        Child("admin", [sys.executable, "-m", "services.admin"], COLORS[3]),
        Child("census", [sys.executable, "-m", "services.census"], COLORS[4]),
        # The conf: metrics summed over the workers, LOG_FORMAT, the access log.
        Child("gateway", [sys.executable, "-m", "gunicorn", "--config", GUNICORN_CONF,
                          "--workers", "2", *binds, "services.gateway.wsgi:app"],
              COLORS[2], GUNICORN_READY),
    ]
    if config.metrics_port:
        # One port each: they would all ask for the same one.
        for offset, child in enumerate(children[:4], start=1):
            child.environ["METRICS_PORT"] = str(config.metrics_port + offset)
    if local_census:
        children.append(Child("acs", [sys.executable, "-m", "services.census.local_api",
                                      "--port", str(LOCAL_CENSUS_PORT)], COLORS[5],
                              "serving the census fixture"))
    supervisor = Supervisor(children, environ)

    def on_signal(signum, frame):
        supervisor.stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    for child in children:
        supervisor.start(child)

    def say(text: str) -> None:
        supervisor.say("odp", "1", text)

    def bring_up() -> None:
        for child in children:
            if not child.ready.wait(120):
                say(f"{child.name} did not become ready; see its log above")
                return
        import_samples(config, say)
        load_sample_census(config, say)
        metrics = config.metrics_port or config.port
        say(f"the platform is running: http://localhost:{config.port}/ (the website; "
            f"/openapi.json lists the API; http://localhost:{metrics}/metrics the "
            f"gateway's metrics; Ctrl-C stops it)")

    threading.Thread(target=bring_up, daemon=True).start()
    supervisor.watch()
    say("stopping")
    supervisor.stop()
    return 0
