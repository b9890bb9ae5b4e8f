"""The deployment files parse and agree with the code and with each other.

docker-compose.yml, every k8s/*.yaml and .dockerignore are read as data (no
Docker, no cluster): a setting name that shared/config.py does not read, a
command that no longer runs the right service, a reference to a Secret key
that is not there, or a URL whose host or password matches no backing
service fails here instead of in a container.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
K8S_DIR = ROOT / "k8s"
CONFIG_SOURCE = ROOT / "shared" / "config.py"

INGEST_COMMAND = ["python", "-m", "services.ingest"]
STATS_COMMAND = ["python", "-m", "services.stats"]
ADMIN_COMMAND = ["python", "-m", "services.admin"]
CENSUS_COMMAND = ["python", "-m", "services.census"]
NIGHTLY_COMMAND = ["python", "-m", "services.admin.nightly"]
MIGRATE_COMMAND = ["odp", "db", "setup"]
GATEWAY_APP = "services.gateway.wsgi:app"
# Settings that must never sit in a ConfigMap, where anyone who can read
# the namespace's configuration sees them.
SECRET_SETTINGS = {"DATABASE_URL", "AMQP_URI", "NC_FTP_PASSWORD", "ODP_ADMIN_TOKENS",
                   "CENSUS_API_KEY", "ODP_WEB_SECRET"}
# Workloads that run their upstream images, not the platform's.
BACKING_WORKLOADS = {"postgres", "rabbitmq", "memcached"}
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


# -- loading ---------------------------------------------------------------

@pytest.fixture(scope="module")
def config_names() -> set[str]:
    """The environment names shared/config.py reads, from its source."""
    return set(re.findall(r"\bget\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']", CONFIG_SOURCE.read_text()))


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def k8s_documents() -> list[dict]:
    documents = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                documents.append({**document, "_file": path.name})
    return documents


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


def find(documents: list[dict], kind: str, name: str) -> dict:
    matches = [doc for doc in documents if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name!r} in k8s/, found {len(matches)}"
    return matches[0]


def pod_spec(document: dict) -> dict | None:
    if document["kind"] in POD_TEMPLATE_KINDS:
        return document["spec"]["template"]["spec"]
    if document["kind"] == "CronJob":
        return document["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def pod_labels(document: dict) -> dict[str, str]:
    """The labels of the pods a workload creates."""
    spec = document["spec"]
    if document["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["metadata"].get("labels", {})


def workloads(documents: list[dict]) -> list[dict]:
    return [doc for doc in documents if pod_spec(doc) is not None]


def platform_workloads(documents: list[dict]) -> list[dict]:
    return [doc for doc in workloads(documents)
            if doc["metadata"]["name"] not in BACKING_WORKLOADS]


def containers(document: dict) -> list[dict]:
    spec = pod_spec(document)
    return spec.get("initContainers", []) + spec["containers"]


def container_command(container: dict) -> list[str]:
    return container.get("command", []) + container.get("args", [])


def configuration_data(document: dict) -> dict[str, str]:
    """A ConfigMap's or Secret's keys and values (stringData as written)."""
    return {**document.get("data", {}), **document.get("stringData", {})}


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


def assert_runs_code_that_exists(where: str, command: list[str]) -> None:
    """A container's or service's command names a module, app or script the repository has."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    if command[:2] == ["python", "-m"]:
        assert module_file(command[2]), f"{where} runs missing module {command[2]}"
    elif command[0] == "gunicorn":
        module, _, attribute = gunicorn_app(command).partition(":")
        path = module_file(module)
        assert path, f"{where} serves missing module {module}"
        assert re.search(rf"^{attribute or 'application'}\s*=", path.read_text(), re.M), (
            f"{where} serves {attribute!r}, which {module} does not define")
    else:
        assert command[0] in scripts, f"{where} runs {command[0]}, not a declared script"


def gunicorn_app(command: list[str]) -> str:
    """The WSGI app a gunicorn command serves: its last argument."""
    assert command[0] == "gunicorn", f"not a gunicorn command: {command}"
    assert not command[-1].startswith("-"), f"gunicorn command without an app: {command}"
    return command[-1]


