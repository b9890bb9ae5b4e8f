"""Private PostgreSQL, RabbitMQ and memcached instances, and the platform's
processes run against them, for the fault tests (tests/test_faults.py).

The suite's other tests share the system's PostgreSQL (5432) and RabbitMQ
(5672) with the other pytest-xdist process of `make test`: stopping or
restarting those would break that process's tests. The fault tests start
instances of their own instead, the way other tests start their own SMTP and
FTP servers: a PostgreSQL cluster made with `initdb` in a temporary folder
(trust authentication, a free port, its socket in that folder), a RabbitMQ
node of its own name, ports and Mnesia folder (it shares the machine's
epmd, and the system node's Erlang cookie, so `rabbitmqctl -n` reaches it),
and a memcached on a free port. Run as root, PostgreSQL runs as `postgres`
and RabbitMQ as `rabbitmq` (PostgreSQL refuses root; RabbitMQ finds its
cookie in that user's home).

    infra = PrivateInfra.start("odpfaultgw0")
    stack = Stack(infra, "fault_rabbitmq", tmp_path)   # a fresh database and vhost
    stack.start("ingest", "stats", "admin", "gateway")
    stack.kill("ingest"); stack.start("ingest")
    infra.rabbit.stop_app(); infra.rabbit.start_app()
    infra.postgres.restart()
    stack.close(); infra.close()
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import psycopg2
import requests
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from shared.config import Config
from shared.db import make_engine, psycopg2_dsn
from shared.dbsetup import setup
from tests.support.smtp import SmtpSink
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent.parent
OPERATOR_TOKEN = "operator-token-for-fault-tests"
IS_ROOT = os.geteuid() == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def as_user(user: str) -> list[str]:
    """The command prefix that runs a program as `user` (when we are root)."""
    if not IS_ROOT:
        return []
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups"]


def private_folder(prefix: str, owner: str) -> Path:
    """A fresh folder under /tmp owned by `owner` (pytest's own temporary
    folders are private to root, where postgres and rabbitmq cannot go)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    if IS_ROOT:
        account = pwd.getpwnam(owner)
        os.chown(folder, account.pw_uid, account.pw_gid)
    return folder


def _run(argv, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {done.returncode}:\n"
                           f"{done.stdout}\n{done.stderr}")
    return done


