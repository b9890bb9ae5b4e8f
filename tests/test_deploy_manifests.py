"""The deployment files parse and agree with the code and with each other.

docker-compose.yml and .dockerignore are read as data; k8s/ is rendered the
way it is applied, with `kubectl kustomize` of k8s/base, k8s/overlays/dev and
k8s/overlays/prod (no cluster), the overlays' Secrets made from the examples
in k8s/examples/. A setting name that shared/config.py does not read, a
command that no longer runs the right service, a reference to a Secret key
that is not there, or a URL whose host or password matches no backing
service fails here instead of in a container. tests/test_k8s_*.py check the
rest of the rendered manifests (schemas, security, budgets, policies,
autoscaling) with the helpers defined here.
"""

from __future__ import annotations

import base64
import fnmatch
import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from shared.states import STATES
from tests.support.k8s_render import K8S_DIR, OVERLAYS

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
CONFIG_SOURCE = ROOT / "shared" / "config.py"

NAMESPACE = "open-data-policing"
IMAGE_REPOSITORY = "registry.example.com/open-data-policing"

INGEST_COMMAND = ["python", "-m", "services.ingest"]
STATS_COMMAND = ["python", "-m", "services.stats"]
ADMIN_COMMAND = ["python", "-m", "services.admin"]
CENSUS_COMMAND = ["python", "-m", "services.census"]
NIGHTLY_COMMAND = ["python", "-m", "services.admin.nightly"]
MIGRATE_COMMAND = ["odp", "db", "setup"]
HEARTBEAT_COMMAND = ["python", "-m", "shared.heartbeat"]
GATEWAY_APP = "services.gateway.wsgi:app"
GATEWAY_CONFIG = "python:services.gateway.gunicorn_conf"
# Settings that must never sit in a ConfigMap, where anyone who can read
# the namespace's configuration sees them.
SECRET_SETTINGS = {"DATABASE_URL", "READER_DATABASE_URL", "AMQP_URI", "NC_FTP_PASSWORD",
                   "ODP_ADMIN_TOKENS", "CENSUS_API_KEY", "ODP_WEB_SECRET"}
# Environment a container may have although shared/config.py does not read
# it: prometheus-client's directory for the gateway workers' metrics.
NOT_CONFIG_SETTINGS = {"PROMETHEUS_MULTIPROC_DIR"}
# Workloads that run their upstream images, not the platform's.
BACKING_WORKLOADS = {"postgres", "rabbitmq", "memcached", "rabbitmq-users"}
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
CLUSTER_SCOPED_KINDS = {"Namespace", "PersistentVolume", "StorageClass", "ClusterRole",
                        "ClusterRoleBinding", "PriorityClass"}
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")
# What the admin service reads, and what its nightly nc import command reads.
ADMIN_SETTINGS = {"DATABASE_URL", "AMQP_URI", "SMTP_HOST", "SMTP_PORT", "MAIL_FROM", "DATA_DIR",
                  "ODP_ALLOW_FILE_URLS", "NC_AUTO_IMPORT_MONITORS", "ODP_ADMIN_TOKENS",
                  "LOG_LEVEL"}
NIGHTLY_SETTINGS = {"DATABASE_URL", "AMQP_URI", "NC_AUTO_IMPORT_MONITORS", "DATA_DIR",
                    "LOG_LEVEL"}
# What the census service reads; the key is a secret, the rest are settings.
CENSUS_SETTINGS = {"DATABASE_URL", "AMQP_URI", "CENSUS_API_URL", "CENSUS_API_KEY",
                   "CENSUS_YEARS", "LOG_LEVEL"}
CENSUS_API_URL = "https://api.census.gov"
# The nightly nc import: 03:00 in North Carolina, daylight saving time included.
NIGHTLY_CRONJOB = "nc-nightly-import"
NIGHTLY_SCHEDULE = "0 3 * * *"
NIGHTLY_TIME_ZONE = "America/New_York"
# The nameko services, one Deployment each (ingest: one per state).
INGEST_DEPLOYMENTS = {f"ingest-{state}": state for state in STATES}
NAMEKO_DEPLOYMENTS = {*INGEST_DEPLOYMENTS, "stats", "admin", "census"}
# Each platform workload's Secret: one per consumer, with only its keys.
WORKLOAD_SECRETS = {"odp-migrate": "odp-migrate", **dict.fromkeys(INGEST_DEPLOYMENTS, "odp-ingest"),
                    "stats": "odp-stats", "admin": "odp-admin", NIGHTLY_CRONJOB: "odp-admin",
                    "census": "odp-census", "gateway": "odp-gateway"}
SECRET_KEYS = {
    "odp-migrate": {"DATABASE_URL", "READER_DATABASE_URL"},
    "odp-ingest": {"DATABASE_URL", "AMQP_URI", "NC_FTP_PASSWORD"},
    "odp-stats": {"DATABASE_URL", "AMQP_URI"},
    "odp-admin": {"DATABASE_URL", "AMQP_URI", "ODP_ADMIN_TOKENS"},
    "odp-census": {"DATABASE_URL", "AMQP_URI", "CENSUS_API_KEY"},
    "odp-gateway": {"READER_DATABASE_URL", "AMQP_URI", "ODP_WEB_SECRET"},
}
GENERATED_SUFFIX = re.compile(r"-[a-z0-9]{10}$")


# -- rendering ---------------------------------------------------------------

@pytest.fixture(scope="module")
def config_names() -> set[str]:
    """The environment names shared/config.py reads, from its source."""
    return set(re.findall(r"\bget\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']", CONFIG_SOURCE.read_text()))


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


# -- helpers -----------------------------------------------------------------

def compose_platform_services(compose: dict) -> dict[str, dict]:
    """The services built from ./Dockerfile (the others are backing services)."""
    return {name: service for name, service in compose["services"].items()
            if "build" in service}


def compose_command(service: dict) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def compose_default(value: str) -> str:
    """What a compose value is when the host sets nothing: ${NAME:-default} -> default."""
    return re.sub(r"(?<!\$)\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}",
                  lambda match: match.group(1) or "", value)


def compose_environment(service: dict) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    return {name: "" if value is None else str(value) for name, value in environment.items()}


def describe(document: dict) -> str:
    return f"{document['kind']} {document['metadata']['name']}"