def gunicorn_bind(command: list[str]) -> tuple[str, int]:
    """The host and port of a gunicorn command's one --bind (or -b)."""
    binds = []
    for index, argument in enumerate(command):
        if argument in ("--bind", "-b"):
            binds.append(command[index + 1])
        elif argument.startswith("--bind="):
            binds.append(argument.partition("=")[2])
    assert len(binds) == 1, f"expected one --bind in {command}"
    host, _, port = binds[0].rpartition(":")
    return host, int(port)


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


def module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base / "__main__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


# -- shared/config.py ------------------------------------------------------

def test_config_names_are_found_in_shared_config(config_names):
    assert {"DATABASE_URL", "AMQP_URI", "MEMCACHED_SERVERS", "DATA_DIR"} <= config_names, (
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
    for name, service in compose_platform_services(compose).items():
        environment = compose_environment(service)
        database = urlsplit(environment["DATABASE_URL"])
        postgres = compose_environment(services[database.hostname])
        assert (database.username, database.password, database.path.strip("/")) == (
            postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"]
        ), f"{name}: DATABASE_URL does not match the postgres service"
        broker = urlsplit(environment["AMQP_URI"])
        rabbitmq = compose_environment(services[broker.hostname])
        assert (broker.username, broker.password) == (
            rabbitmq["RABBITMQ_DEFAULT_USER"], rabbitmq["RABBITMQ_DEFAULT_PASS"]
        ), f"{name}: AMQP_URI does not match the rabbitmq service"
        for server in environment["MEMCACHED_SERVERS"].split(","):
            assert server.partition(":")[0] in services, f"{name}: no service for {server}"


# -- k8s/ ------------------------------------------------------------------

def test_k8s_documents_have_api_version_kind_and_name(k8s_documents):
    assert k8s_documents, "no manifests in k8s/"
    for document in k8s_documents:
        where = document["_file"]
        assert document.get("apiVersion"), f"{where}: a document without apiVersion"
        assert document.get("kind"), f"{where}: a document without kind"
        assert document.get("metadata", {}).get("name"), f"{where}: a document without a name"


def test_k8s_documents_are_in_the_project_namespace(k8s_documents):
    namespace = find(k8s_documents, "Namespace", "open-data-policing")["metadata"]["name"]
    for document in k8s_documents:
        if document["kind"] not in CLUSTER_SCOPED_KINDS:
            assert document["metadata"].get("namespace") == namespace, (
                f"{document['_file']}: {document['kind']} {document['metadata']['name']} "
                f"is not in namespace {namespace}")


def test_k8s_platform_containers_share_the_compose_image(k8s_documents, compose):
    images = {container["image"] for document in platform_workloads(k8s_documents)
              for container in containers(document)}
    assert len(images) == 1, f"platform containers use several images: {images}"
    compose_image = next(iter(compose_platform_services(compose).values()))["image"]

    def repository(image: str) -> str:
        return image.rsplit("/", 1)[-1].partition(":")[0]

    assert repository(images.pop()) == repository(compose_image)


def test_k8s_platform_environment_names_are_read_by_shared_config(k8s_documents,
                                                                  config_names):
    seen = set()
    for document in platform_workloads(k8s_documents):
        for container in containers(document):
            environment = container_environment(container, k8s_documents)
            unknown = set(environment) - config_names
            assert not unknown, (
                f"{document['_file']}: shared/config.py does not read {unknown}")
            seen |= set(environment)
    for kind, name in (("ConfigMap", "odp-config"), ("Secret", "odp-secrets")):
        unknown = set(configuration_data(find(k8s_documents, kind, name))) - config_names
        assert not unknown, f"{kind} {name}: shared/config.py does not read {unknown}"
    assert {"DATABASE_URL", "AMQP_URI", "DATA_DIR"} <= seen


def test_k8s_secret_settings_stay_out_of_the_configmap(k8s_documents):
    settings = set(configuration_data(find(k8s_documents, "ConfigMap", "odp-config")))
    secrets = set(configuration_data(find(k8s_documents, "Secret", "odp-secrets")))
    assert not settings & SECRET_SETTINGS, f"secrets in the ConfigMap: {settings & SECRET_SETTINGS}"
    assert SECRET_SETTINGS <= secrets, f"missing from odp-secrets: {SECRET_SETTINGS - secrets}"


def test_k8s_configuration_values_are_strings(k8s_documents):
    for document in k8s_documents:
        if document["kind"] in {"ConfigMap", "Secret"}:
            for key, value in configuration_data(document).items():
                assert isinstance(value, str), (
                    f"{document['_file']}: {key} is {value!r}; the API accepts strings only")


def test_k8s_ingest_runs_the_ingest_services(k8s_documents):
    ingest = find(k8s_documents, "Deployment", "ingest")
    (container,) = containers(ingest)
    assert container_command(container) == INGEST_COMMAND
    # The service drains its in-flight import on SIGTERM.
    assert pod_spec(ingest)["terminationGracePeriodSeconds"] >= 3600
    data_dir = container_environment(container, k8s_documents)["DATA_DIR"]
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod_spec(ingest)["volumes"]}
    claim = volumes[mounts[data_dir]]["persistentVolumeClaim"]["claimName"]
    find(k8s_documents, "PersistentVolumeClaim", claim)