class PrivatePostgres:
    """A PostgreSQL cluster of our own: initdb, pg_ctl start/restart/stop."""

    def __init__(self, label: str):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                       key=lambda path: int(Path(path).parent.parent.name))
        if found:
            self.bin = Path(found[-1]).parent
        elif shutil.which("initdb"):
            self.bin = Path(shutil.which("initdb")).parent
        else:
            raise RuntimeError("PostgreSQL's initdb is not installed (make test installs "
                               "postgresql)")
        self.root = private_folder(f"odp-{label}-pg-", "postgres")
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        _run([*as_user("postgres"), self.bin / "initdb", "-D", self.data, "--auth=trust",
              "-U", "postgres", "-E", "UTF8", "--no-sync"], timeout=120)
        self._ctl("-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off -c full_page_writes=off -c max_connections=200", "start")

    def _ctl(self, *args: str) -> None:
        _run([*as_user("postgres"), self.bin / "pg_ctl", "-D", self.data, "-l", self.log,
              *args], timeout=90)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every session is ended, then the server
        starts again with the same options."""
        self._ctl("-w", "-t", "60", "-m", "fast", "restart")

    def drop_database(self, name: str) -> None:
        conn = psycopg2.connect(psycopg2_dsn(self.url("postgres")))
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()

    def close(self) -> None:
        try:
            self._ctl("-m", "immediate", "stop")
        except Exception as error:  # already stopped; the folder goes anyway
            print(f"private PostgreSQL: {error}")
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRabbit:
    """A RabbitMQ node of our own, run in the foreground as a child process."""

    def __init__(self, label: str):
        server = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
        ctl = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")
        if not server.exists():
            # Elsewhere than Debian's package: the scripts on the PATH (they
            # must not be wrappers that switch user and drop the environment).
            server = Path(shutil.which("rabbitmq-server") or server)
            ctl = Path(shutil.which("rabbitmqctl") or ctl)
        if not server.exists():
            raise RuntimeError("rabbitmq-server is not installed (make test installs it)")
        self.ctl_path = ctl
        self.node = f"{label}@localhost"
        self.port = free_port()
        self.root = private_folder(f"odp-{label}-rabbit-", "rabbitmq")
        (self.root / "enabled_plugins").write_text("[].\n")
        (self.root / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            "loopback_users.guest = true\n"
            # The machine's disk may be fuller than the default 50 MB alarm cares for.
            "disk_free_limit.absolute = 10MB\n")
        # Not the system's /etc/rabbitmq/rabbitmq-env.conf, which names the system node.
        (self.root / "rabbitmq-env.conf").write_text("# the fault tests' private node\n")
        for sub in ("mnesia", "log"):
            (self.root / sub).mkdir()
        if IS_ROOT:
            account = pwd.getpwnam("rabbitmq")
            for path in self.root.iterdir():
                os.chown(path, account.pw_uid, account.pw_gid)
        home = pwd.getpwnam("rabbitmq").pw_dir if IS_ROOT else os.environ.get("HOME", "/tmp")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            # The Erlang cookie is read from $HOME/.erlang.cookie: the system
            # node's, so this node and rabbitmqctl agree.
            "HOME": home,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.root / "rabbitmq-env.conf"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        self.output = open(self.root / "server.out", "w")  # noqa: SIM115 (closed in close)
        self.process = subprocess.Popen([*as_user("rabbitmq"), server], env=self.env,
                                        cwd=self.root, stdout=self.output,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(lambda: self.process.poll() is not None or port_open(self.port), 120,
                     f"RabbitMQ node {self.node}")
            if self.process.poll() is not None:
                raise RuntimeError(f"RabbitMQ node {self.node} exited:\n"
                                   + (self.root / "server.out").read_text()[-3000:])
        except Exception:
            self.close()
            raise

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        argv = [*as_user("rabbitmq"), self.ctl_path, "-n", self.node, *args]
        if check:
            return _run(argv, env=self.env, cwd=self.root)
        return subprocess.run(argv, env=self.env, cwd=self.root, capture_output=True,
                              text=True, timeout=60)

    def fresh_vhost(self, vhost: str) -> None:
        """An empty vhost (each rabbitmqctl call costs about a second)."""
        if self.ctl("add_vhost", vhost, check=False).returncode != 0:
            self.ctl("delete_vhost", vhost, check=False)
            self.ctl("add_vhost", vhost)
        self.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")

    def uri(self, vhost: str) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{vhost}"

    def stop_app(self) -> None:
        """The broker stops (every connection is closed, the port refuses);
        the Erlang node stays, with the durable queues and their messages."""
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        wait_until(lambda: port_open(self.port), 60, f"RabbitMQ {self.node} listening")

    def close(self) -> None:
        if self.process.poll() is None:
            self.ctl("stop", check=False)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                pass
        _kill_group(self.process.pid)
        self.output.close()
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateMemcached:
    def __init__(self):
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("memcached") or "/usr/bin/memcached"
        argv = [binary, "-l", "127.0.0.1", "-p", str(self.port), "-m", "64",
                *(["-u", "nobody"] if IS_ROOT else [])]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until(lambda: port_open(self.port), 30, "memcached")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        wait_until(lambda: not port_open(self.port), 10, "memcached stopped")

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(b"flush_all\r\n")
            conn.recv(64)

    def items(self) -> int:
        """How many items the cache holds (0 when it does not answer)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
                conn.sendall(b"stats\r\n")
                answer = b""
                while not answer.endswith(b"END\r\n"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
        except OSError:
            return 0
        for line in answer.decode().splitlines():
            if line.startswith("STAT curr_items "):
                return int(line.split()[2])
        return 0

    close = stop


class PrivateInfra:
    """The three private instances of one test process."""

    def __init__(self, postgres: PrivatePostgres, rabbit: PrivateRabbit,
                 memcached: PrivateMemcached):
        self.postgres, self.rabbit, self.memcached = postgres, rabbit, memcached

    @classmethod
    def start(cls, label: str) -> PrivateInfra:
        started = []
        try:
            # The node's start (several seconds) overlaps the cluster's.
            rabbit_box: list = []

            def start_rabbit() -> None:
                try:
                    rabbit_box.append(PrivateRabbit(label))
                except Exception as error:
                    rabbit_box.append(error)

            starting = threading.Thread(target=start_rabbit)
            starting.start()
            try:
                postgres = PrivatePostgres(label)
                started.append(postgres)
            finally:
                starting.join()
            if isinstance(rabbit_box[0], Exception):
                raise rabbit_box[0]
            started.append(rabbit_box[0])
            memcached = PrivateMemcached()
            started.append(memcached)
        except Exception:
            for instance in started:
                instance.close()
            raise
        return cls(*started)

    def close(self) -> None:
        for instance in (self.memcached, self.rabbit, self.postgres):
            try:
                instance.close()
            except Exception as error:  # the others are closed all the same
                print(f"closing {type(instance).__name__}: {error}")


def _kill_group(pgid: int) -> None:
    """Kill what is left of a process group we started (a service's import
    worker outliving its killed service, say)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Process:
    """A platform process (`python -m services.<name>`, or the gateway under
    gunicorn) in a process group of its own; its output is kept."""

    def __init__(self, name: str, argv: list[str], env: dict, ready_mark: str):
        self.name = name
        self.ready_mark = ready_mark
        self.output: list[str] = []
        self.ready = threading.Event()
        self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True,
                                        start_new_session=True)
        self.pid = self.process.pid
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)
            if self.ready_mark in line:
                self.ready.set()

    def wait_ready(self, timeout: float = 90) -> Process:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start:\n{self.log()[-6000:]}")
        return self

    def log(self) -> str:
        return "".join(self.output)

    def children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """kill -9 of this process alone (its children live on, as they would)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, grace: float = 20) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        _kill_group(self.pid)