def find(documents: list[dict], kind: str, name: str) -> dict:
    matches = [doc for doc in documents if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name!r}, found {len(matches)}"
    return matches[0]


def of_kind(documents: list[dict], kind: str) -> list[dict]:
    return [doc for doc in documents if doc["kind"] == kind]


def generator_name(name: str) -> str:
    """A generated ConfigMap's or Secret's name without its hash suffix."""
    return GENERATED_SUFFIX.sub("", name)


def generated(documents: list[dict], kind: str, name: str) -> dict:
    """The ConfigMap or Secret a generator named `name` made (`name-<hash>`)."""
    matches = [doc for doc in of_kind(documents, kind)
               if GENERATED_SUFFIX.search(doc["metadata"]["name"])
               and generator_name(doc["metadata"]["name"]) == name]
    assert len(matches) == 1, f"expected one generated {kind} {name}-<hash>, found {len(matches)}"
    return matches[0]


def pod_spec(document: dict) -> dict | None:
    if document["kind"] in POD_TEMPLATE_KINDS:
        return document["spec"]["template"]["spec"]
    if document["kind"] == "CronJob":
        return document["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def pod_template(document: dict) -> dict:
    spec = document["spec"]
    if document["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]


def pod_labels(document: dict) -> dict[str, str]:
    """The labels of the pods a workload creates."""
    return pod_template(document)["metadata"].get("labels", {})


def workloads(documents: list[dict]) -> list[dict]:
    return [doc for doc in documents if pod_spec(doc) is not None]


def platform_workloads(documents: list[dict]) -> list[dict]:
    return [doc for doc in workloads(documents)
            if doc["metadata"]["name"] not in BACKING_WORKLOADS]


def workload(documents: list[dict], name: str) -> dict:
    matches = [doc for doc in workloads(documents) if doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one workload {name!r}, found {len(matches)}"
    return matches[0]


def containers(document: dict) -> list[dict]:
    spec = pod_spec(document)
    return spec.get("initContainers", []) + spec["containers"]


def main_container(document: dict) -> dict:
    (container,) = pod_spec(document)["containers"]
    return container


def container_command(container: dict) -> list[str]:
    return container.get("command", []) + container.get("args", [])


def configuration_data(document: dict) -> dict[str, str]:
    """A ConfigMap's or Secret's keys and values (a Secret's data decoded)."""
    data = dict(document.get("data") or {})
    if document["kind"] == "Secret":
        data = {key: base64.b64decode(value).decode() for key, value in data.items()}
    return {**data, **(document.get("stringData") or {})}


def container_environment(container: dict, documents: list[dict]) -> dict[str, str]:
    """The environment the container starts with: envFrom first, env over it."""
    environment = {}
    for source in container.get("envFrom", []):
        for kind, reference in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if reference in source:
                name = source[reference]["name"]
                environment.update(configuration_data(find(documents, kind, name)))
    for variable in container.get("env", []):
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
            continue
        for kind, reference in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
            key_ref = variable.get("valueFrom", {}).get(reference)
            if key_ref:
                data = configuration_data(find(documents, kind, key_ref["name"]))
                assert key_ref["key"] in data, (
                    f"{variable['name']} refers to key {key_ref['key']!r}, "
                    f"missing from {kind} {key_ref['name']}")
                environment[variable["name"]] = data[key_ref["key"]]
    return environment


def secret_references(container: dict) -> dict[str, dict]:
    """The container's variables taken from a Secret's key: name -> secretKeyRef."""
    return {variable["name"]: variable["valueFrom"]["secretKeyRef"]
            for variable in container.get("env", [])
            if "secretKeyRef" in variable.get("valueFrom", {})}


def probe_commands(container: dict) -> list[list[str]]:
    return [container[probe]["exec"]["command"]
            for probe in ("startupProbe", "readinessProbe", "livenessProbe")
            if "exec" in container.get(probe, {})]


def assert_runs_code_that_exists(where: str, command: list[str]) -> None:
    """A container's or service's command names a module, app or script the
    repository has (and, for `odp`, a command line it accepts)."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    if command[:2] == ["python", "-m"]:
        assert module_file(command[2]), f"{where} runs missing module {command[2]}"
        if command[2] == "services.ingest":
            unknown = set(command[3:]) - set(STATES)
            assert not unknown, f"{where} names states that do not exist: {unknown}"
    elif command[0] == "gunicorn":
        module, _, attribute = gunicorn_app(command).partition(":")
        path = module_file(module)
        assert path, f"{where} serves missing module {module}"
        assert re.search(rf"^{attribute or 'application'}\s*=", path.read_text(), re.M), (
            f"{where} serves {attribute!r}, which {module} does not define")
        config = gunicorn_option(command, "--config", "-c")
        if config and config.startswith("python:"):
            assert module_file(config.removeprefix("python:")), (
                f"{where} reads missing gunicorn config {config}")
    else:
        assert command[0] in scripts, f"{where} runs {command[0]}, not a declared script"
        if command[0] == "odp":
            from odp.cli import build_parser

            try:
                build_parser().parse_args(command[1:])
            except SystemExit:
                pytest.fail(f"{where}: `odp` refuses the arguments {command[1:]}")


def gunicorn_app(command: list[str]) -> str:
    """The WSGI app a gunicorn command serves: its last argument."""
    assert command[0] == "gunicorn", f"not a gunicorn command: {command}"
    assert not command[-1].startswith("-"), f"gunicorn command without an app: {command}"
    return command[-1]


def gunicorn_option(command: list[str], *names: str) -> str | None:
    for index, argument in enumerate(command):
        if argument in names:
            return command[index + 1]
        for name in names:
            if name.startswith("--") and argument.startswith(f"{name}="):
                return argument.partition("=")[2]
    return None


def gunicorn_binds(command: list[str]) -> list[tuple[str, int]]:
    """The host and port of each --bind (or -b) of a gunicorn command."""
    binds = []
    for index, argument in enumerate(command):
        if argument in ("--bind", "-b"):
            binds.append(command[index + 1])
        elif argument.startswith("--bind="):
            binds.append(argument.partition("=")[2])
    assert binds, f"no --bind in {command}"
    return [(host, int(port)) for host, _, port in (bind.rpartition(":") for bind in binds)]


def gunicorn_bind(command: list[str]) -> tuple[str, int]:
    """The host and port of a gunicorn command's one --bind."""
    binds = gunicorn_binds(command)
    assert len(binds) == 1, f"expected one --bind in {command}"
    return binds[0]


def container_port(container: dict, port: int | str) -> int:
    """A probe's or Service's port (a number or a port name) as a number."""
    if isinstance(port, int):
        return port
    named = {entry.get("name"): entry["containerPort"] for entry in container.get("ports", [])}
    assert port in named, f"container {container['name']} has no port named {port!r}"
    return named[port]


def service_for_host(documents: list[dict], host: str) -> dict:
    """The Service a URL's host names: `NAME` or `NAME.NAMESPACE.svc[.cluster.local]`."""
    name, *rest = host.split(".")
    service = find(documents, "Service", name)
    if rest:
        assert rest[0] == service["metadata"]["namespace"] and rest[1:] in (
            ["svc"], ["svc", "cluster", "local"]), f"{host} is not Service {name}'s name"
    return service


def service_ports(service: dict) -> set[int]:
    return {entry["port"] for entry in service["spec"]["ports"]}


def module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base / "__main__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def selects(selector: dict, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels and matchExpressions) selects `labels`."""
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get(
            "values", [])
        if ((operator == "In" and labels.get(key) not in values)
                or (operator == "NotIn" and key in labels and labels[key] in values)
                or (operator == "Exists" and key not in labels)
                or (operator == "DoesNotExist" and key in labels)):
            return False
    return True


# -- shared/config.py ------------------------------------------------------

def test_config_names_are_found_in_shared_config(config_names):
    assert {"DATABASE_URL", "AMQP_URI", "MEMCACHED_SERVERS", "DATA_DIR", "READER_DATABASE_URL",
            "HEARTBEAT_FILE", "METRICS_PORT", "LOG_FORMAT"} <= config_names, (
        "shared/config.py no longer reads settings as get(\"NAME\"): update config_names")


# -- docker-compose.yml ------------------------------------------------------

def test_compose_platform_environment_names_are_read_by_shared_config(compose, config_names):
    for name, service in compose_platform_services(compose).items():
        environment = compose_environment(service)
        unknown = set(environment) - config_names
        assert not unknown, f"compose service {name}: shared/config.py does not read {unknown}"
        interpolated = {found for value in environment.values()
                        for found in INTERPOLATION.findall(value)}
        assert interpolated <= config_names, (
            f"compose service {name} takes {interpolated - config_names} from the host, "
            "names shared/config.py does not read")


def test_compose_platform_services_share_one_image(compose):
    images = {service.get("image") for service in compose_platform_services(compose).values()}
    assert len(images) == 1 and None not in images, f"platform images in compose: {images}"


def test_compose_ingest_runs_the_ingest_services(compose):
    ingest = compose["services"]["ingest"]
    assert compose_command(ingest) == INGEST_COMMAND
    data_dir = compose_environment(ingest)["DATA_DIR"]
    mount_targets = {volume.split(":")[1] if isinstance(volume, str) else volume["target"]
                     for volume in ingest.get("volumes", [])}
    assert data_dir in mount_targets, "ingest's DATA_DIR must be a volume, not the container"


def test_compose_migrate_runs_odp_db_setup_once(compose):
    migrate = compose["services"]["migrate"]
    assert compose_command(migrate) == MIGRATE_COMMAND
    assert migrate.get("restart") == "no"


def test_compose_services_wait_for_a_successful_migration(compose):
    for name, service in compose_platform_services(compose).items():
        if name == "migrate":
            continue
        condition = service.get("depends_on", {}).get("migrate", {}).get("condition")
        assert condition == "service_completed_successfully", (
            f"compose service {name} must wait for migrate to succeed")


def test_compose_health_conditions_have_healthchecks(compose):
    services = compose["services"]
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            if rule.get("condition") == "service_healthy":
                assert "healthcheck" in services[dependency], (
                    f"{name} waits for {dependency} to be healthy, which has no healthcheck")


def test_compose_platform_services_run_code_that_exists(compose):
    for name, service in compose_platform_services(compose).items():
        assert_runs_code_that_exists(f"compose service {name}", compose_command(service))
        test = (service.get("healthcheck") or {}).get("test", [])
        if test[:1] == ["CMD"] and test[1:3] == ["python", "-m"]:
            assert_runs_code_that_exists(f"compose service {name}'s healthcheck", test[1:])


def test_compose_nameko_services_report_their_heartbeat(compose):
    for name in ("ingest", "stats", "admin", "census"):
        service = compose["services"][name]
        environment = compose_environment(service)
        assert environment.get("HEARTBEAT_FILE", "").startswith("/"), (
            f"compose service {name} writes no heartbeat (HEARTBEAT_FILE)")
        test = service.get("healthcheck", {}).get("test", [])
        assert test[:1] == ["CMD"] and test[1:4] == HEARTBEAT_COMMAND, (
            f"compose service {name}'s healthcheck must run `python -m shared.heartbeat`")
        assert "--max-age" in test and float(test[test.index("--max-age") + 1]) <= 30


def test_compose_logs_stay_text_lines(compose):
    for name, service in compose_platform_services(compose).items():
        assert compose_default(compose_environment(service).get("LOG_FORMAT", "text")) == "text", (
            f"compose service {name}: logs read in a terminal are text lines")


def test_compose_nightly_import_command_exists():
    # Run from the host's cron as `docker compose run --rm admin <this>`.
    assert_runs_code_that_exists("the nightly nc import", NIGHTLY_COMMAND)


def test_compose_starts_every_service_by_default(compose):
    services = compose["services"]
    for name in ("migrate", "ingest", "stats", "gateway", "admin", "census"):
        assert name in services, f"compose has no service {name}"
    for name, service in services.items():
        assert not service.get("profiles"), (
            f"compose service {name} sits behind a profile; `docker compose up` skips it")


def test_compose_gateway_serves_the_wsgi_app(compose):
    gateway = compose["services"]["gateway"]
    command = compose_command(gateway)
    assert gunicorn_app(command) == GATEWAY_APP
    host, port = gunicorn_bind(command)
    assert host == "0.0.0.0", "a gateway bound to localhost is unreachable from the others"
    assert compose_environment(gateway)["PORT"] == str(port)
    published = {str(entry).rpartition(":")[2] if not isinstance(entry, dict)
                 else str(entry["target"]) for entry in gateway.get("ports", [])}
    assert str(port) in published, f"the gateway's port {port} is not published"
    probe = " ".join(gateway["healthcheck"]["test"])
    assert f":{port}/healthz" in probe, "the gateway's healthcheck must ask /healthz"


def test_compose_gateway_reads_with_its_own_login(compose):
    services = compose["services"]
    gateway = compose_environment(services["gateway"])
    assert "DATABASE_URL" not in gateway, "the gateway must not get the owner's DATABASE_URL"
    reader = urlsplit(gateway["READER_DATABASE_URL"])
    owner = urlsplit(compose_environment(services["migrate"])["DATABASE_URL"])
    assert reader.username and reader.password, "the reader login needs a password"
    assert reader.username != owner.username, "the gateway must not log in as the owner"
    assert (reader.hostname, reader.port, reader.path) == (owner.hostname, owner.port, owner.path)
    # `odp db setup` gives the reader login READER_DATABASE_URL's password.
    assert compose_environment(services["migrate"])["READER_DATABASE_URL"] == (
        gateway["READER_DATABASE_URL"]), "migrate must set the password the gateway logs in with"


def test_compose_stats_runs_the_stats_service_and_reaches_the_gateway(compose):
    stats = compose["services"]["stats"]
    assert compose_command(stats) == STATS_COMMAND
    odp_url = urlsplit(compose_environment(stats)["ODP_URL"])
    assert odp_url.hostname == "gateway", "stats warms the cache through the gateway"
    _, port = gunicorn_bind(compose_command(compose["services"]["gateway"]))
    assert odp_url.port == port, f"ODP_URL's port is not the gateway's {port}"


def test_compose_admin_runs_the_admin_service_with_its_settings(compose, config_names):
    admin = compose["services"]["admin"]
    assert compose_command(admin) == ADMIN_COMMAND
    assert not admin.get("profiles"), "admin is written: `docker compose up` must start it"
    environment = compose_environment(admin)
    assert set(environment) <= config_names, (
        f"compose service admin: shared/config.py does not read {set(environment) - config_names}")
    # `docker compose run --rm admin python -m services.admin.nightly` uses
    # the same settings, so they must serve the nightly import too.
    missing = (ADMIN_SETTINGS | NIGHTLY_SETTINGS) - set(environment)
    assert not missing, f"compose service admin lacks {missing}"
    assert environment["DATA_DIR"] == compose_environment(compose["services"]["ingest"])[
        "DATA_DIR"], "admin and ingest must agree on DATA_DIR"


def test_compose_census_runs_the_census_service_with_its_settings(compose, config_names):
    census = compose["services"]["census"]
    assert compose_command(census) == CENSUS_COMMAND
    assert not census.get("profiles"), "census is written: `docker compose up` must start it"
    assert census.get("restart") == "unless-stopped"
    environment = compose_environment(census)
    assert set(environment) <= config_names, (
        f"compose service census: shared/config.py does not read "
        f"{set(environment) - config_names}")
    missing = CENSUS_SETTINGS - set(environment)
    assert not missing, f"compose service census lacks {missing}"
    assert compose_default(environment["CENSUS_API_URL"]) == CENSUS_API_URL
    # The key is the operator's own: nothing in the file, only from the host.
    assert compose_default(environment["CENSUS_API_KEY"]) == ""
    assert INTERPOLATION.findall(environment["CENSUS_API_KEY"]) == ["CENSUS_API_KEY"]
    depends_on = census.get("depends_on") or {}
    assert depends_on.get("rabbitmq", {}).get("condition") == "service_healthy", (
        "census takes its requests from RabbitMQ: it must wait for the broker")


def test_compose_admin_mail_reaches_a_local_smtp_catcher(compose):
    services = compose["services"]
    admin = services["admin"]
    environment = compose_environment(admin)
    host = compose_default(environment["SMTP_HOST"])
    assert host in services, f"admin's default SMTP_HOST {host!r} is no compose service"
    assert host in (admin.get("depends_on") or {}), f"admin does not start after {host}"
    assert "build" not in services[host], f"{host} should be an upstream mail catcher image"
    assert not services[host].get("profiles"), f"{host} must start with `docker compose up`"
    port = compose_default(environment["SMTP_PORT"])
    assert port.isdigit(), f"admin's default SMTP_PORT {port!r} is not a port"


def test_compose_urls_reach_the_backing_services(compose):
    services = compose["services"]
    postgres = compose_environment(services["postgres"])
    for name, service in compose_platform_services(compose).items():
        environment = compose_environment(service)
        database_urls = [environment[key] for key in ("DATABASE_URL", "READER_DATABASE_URL")
                         if key in environment]
        assert database_urls, f"{name} has no database URL"
        for url in map(urlsplit, database_urls):
            assert url.hostname in services, f"{name}: no service for {url.hostname}"
            assert url.path.strip("/") == postgres["POSTGRES_DB"], f"{name}: not the odp database"
        if "DATABASE_URL" in environment:
            database = urlsplit(environment["DATABASE_URL"])
            owner = compose_environment(services[database.hostname])
            assert (database.username, database.password) == (
                owner["POSTGRES_USER"], owner["POSTGRES_PASSWORD"]
            ), f"{name}: DATABASE_URL does not match the postgres service"
        broker = urlsplit(environment["AMQP_URI"])
        rabbitmq = compose_environment(services[broker.hostname])
        assert (broker.username, broker.password) == (
            rabbitmq["RABBITMQ_DEFAULT_USER"], rabbitmq["RABBITMQ_DEFAULT_PASS"]
        ), f"{name}: AMQP_URI does not match the rabbitmq service"
        for server in environment["MEMCACHED_SERVERS"].split(","):
            assert server.partition(":")[0] in services, f"{name}: no service for {server}"


# -- k8s/: every render ------------------------------------------------------

def test_k8s_documents_are_in_the_project_namespace(every_render):
    documents = every_render.documents
    namespace = find(documents, "Namespace", NAMESPACE)["metadata"]["name"]
    for document in documents:
        if document["kind"] not in CLUSTER_SCOPED_KINDS:
            assert document["metadata"].get("namespace") == namespace, (
                f"{every_render.name}: {describe(document)} is not in namespace {namespace}")


def test_k8s_objects_carry_the_project_labels(every_render):
    for document in every_render.documents:
        labels = document["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == NAMESPACE, (
            f"{every_render.name}: {describe(document)} lacks app.kubernetes.io/part-of")
        if pod_spec(document) is not None:
            assert pod_labels(document).get("app.kubernetes.io/part-of") == NAMESPACE
            assert pod_labels(document).get("app.kubernetes.io/name") == (
                document["metadata"]["name"]), f"{describe(document)}: pods named otherwise"


def test_k8s_configuration_values_are_strings(every_render):
    for document in every_render.documents:
        if document["kind"] in {"ConfigMap", "Secret"}:
            for key, value in configuration_data(document).items():
                assert isinstance(value, str), (
                    f"{describe(document)}: {key} is {value!r}; the API accepts strings only")


def test_k8s_selectors_select_only_their_own_pods(every_render):
    documents = workloads(every_render.documents)
    for document in documents:
        selector = document["spec"].get("selector")
        if not selector:
            continue
        for other in documents:
            if other is not document:
                assert not selects(selector, pod_labels(other)), (
                    f"{describe(document)} also selects the pods of {describe(other)}")


def test_k8s_selectors_match_pod_labels(every_render):
    documents = every_render.documents
    labels = [pod_labels(document) for document in workloads(documents)
              if document["kind"] != "CronJob"]
    for document in workloads(documents):
        selector = document["spec"].get("selector")
        if selector:
            assert selects(selector, pod_labels(document)), f"{describe(document)}: selector misses"
    for service in of_kind(documents, "Service"):
        assert any(selects({"matchLabels": service["spec"]["selector"]}, pod) for pod in labels), (
            f"{every_render.name}: Service {service['metadata']['name']} selects no pods")


def test_k8s_platform_containers_run_code_that_exists(every_render):
    for document in platform_workloads(every_render.documents):
        for container in containers(document):
            where = f"{describe(document)}: container {container['name']}"
            assert_runs_code_that_exists(where, container_command(container))
            for command in probe_commands(container):
                assert_runs_code_that_exists(f"{where}'s probe", command)


def test_k8s_nightly_import_cronjob_runs_daily_at_3_in_north_carolina(every_render):
    spec = find(every_render.documents, "CronJob", NIGHTLY_CRONJOB)["spec"]
    assert spec["schedule"] == NIGHTLY_SCHEDULE
    assert spec["timeZone"] == NIGHTLY_TIME_ZONE
    assert spec["concurrencyPolicy"] == "Forbid", "two nightly imports must never overlap"
    assert spec.get("suspend") is not True, "the nightly import is suspended"
    assert isinstance(spec["startingDeadlineSeconds"], int)
    assert spec["startingDeadlineSeconds"] > 0
    for limit in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        assert isinstance(spec[limit], int), f"the CronJob has no {limit}"
    assert spec["failedJobsHistoryLimit"] >= 1, "failed runs must keep their logs"
    job = spec["jobTemplate"]["spec"]
    assert isinstance(job["backoffLimit"], int)
    assert job["template"]["spec"]["restartPolicy"] in {"Never", "OnFailure"}


def test_k8s_migrate_job_runs_odp_db_setup_and_goes_away(every_render):
    job = find(every_render.documents, "Job", "odp-migrate")
    assert container_command(main_container(job)) == MIGRATE_COMMAND
    # Its pod template is immutable: a release deletes it, and the TTL
    # removes a finished one.
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_k8s_platform_pods_wait_for_the_migrated_schema(every_render):
    for document in platform_workloads(every_render.documents):
        name = document["metadata"]["name"]
        if name == "odp-migrate":
            assert not pod_spec(document).get("initContainers")
            continue
        inits = pod_spec(document).get("initContainers", [])
        assert len(inits) == 1, f"{describe(document)} must wait for the schema first"
        command = container_command(inits[0])
        reader = ["--reader"] if name == "gateway" else []
        assert command[:3] == ["odp", "db", "wait"] and command[3:] == [
            *reader, "--timeout", "900"], f"{describe(document)}'s init container runs {command}"


def test_k8s_ingest_runs_one_deployment_per_state(every_render):
    documents = every_render.documents
    ingest = [doc for doc in of_kind(documents, "Deployment")
              if doc["metadata"]["name"].startswith("ingest")]
    assert {doc["metadata"]["name"] for doc in ingest} == set(INGEST_DEPLOYMENTS)
    for deployment in ingest:
        state = INGEST_DEPLOYMENTS[deployment["metadata"]["name"]]
        container = main_container(deployment)
        assert container_command(container) == [*INGEST_COMMAND, state]
        spec = pod_spec(deployment)
        # The service drains its in-flight import on SIGTERM, within what a
        # cluster autoscaler waits (--max-graceful-termination-sec, 600 s).
        assert 300 <= spec["terminationGracePeriodSeconds"] <= 600
        annotations = pod_template(deployment)["metadata"].get("annotations", {})
        assert annotations.get("cluster-autoscaler.kubernetes.io/safe-to-evict") == "false"
        # One import at a time, a rollout included.
        assert deployment["spec"]["strategy"]["type"] == "Recreate"
        data_dir = configuration_data(generated(documents, "ConfigMap", "odp-config"))["DATA_DIR"]
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        claim = volumes[mounts[data_dir]]["persistentVolumeClaim"]["claimName"]
        find(documents, "PersistentVolumeClaim", claim)
    requests = {doc["metadata"]["name"]: main_container(doc)["resources"]["requests"]["memory"]
                for doc in ingest}
    assert len(set(requests.values())) > 1, "each state's imports are sized on their own"


def test_k8s_stats_admin_and_census_run_their_services(every_render):
    for name, command in (("stats", STATS_COMMAND), ("admin", ADMIN_COMMAND),
                          ("census", CENSUS_COMMAND)):
        deployment = find(every_render.documents, "Deployment", name)
        assert container_command(main_container(deployment)) == command
        assert deployment["spec"]["replicas"] >= 1


def test_k8s_nameko_services_serve_no_traffic_but_metrics(every_render):
    documents = every_render.documents
    for name in NAMEKO_DEPLOYMENTS:
        deployment = find(documents, "Deployment", name)
        labels = pod_labels(deployment)
        assert not [service for service in of_kind(documents, "Service")
                    if selects({"matchLabels": service["spec"]["selector"]}, labels)], (
            f"{name} serves no traffic: no Service may select it")
        container = main_container(deployment)
        assert [(port.get("name"), port["containerPort"]) for port in container["ports"]] == [
            ("metrics", 9100)]


def test_k8s_nameko_probes_read_the_heartbeat(every_render):
    for name in NAMEKO_DEPLOYMENTS:
        container = main_container(find(every_render.documents, "Deployment", name))
        for probe, max_age in (("startupProbe", "30"), ("readinessProbe", "30"),
                               ("livenessProbe", "120")):
            command = container[probe]["exec"]["command"]
            assert command == [*HEARTBEAT_COMMAND, "--max-age", max_age], (
                f"{name}'s {probe} runs {command}")
        startup = container["startupProbe"]
        assert (startup["periodSeconds"], startup["failureThreshold"]) == (5, 60)


def test_k8s_gateway_serves_the_wsgi_app_with_probes(overlay):
    gateway = find(overlay, "Deployment", "gateway")
    container = main_container(gateway)
    command = container_command(container)
    assert gunicorn_app(command) == GATEWAY_APP
    assert gunicorn_option(command, "--config", "-c") == GATEWAY_CONFIG
    binds = gunicorn_binds(command)
    assert {host for host, _ in binds} == {"0.0.0.0"}, (
        "a gateway bound to localhost is unreachable from the Service")
    environment = container_environment(container, overlay)
    http, metrics = int(environment["PORT"]), int(environment["METRICS_PORT"])
    assert sorted(port for _, port in binds) == sorted({http, metrics})
    assert container_port(container, "http") == http
    assert container_port(container, "metrics") == metrics
    assert environment["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/"), (
        "the workers' metrics files belong on the /tmp emptyDir")
    for probe, path in (("startupProbe", "/readyz"), ("readinessProbe", "/readyz"),
                        ("livenessProbe", "/healthz")):
        request = container[probe]["httpGet"]
        assert request["path"] == path, f"the gateway's {probe} must ask {path}"
        assert container_port(container, request["port"]) == http, (
            f"the gateway's {probe} asks a port other than the website's")


def test_k8s_gateway_service_reaches_the_website_only(every_render):
    gateway = find(every_render.documents, "Deployment", "gateway")
    container = main_container(gateway)
    service = find(every_render.documents, "Service", "gateway")
    assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels(gateway))
    # Port 8000 only: /metrics (9100) stays out of the Service and the Ingress.
    targets = {container_port(container, entry.get("targetPort", entry["port"]))
               for entry in service["spec"]["ports"]}
    assert targets == {container_port(container, "http")}


def test_k8s_stats_reaches_the_gateway(overlay):
    container = main_container(find(overlay, "Deployment", "stats"))
    odp_url = urlsplit(container_environment(container, overlay)["ODP_URL"])
    service = service_for_host(overlay, odp_url.hostname)
    assert service["metadata"]["name"] == "gateway", "stats warms the cache through the gateway"
    assert (odp_url.port or 80) in service_ports(service), (
        f"Service gateway does not listen on {odp_url.port}")


def test_k8s_autoscaled_deployments_leave_replicas_to_keda(every_render):
    documents = every_render.documents
    scaled = of_kind(documents, "ScaledObject")
    assert {obj["spec"]["scaleTargetRef"]["name"] for obj in scaled} == {
        "gateway", *INGEST_DEPLOYMENTS}
    for scaled_object in scaled:
        target = scaled_object["spec"]["scaleTargetRef"]
        deployment = find(documents, target.get("kind", "Deployment"), target["name"])
        assert "replicas" not in deployment["spec"], (
            f"{target['name']} sets replicas, which every apply would reset")
        if any(trigger["type"] == "cpu" for trigger in scaled_object["spec"]["triggers"]):
            for container in containers(deployment):
                # CPU utilization is a share of the request: no request, no scaling.
                assert container["resources"]["requests"]["cpu"]


# -- k8s/: the overlays' settings and Secrets ----------------------------------

def test_k8s_platform_environment_names_are_read_by_shared_config(overlay, config_names):
    seen = set()
    for document in platform_workloads(overlay):
        for container in containers(document):
            environment = container_environment(container, overlay)
            unknown = set(environment) - config_names - NOT_CONFIG_SETTINGS
            assert not unknown, f"{describe(document)}: shared/config.py does not read {unknown}"
            seen |= set(environment)
    for document in of_kind(overlay, "ConfigMap") + of_kind(overlay, "Secret"):
        if generator_name(document["metadata"]["name"]) in {"odp-config", *SECRET_KEYS}:
            unknown = set(configuration_data(document)) - config_names
            assert not unknown, f"{describe(document)}: shared/config.py does not read {unknown}"
    assert {"DATABASE_URL", "READER_DATABASE_URL", "AMQP_URI", "DATA_DIR", "HEARTBEAT_FILE",
            "METRICS_PORT", "LOG_FORMAT"} <= seen


def test_k8s_secret_settings_stay_out_of_the_configmap(overlay):
    settings = set(configuration_data(generated(overlay, "ConfigMap", "odp-config")))
    assert not settings & SECRET_SETTINGS, f"secrets in the ConfigMap: {settings & SECRET_SETTINGS}"
    secrets = {key for document in of_kind(overlay, "Secret")
               for key in configuration_data(document)}
    assert SECRET_SETTINGS <= secrets, f"in no Secret: {SECRET_SETTINGS - secrets}"


def test_k8s_configmap_sets_the_observability_settings(overlay):
    settings = configuration_data(generated(overlay, "ConfigMap", "odp-config"))
    assert settings["HEARTBEAT_FILE"] == "/tmp/heartbeat"
    assert settings["METRICS_PORT"] == "9100"
    assert settings["LOG_FORMAT"] == "json"


def test_k8s_secret_settings_come_from_secrets(overlay):
    for document in platform_workloads(overlay):
        for container in containers(document):
            for variable in container.get("env", []):
                if variable["name"] in SECRET_SETTINGS:
                    assert "secretKeyRef" in variable.get("valueFrom", {}), (
                        f"{describe(document)}: {variable['name']} must come from a Secret")


def test_k8s_each_consumer_has_its_own_secret_with_only_its_keys(overlay):
    for name, keys in SECRET_KEYS.items():
        secret = generated(overlay, "Secret", name)
        assert set(configuration_data(secret)) == keys, (
            f"Secret {name} holds {sorted(configuration_data(secret))}, not {sorted(keys)}")
    for document in platform_workloads(overlay):
        name = document["metadata"]["name"]
        expected = WORKLOAD_SECRETS[name]
        for container in containers(document):
            whole = [source for source in container.get("envFrom", []) if "secretRef" in source]
            assert not whole, f"{describe(document)} takes a whole Secret; name each key it reads"
            for variable, reference in secret_references(container).items():
                assert generator_name(reference["name"]) == expected, (
                    f"{describe(document)} reads {variable} from {reference['name']}, "
                    f"not from its own Secret {expected}")


def test_k8s_gateway_never_gets_the_owners_login(overlay):
    assert "DATABASE_URL" not in configuration_data(generated(overlay, "Secret", "odp-gateway"))
    for container in containers(find(overlay, "Deployment", "gateway")):
        environment = container_environment(container, overlay)
        assert "DATABASE_URL" not in environment, f"gateway container {container['name']}"
        assert "READER_DATABASE_URL" in environment
    # `odp db setup` sets the login's password from the migrate Job's copy.
    migrate = configuration_data(generated(overlay, "Secret", "odp-migrate"))
    gateway = configuration_data(generated(overlay, "Secret", "odp-gateway"))
    assert migrate["READER_DATABASE_URL"] == gateway["READER_DATABASE_URL"]
    assert urlsplit(migrate["READER_DATABASE_URL"]).username != urlsplit(
        migrate["DATABASE_URL"]).username


def test_k8s_admin_runs_the_admin_service_with_its_settings(overlay, config_names):
    admin = find(overlay, "Deployment", "admin")
    environment = container_environment(main_container(admin), overlay)
    assert set(environment) <= config_names, (
        f"admin: shared/config.py does not read {set(environment) - config_names}")
    missing = ADMIN_SETTINGS - set(environment)
    assert not missing, f"the admin Deployment does not set {missing}"


def test_k8s_census_runs_the_census_service_like_admin(overlay, config_names):
    census = find(overlay, "Deployment", "census")
    container = main_container(census)
    environment = container_environment(container, overlay)
    assert set(environment) <= config_names, (
        f"census: shared/config.py does not read {set(environment) - config_names}")
    missing = CENSUS_SETTINGS - set(environment)
    assert not missing, f"the census Deployment does not set {missing}"
    assert environment["CENSUS_API_URL"] == CENSUS_API_URL
    # Only the secrets it reads: not the operator tokens, not the FTP password.
    assert set(secret_references(container)) == {"DATABASE_URL", "AMQP_URI", "CENSUS_API_KEY"}
    admin = main_container(find(overlay, "Deployment", "admin"))
    assert container["image"] == admin["image"], "census must run the platform's image"
    assert container.get("envFrom") == admin.get("envFrom"), (
        "census must take its settings from where admin takes them")
    assert census["spec"]["replicas"] == 1
    assert container["securityContext"] == admin["securityContext"]
    assert pod_spec(census)["securityContext"] == pod_spec(
        find(overlay, "Deployment", "admin"))["securityContext"]


def test_k8s_nightly_import_runs_the_nightly_command_like_admin(overlay, config_names):
    container = main_container(find(overlay, "CronJob", NIGHTLY_CRONJOB))
    assert container_command(container) == NIGHTLY_COMMAND
    environment = container_environment(container, overlay)
    assert set(environment) <= config_names, (
        f"the nightly import: shared/config.py does not read {set(environment) - config_names}")
    missing = NIGHTLY_SETTINGS - set(environment)
    assert not missing, f"the nightly import CronJob does not set {missing}"
    assert "ODP_ADMIN_TOKENS" not in environment, "the nightly import does not check tokens"
    admin = main_container(find(overlay, "Deployment", "admin"))
    assert container["image"] == admin["image"], "the nightly import must run admin's image"
    assert container.get("envFrom") == admin.get("envFrom"), (
        "the nightly import must take its settings from where admin takes them")
    admin_secrets = {reference["name"] for reference in secret_references(admin).values()}
    assert {reference["name"] for reference in secret_references(container).values()} == (
        admin_secrets), "the nightly import must read admin's Secret"


def test_k8s_each_service_logs_in_to_the_broker_as_itself(overlay):
    users = {}
    for document in platform_workloads(overlay):
        environment = container_environment(main_container(document), overlay)
        if "AMQP_URI" in environment:
            users[document["metadata"]["name"]] = urlsplit(environment["AMQP_URI"]).username
    expected = {**dict.fromkeys(INGEST_DEPLOYMENTS, "ingest"), "stats": "stats",
                "admin": "admin", NIGHTLY_CRONJOB: "admin", "census": "census",
                "gateway": "gateway"}
    assert users == expected


# -- k8s/: dev's backing services ---------------------------------------------

def test_k8s_dev_urls_reach_the_backing_services(dev):
    def backing_environment(name: str) -> dict[str, str]:
        return container_environment(main_container(find(dev, "StatefulSet", name)), dev)

    postgres = backing_environment("postgres")
    rabbitmq = backing_environment("rabbitmq")
    users = configuration_data(generated(dev, "Secret", "rabbitmq-users"))
    checked = set()
    for document in platform_workloads(dev):
        for container in containers(document):
            environment = container_environment(container, dev)
            for key in ("DATABASE_URL", "READER_DATABASE_URL"):
                if key in environment:
                    database = urlsplit(environment[key])
                    service = service_for_host(dev, database.hostname)
                    assert (database.port or 5432) in service_ports(service)
                    assert database.path.strip("/") == postgres["POSTGRES_DB"]
                    checked.add(key)
            if "DATABASE_URL" in environment:
                database = urlsplit(environment["DATABASE_URL"])
                assert (database.username, database.password) == (
                    postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"]
                ), f"{describe(document)}: DATABASE_URL's login is not postgres's owner"
            if "AMQP_URI" in environment:
                broker = urlsplit(environment["AMQP_URI"])
                service = service_for_host(dev, broker.hostname)
                assert service["metadata"]["name"] == "rabbitmq"
                assert (broker.port or 5672) in service_ports(service)
                # The user the Job rabbitmq-users creates, with its password.
                assert users[f"{broker.username.upper()}_PASSWORD"] == broker.password, (
                    f"{describe(document)}: AMQP_URI's password is not rabbitmq-users' "
                    f"{broker.username.upper()}_PASSWORD")
                assert broker.username != rabbitmq["RABBITMQ_DEFAULT_USER"], (
                    f"{describe(document)} logs in as the broker's administrator")
                checked.add("AMQP_URI")
            for server in environment.get("MEMCACHED_SERVERS", "").split(","):
                if server:
                    host, _, port = server.partition(":")
                    assert int(port or 11211) in service_ports(service_for_host(dev, host))
                    checked.add("MEMCACHED_SERVERS")
    assert checked == {"DATABASE_URL", "READER_DATABASE_URL", "AMQP_URI", "MEMCACHED_SERVERS"}


def test_k8s_dev_keda_reaches_the_management_api(dev):
    host = urlsplit(configuration_data(generated(dev, "Secret", "keda-rabbitmq"))["host"])
    # KEDA's operator runs in its own namespace: the Service's full name.
    assert host.hostname.split(".")[1:2] == [NAMESPACE], f"{host.hostname} is not a full name"
    service = service_for_host(dev, host.hostname)
    assert service["metadata"]["name"] == "rabbitmq" and host.port in service_ports(service)
    assert host.scheme == "http" and host.path == "/"
    users = configuration_data(generated(dev, "Secret", "rabbitmq-users"))
    assert (host.username, host.password) == ("keda", users["KEDA_PASSWORD"])


def test_k8s_dev_creates_the_services_broker_users(dev):
    job = find(dev, "Job", "rabbitmq-users")
    container = main_container(job)
    image, _, tag = container["image"].rpartition(":")
    assert image == "curlimages/curl" and re.fullmatch(r"\d+\.\d+\.\d+", tag), (
        f"the users Job must run a pinned upstream curl image, not {container['image']}")
    script = container_command(container)[-1]
    environment = container_environment(container, dev)
    for user in ("ingest", "stats", "admin", "census", "gateway", "keda"):
        password = f"{user.upper()}_PASSWORD"
        assert password in environment, f"the users Job has no {password}"
        assert re.search(rf"^\s*user {user} \"\${password}\"", script, re.M), (
            f"the users Job does not create {user}")
    for path in ("users/$1", "permissions/%2F/$1"):
        assert f'"{path}"' in script
    assert "--request PUT" in script
    assert job["spec"]["ttlSecondsAfterFinished"] > 0


# -- k8s/: the files themselves -----------------------------------------------

def k8s_files() -> list[Path]:
    """Every file of k8s/ but the operator's secret env files."""
    return sorted(path for path in K8S_DIR.rglob("*")
                  if path.is_file() and "secrets" not in path.relative_to(K8S_DIR).parts)


def test_k8s_readme_describes_every_file_and_how_to_apply():
    readme = (K8S_DIR / "README.md").read_text()
    for path in k8s_files():
        relative = path.relative_to(K8S_DIR).as_posix()
        if relative != "README.md":
            assert f"`{relative}`" in readme, f"k8s/README.md does not describe {relative}"
    for step in ("kubectl apply -k k8s/overlays/dev", "kubectl apply -k k8s/overlays/prod",
                 "delete job odp-migrate --ignore-not-found", "## Capacity"):
        assert step in readme, f"k8s/README.md lacks {step!r}"


def test_k8s_kustomizations_use_every_file_beside_them():
    for kustomization in sorted(K8S_DIR.rglob("kustomization.yaml")):
        spec = yaml.safe_load(kustomization.read_text())
        used = set(spec.get("resources", [])) | set(spec.get("configurations", []))
        used |= {patch["path"] for patch in spec.get("patches", []) if "path" in patch}
        for generator in spec.get("configMapGenerator", []) + spec.get("secretGenerator", []):
            used |= set(generator.get("envs", []))
            used |= {entry.rpartition("=")[2] for entry in generator.get("files", [])}
        for path in kustomization.parent.iterdir():
            if path.is_file() and path.name != "kustomization.yaml":
                assert path.name in used, f"{path.relative_to(K8S_DIR)} is in no kustomization"
        for deprecated in ("bases", "patchesStrategicMerge", "patchesJson6902", "commonLabels",
                           "vars"):
            assert deprecated not in spec, f"{kustomization}: deprecated field {deprecated}"


def test_k8s_secret_examples_match_the_generators_and_hold_placeholders():
    for overlay in OVERLAYS:
        spec = yaml.safe_load((K8S_DIR / "overlays" / overlay / "kustomization.yaml").read_text())
        env_files = {Path(env).name for generator in spec.get("secretGenerator", [])
                     for env in generator["envs"]}
        assert all(Path(env).parent.name == "secrets" for generator in spec["secretGenerator"]
                   for env in generator["envs"]), f"{overlay}: secrets outside secrets/"
        examples = K8S_DIR / "examples" / overlay
        assert {path.name.removesuffix(".example") for path in examples.glob("*.example")} == (
            env_files), f"k8s/examples/{overlay}/ and the {overlay} Secrets' env files differ"
        for example in examples.glob("*.example"):
            for line in example.read_text().splitlines():
                if not line or line.startswith("#"):
                    continue
                key, _, value = line.partition("=")
                assert not value.startswith(('"', "'")), f"{example.name}: {key} is quoted"
                url = urlsplit(value)
                secret = url.password if url.scheme and url.password else (
                    value if key.endswith(("PASSWORD", "PASS", "TOKENS", "SECRET", "API_KEY"))
                    else "")
                if secret:
                    assert secret.startswith("CHANGE-ME"), (
                        f"{example.name}: {key} holds a value, not a CHANGE-ME placeholder")
                    # URL- and JSON-safe: nothing to quote or percent-encode.
                    assert re.fullmatch(r"[A-Za-z0-9._~-]+", secret), f"{example.name}: {key}"


def test_k8s_secret_env_files_stay_out_of_git():
    for overlay in OVERLAYS:
        path = f"k8s/overlays/{overlay}/secrets/admin.env"
        ignored = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT,
                                 check=False)
        assert ignored.returncode == 0, f".gitignore must keep {path} out of git"


# -- .dockerignore -----------------------------------------------------------

def test_dockerignore_keeps_dotenv_out_and_the_sources_in():
    patterns = [line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text()
                .splitlines() if line.strip() and not line.startswith("#")]

    def ignored(name: str) -> bool:
        return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)

    # Config.from_env reads .env from the working directory.
    assert ignored(".env")
    for needed in ("pyproject.toml", "alembic.ini", "migrations", "shared", "services", "odp"):
        assert not ignored(needed), f".dockerignore leaves {needed} out of the image"