def test_k8s_platform_containers_run_code_that_exists(k8s_documents):
    for document in platform_workloads(k8s_documents):
        for container in containers(document):
            assert_runs_code_that_exists(
                f"{document['_file']}: container {container['name']}", container_command(container))


def test_k8s_secret_settings_come_from_secrets(k8s_documents):
    for document in platform_workloads(k8s_documents):
        for container in containers(document):
            for variable in container.get("env", []):
                if variable["name"] in SECRET_SETTINGS:
                    assert "secretKeyRef" in variable.get("valueFrom", {}), (
                        f"{document['_file']}: {variable['name']} must come from a Secret")


def test_k8s_selectors_select_only_their_own_pods(k8s_documents):
    for document in workloads(k8s_documents):
        selector = document["spec"].get("selector", {}).get("matchLabels")
        if not selector:
            continue
        for other in workloads(k8s_documents):
            if other is not document:
                assert not selector.items() <= pod_labels(other).items(), (
                    f"{document['_file']}: {document['kind']} {document['metadata']['name']} "
                    f"also selects the pods of {other['kind']} {other['metadata']['name']}")


def test_k8s_admin_runs_the_admin_service(k8s_documents, config_names):
    admin = find(k8s_documents, "Deployment", "admin")
    (container,) = containers(admin)
    assert container_command(container) == ADMIN_COMMAND
    environment = container_environment(container, k8s_documents)
    assert set(environment) <= config_names, (
        f"admin: shared/config.py does not read {set(environment) - config_names}")
    missing = ADMIN_SETTINGS - set(environment)
    assert not missing, f"the admin Deployment does not set {missing}"
    # It serves no HTTP: the gateway reaches it over RPC through RabbitMQ.
    labels = pod_labels(admin)
    assert not [service for service in k8s_documents if service["kind"] == "Service"
                and service["spec"]["selector"].items() <= labels.items()]
    assert "exec" in container["livenessProbe"], "admin has no HTTP endpoint to probe"
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_k8s_census_runs_the_census_service_like_admin(k8s_documents, config_names):
    census = find(k8s_documents, "Deployment", "census")
    (container,) = containers(census)
    assert container_command(container) == CENSUS_COMMAND
    environment = container_environment(container, k8s_documents)
    assert set(environment) <= config_names, (
        f"census: shared/config.py does not read {set(environment) - config_names}")
    missing = CENSUS_SETTINGS - set(environment)
    assert not missing, f"the census Deployment does not set {missing}"
    assert environment["CENSUS_API_URL"] == CENSUS_API_URL
    secret_refs = {variable["name"]: variable["valueFrom"]["secretKeyRef"]
                   for variable in container.get("env", [])
                   if "secretKeyRef" in variable.get("valueFrom", {})}
    for name in ("DATABASE_URL", "AMQP_URI", "CENSUS_API_KEY"):
        assert secret_refs.get(name) == {"name": "odp-secrets", "key": name}, (
            f"census must take {name} from odp-secrets")
    # Only the secrets it reads: not the operator tokens, not the FTP password.
    assert set(secret_refs) <= CENSUS_SETTINGS, (
        f"census gets secrets it does not need: {set(secret_refs) - CENSUS_SETTINGS}")
    (admin,) = containers(find(k8s_documents, "Deployment", "admin"))
    assert container["image"] == admin["image"], "census must run the platform's image"
    assert container.get("envFrom") == admin.get("envFrom"), (
        "census must take its settings from where admin takes them")
    assert census["spec"]["replicas"] == 1
    # It serves no HTTP: admin reaches it through RabbitMQ.
    labels = pod_labels(census)
    assert not [service for service in k8s_documents if service["kind"] == "Service"
                and service["spec"]["selector"].items() <= labels.items()]
    assert "exec" in container["livenessProbe"], "census has no HTTP endpoint to probe"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["securityContext"] == admin["securityContext"]
    assert pod_spec(census)["securityContext"] == pod_spec(
        find(k8s_documents, "Deployment", "admin"))["securityContext"]