SERVICE_MODULES = {"ingest": "services.ingest", "stats": "services.stats",
                   "admin": "services.admin"}


class Stack:
    """The platform on the private instances: a fresh database and vhost of
    its own, the services started as processes, the gateway under gunicorn,
    admin mailing a local SMTP server; the operator API over HTTP."""

    def __init__(self, infra: PrivateInfra, name: str, data_dir: Path, **settings):
        self.infra = infra
        self.name = name
        # The vhost is made while the database is.
        making = ThreadPoolExecutor(max_workers=1)
        making_vhost = making.submit(infra.rabbit.fresh_vhost, name)
        infra.postgres.drop_database(name)
        infra.memcached.flush()  # generations start again at 1 in the new database
        self.smtp = SmtpSink()
        self.gateway_port = free_port()
        self.url = f"http://127.0.0.1:{self.gateway_port}"
        self.config = Config.from_env(environ={}, env_file=None).with_changes(
            database_url=infra.postgres.url(name),
            amqp_uri=infra.rabbit.uri(name),
            memcached_servers=(infra.memcached.address,),
            data_dir=data_dir,
            allow_file_urls=True,
            download_allowed_networks=("127.0.0.0/8", "::1/128"),
            log_level="INFO",
            odp_url=self.url,
            port=self.gateway_port,
            smtp_host=self.smtp.host, smtp_port=self.smtp.port,
            admin_tokens=(OPERATOR_TOKEN,),
            mail_from="Open Data Policing <odp@example.org>",
            **settings)
        try:
            setup(self.config)
        finally:
            making.shutdown()
        making_vhost.result()
        self.engine = make_engine(self.config, connect_args={"connect_timeout": 3})
        self.processes: dict[str, Process] = {}
        self.ended: list[Process] = []
        self.closing: list = []  # what a test started that goes before the stack
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {OPERATOR_TOKEN}"

    # Processes

    def _launch(self, name: str) -> Process:
        env = self.config.as_environ() | {"PYTHONUNBUFFERED": "1"}
        if name == "gateway":
            argv = [sys.executable, "-m", "gunicorn", "--workers", "2", "--no-control-socket",
                    "--bind", f"127.0.0.1:{self.gateway_port}", "services.gateway.wsgi:app"]
            process = Process(name, argv, env, "Listening at: ")
        else:
            process = Process(name, [sys.executable, "-m", SERVICE_MODULES[name]], env,
                              "services ready")
        self.processes[name] = process
        return process

    def start(self, *names: str) -> None:
        """Start the named processes at once and wait until each is ready."""
        launched = [self._launch(name) for name in names]
        for process in launched:
            process.wait_ready()
            if process.name == "gateway":
                self._wait_gateway(process)

    def _wait_gateway(self, gateway: Process) -> None:
        """gunicorn listens before its workers have loaded the app."""
        def answers() -> bool:
            if gateway.process.poll() is not None:
                raise RuntimeError(f"the gateway stopped:\n{gateway.log()[-6000:]}")
            try:
                return requests.get(self.url + "/healthz", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        wait_until(answers, 60, "the gateway's workers")

    def kill(self, name: str, group: bool = False) -> Process:
        """kill -9 of `name`; with `group`, of its children too (its import
        worker), as when its container is stopped."""
        process = self.processes.pop(name)
        if group:
            _kill_group(process.pid)
        process.kill()
        self.ended.append(process)
        return process

    def __getitem__(self, name: str) -> Process:
        return self.processes[name]

    # The database, through outages

    def query(self, sql: str, **params) -> list:
        """Rows of `sql`, waiting out a database outage (up to 60 s)."""
        deadline = time.monotonic() + 60
        while True:
            try:
                with self.engine.connect() as conn:
                    return conn.execute(text(sql), params).all()
            except (sa_exc.OperationalError, sa_exc.InterfaceError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def import_record(self, import_id: int):
        (row,) = self.query("SELECT id, status, phase, error, counts, data_version, "
                            "dispatched_at, finished_at FROM admin.imports WHERE id = :id",
                            id=import_id)
        return row

    # The operator API

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, self.url + path, timeout=30, **kwargs)

    def request_import(self, url: str, dataset_name: str) -> int:
        """Register `url` as an nc dataset and ask for its import; the import's id."""
        body = {"state": "nc", "name": dataset_name, "date_received": "2026-11-20",
                "url": url, "report_email_1": "ops@example.org"}
        added = self.call("POST", "/admin/api/datasets/", json=body)
        assert added.status_code == 201, added.text
        asked = self.call("POST", f"/admin/api/datasets/{added.json()['id']}/import/")
        assert asked.status_code == 202, asked.text
        return asked.json()["import_id"]

    # Ending

    def close(self) -> None:
        for close in self.closing:
            close()
        running = list(self.processes.values())
        for process in running:
            if process.process.poll() is None:
                process.process.terminate()
        for process in running:
            process.stop(grace=5)
        for process in self.ended:
            _kill_group(process.pid)  # an import worker its killed service left behind
        for process in [*self.ended, *running]:
            # Shown by pytest only when the test failed.
            print(f"----- {process.name} (pid {process.pid}) -----\n{process.log()[-8000:]}")
        self.session.close()
        self.engine.dispose()
        self.smtp.close()
        try:
            self.infra.postgres.drop_database(self.name)
        except Exception as error:
            print(f"could not drop {self.name}: {error}")
        # The vhost stays until the node stops at the end of the session.