def test_k8s_nightly_import_cronjob_runs_daily_at_3_in_north_carolina(k8s_documents):
    cronjob = find(k8s_documents, "CronJob", NIGHTLY_CRONJOB)
    spec = cronjob["spec"]
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


def test_k8s_nightly_import_runs_the_nightly_command_like_admin(k8s_documents, config_names):
    (container,) = containers(find(k8s_documents, "CronJob", NIGHTLY_CRONJOB))
    assert container_command(container) == NIGHTLY_COMMAND
    environment = container_environment(container, k8s_documents)
    assert set(environment) <= config_names, (
        f"the nightly import: shared/config.py does not read {set(environment) - config_names}")
    missing = NIGHTLY_SETTINGS - set(environment)
    assert not missing, f"the nightly import CronJob does not set {missing}"
    (admin,) = containers(find(k8s_documents, "Deployment", "admin"))
    assert container["image"] == admin["image"], "the nightly import must run admin's image"
    assert container.get("envFrom") == admin.get("envFrom"), (
        "the nightly import must take its settings from where admin takes them")


def test_k8s_readme_lists_and_applies_every_manifest():
    readme = (K8S_DIR / "README.md").read_text()
    for path in sorted(K8S_DIR.glob("*.yaml")):
        assert f"`{path.name}`" in readme, f"k8s/README.md does not describe {path.name}"
        if path.name != "secret.example.yaml":  # never applied as it is
            assert f"-f k8s/{path.name}" in readme, (
                f"k8s/README.md's apply order leaves out {path.name}")


def test_k8s_migrate_job_runs_odp_db_setup(k8s_documents):
    (container,) = containers(find(k8s_documents, "Job", "odp-migrate"))
    assert container_command(container) == MIGRATE_COMMAND


def test_k8s_gateway_serves_the_wsgi_app_with_probes(k8s_documents):
    gateway = find(k8s_documents, "Deployment", "gateway")
    (container,) = containers(gateway)
    command = container_command(container)
    assert gunicorn_app(command) == GATEWAY_APP
    host, port = gunicorn_bind(command)
    assert host == "0.0.0.0", "a gateway bound to localhost is unreachable from the Service"
    assert port in {entry["containerPort"] for entry in container["ports"]}
    assert container_environment(container, k8s_documents)["PORT"] == str(port)
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        request = container[probe]["httpGet"]
        assert request["path"] == path, f"the gateway's {probe} must ask {path}"
        assert container_port(container, request["port"]) == port, (
            f"the gateway's {probe} asks a port gunicorn does not listen on")


def test_k8s_gateway_service_reaches_the_gateway_pods(k8s_documents):
    gateway = find(k8s_documents, "Deployment", "gateway")
    (container,) = containers(gateway)
    _, port = gunicorn_bind(container_command(container))
    service = find(k8s_documents, "Service", "gateway")
    labels = gateway["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    for entry in service["spec"]["ports"]:
        assert container_port(container, entry.get("targetPort", entry["port"])) == port


def test_k8s_gateway_is_autoscaled_from_two_replicas(k8s_documents):
    (autoscaler,) = [doc for doc in k8s_documents if doc["kind"] == "HorizontalPodAutoscaler"
                     and doc["spec"]["scaleTargetRef"]["name"] == "gateway"]
    assert autoscaler["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    assert autoscaler["spec"]["minReplicas"] >= 2, "one gateway pod is a single point of failure"


def test_k8s_stats_runs_the_stats_service_and_reaches_the_gateway(k8s_documents):
    (container,) = containers(find(k8s_documents, "Deployment", "stats"))
    assert container_command(container) == STATS_COMMAND
    odp_url = urlsplit(container_environment(container, k8s_documents)["ODP_URL"])
    service = service_for_host(k8s_documents, odp_url.hostname)
    assert service["metadata"]["name"] == "gateway", "stats warms the cache through the gateway"
    ports = {entry["port"] for entry in service["spec"]["ports"]}
    assert (odp_url.port or 80) in ports, f"Service gateway does not listen on {odp_url.port}"


def test_k8s_autoscaled_deployments_leave_replicas_to_the_hpa(k8s_documents):
    autoscalers = [doc for doc in k8s_documents if doc["kind"] == "HorizontalPodAutoscaler"]
    assert autoscalers
    for autoscaler in autoscalers:
        target = autoscaler["spec"]["scaleTargetRef"]
        deployment = find(k8s_documents, target["kind"], target["name"])
        assert "replicas" not in deployment["spec"], (
            f"{target['name']} sets replicas, which every apply would reset")
        for container in containers(deployment):
            # CPU utilization is a share of the request: no request, no scaling.
            assert container["resources"]["requests"]["cpu"]


def test_k8s_selectors_match_pod_labels(k8s_documents):
    pod_labels = [document["spec"]["template"]["metadata"]["labels"]
                  for document in workloads(k8s_documents) if document["kind"] != "CronJob"]
    for document in workloads(k8s_documents):
        selector = document["spec"].get("selector", {}).get("matchLabels")
        if selector:
            labels = document["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= labels.items(), f"{document['_file']}: selector misses"
    for service in (doc for doc in k8s_documents if doc["kind"] == "Service"):
        selector = service["spec"]["selector"]
        assert any(selector.items() <= labels.items() for labels in pod_labels), (
            f"{service['_file']}: Service {service['metadata']['name']} selects no pods")


def test_k8s_urls_reach_the_backing_services(k8s_documents):
    def assert_service_listens(host: str, port: int) -> None:
        ports = {entry["port"] for entry in find(k8s_documents, "Service", host)["spec"]["ports"]}
        assert port in ports, f"Service {host} does not listen on {port}"

    def backing_environment(name: str) -> dict[str, str]:
        (container,) = containers(find(k8s_documents, "StatefulSet", name))
        return container_environment(container, k8s_documents)

    checked = set()
    for document in platform_workloads(k8s_documents):
        for container in containers(document):
            environment = container_environment(container, k8s_documents)
            if "DATABASE_URL" in environment:
                database = urlsplit(environment["DATABASE_URL"])
                assert_service_listens(database.hostname, database.port or 5432)
                postgres = backing_environment(database.hostname)
                assert (database.username, database.password) == (
                    postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"]
                ), "DATABASE_URL's credentials are not those postgres is created with"
                checked.add("DATABASE_URL")
            if "AMQP_URI" in environment:
                broker = urlsplit(environment["AMQP_URI"])
                assert_service_listens(broker.hostname, broker.port or 5672)
                rabbitmq = backing_environment(broker.hostname)
                assert (broker.username, broker.password) == (
                    rabbitmq["RABBITMQ_DEFAULT_USER"], rabbitmq["RABBITMQ_DEFAULT_PASS"]
                ), "AMQP_URI's credentials are not those rabbitmq is created with"
                checked.add("AMQP_URI")
            for server in environment.get("MEMCACHED_SERVERS", "").split(","):
                if server:
                    host, _, port = server.partition(":")
                    assert_service_listens(host, int(port or 11211))
                    checked.add("MEMCACHED_SERVERS")
    assert checked == {"DATABASE_URL", "AMQP_URI", "MEMCACHED_SERVERS"}


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
