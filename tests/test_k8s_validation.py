"""The rendered manifests are valid Kubernetes objects, and name what exists.

Built-in kinds go through `kubernetes-validate --strict` (the Kubernetes
API's OpenAPI schemas, unknown fields refused). The tool has no schema for
KEDA's ScaledObject and TriggerAuthentication: it only prints a WARN line
and passes them (as it would an apiVersion that Kubernetes dropped), so
they are kept from it and checked here against what KEDA requires; a WARN
for anything else fails. Then: every reference to a ConfigMap or Secret
names its generated (hashed) name, and the platform's image is named once.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.test_deploy_manifests import (
    IMAGE_REPOSITORY,
    K8S_DIR,
    configuration_data,
    containers,
    describe,
    find,
    generator_name,
    of_kind,
    platform_workloads,
    pod_spec,
    workloads,
)

KUBERNETES_VALIDATE = Path(sys.executable).parent / "kubernetes-validate"
# The oldest Kubernetes these manifests are for: the CronJob's timeZone
# needs 1.27, and 1.30 is the oldest release its maintainers still patch.
KUBERNETES_VERSION = "1.30.0"
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}
KEDA_API_VERSION = "keda.sh/v1alpha1"
KEDA_TRIGGER_TYPES = {"rabbitmq", "cpu", "memory", "prometheus"}


def kubernetes_validate(documents: list[dict], workdir: Path) -> tuple[int, str]:
    assert KUBERNETES_VALIDATE.is_file(), (
        f"{KUBERNETES_VALIDATE} is missing: `make venv` installs it (the dev dependencies)")
    manifest = workdir / "manifest.yaml"
    manifest.write_text(yaml.safe_dump_all(documents))
    result = subprocess.run(
        [str(KUBERNETES_VALIDATE), "--strict", "--quiet", "-k", KUBERNETES_VERSION,
         str(manifest)], capture_output=True, text=True, timeout=120, check=False)
    return result.returncode, (result.stdout + result.stderr).strip()


# -- built-in kinds ------------------------------------------------------------

def test_builtin_kinds_pass_kubernetes_validate_strict(every_render, tmp_path):
    builtin = [doc for doc in every_render.documents if doc["kind"] not in KEDA_KINDS]
    code, output = kubernetes_validate(builtin, tmp_path)
    assert code == 0, f"kubernetes-validate --strict on {every_render.name}:\n{output}"
    # A kind (or apiVersion) it has no schema for is only a WARN: none here.
    assert not output, f"kubernetes-validate on {every_render.name} said:\n{output}"


def test_kubernetes_validate_flags_what_it_should(tmp_path):
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
                  "spec": {"selector": {"matchLabels": {"a": "b"}},
                           "template": {"metadata": {"labels": {"a": "b"}},
                                        "spec": {"containers": [{"name": "x", "image": "x",
                                                                 "livenesProbe": {}}]}}}}
    code, output = kubernetes_validate([deployment], tmp_path)
    assert code != 0 and "livenesProbe" in output, (
        f"kubernetes-validate --strict let a misspelt field through (exit {code}):\n{output}")
    budget = {"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget",
              "metadata": {"name": "x"}, "spec": {"maxUnavailable": 1}}
    code, output = kubernetes_validate([budget], tmp_path)
    assert code == 0 and output.startswith("WARN"), (
        "kubernetes-validate no longer passes unknown apiVersions with a WARN: "
        f"revisit how this module treats the KEDA kinds (exit {code}):\n{output}")


# -- KEDA's kinds ----------------------------------------------------------------

def assert_trigger(where: str, trigger: dict, documents: list[dict]) -> None:
    kind = trigger.get("type")
    assert kind in KEDA_TRIGGER_TYPES, f"{where}: trigger type {kind!r}"
    metadata = trigger.get("metadata")
    assert isinstance(metadata, dict) and all(isinstance(value, str)
                                              for value in metadata.values()), (
        f"{where}: a trigger's metadata must be strings")
    if kind == "rabbitmq":
        assert metadata["protocol"] in {"amqp", "http", "auto"}
        assert metadata["mode"] in {"QueueLength", "MessageRate"}
        assert float(metadata["value"]) > 0
        assert metadata["queueName"]
        assert "host" not in metadata, f"{where}: the broker's credentials belong in a Secret"
        find(documents, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    elif kind in {"cpu", "memory"}:
        assert trigger["metricType"] in {"Utilization", "AverageValue"}
        assert float(metadata["value"]) > 0
    elif kind == "prometheus":
        assert metadata["serverAddress"].startswith(("http://", "https://"))
        assert metadata["query"] and float(metadata["threshold"]) > 0


def test_keda_objects_have_what_keda_requires(every_render):
    documents = every_render.documents
    keda = [doc for doc in documents if doc["kind"] in KEDA_KINDS]
    assert {doc["kind"] for doc in keda} == KEDA_KINDS
    for document in keda:
        assert document["apiVersion"] == KEDA_API_VERSION, f"{describe(document)}"
        assert set(document) <= {"apiVersion", "kind", "metadata", "spec"}
    for scaled in of_kind(documents, "ScaledObject"):
        spec = scaled["spec"]
        assert set(spec) <= {"scaleTargetRef", "minReplicaCount", "maxReplicaCount",
                             "pollingInterval", "cooldownPeriod", "idleReplicaCount",
                             "fallback", "advanced", "triggers"}, f"{describe(scaled)}: {set(spec)}"
        target = spec["scaleTargetRef"]
        assert target.get("apiVersion", "apps/v1") == "apps/v1"
        find(documents, target.get("kind", "Deployment"), target["name"])
        assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        assert spec["triggers"], f"{describe(scaled)} has no trigger"
        for trigger in spec["triggers"]:
            assert_trigger(describe(scaled), trigger, documents)
    for authentication in of_kind(documents, "TriggerAuthentication"):
        references = authentication["spec"]["secretTargetRef"]
        assert references
        for reference in references:
            assert set(reference) == {"parameter", "name", "key"}
            assert reference["parameter"] == "host"


def test_keda_secrets_exist_with_their_keys(overlay):
    for authentication in of_kind(overlay, "TriggerAuthentication"):
        for reference in authentication["spec"]["secretTargetRef"]:
            secret = find(overlay, "Secret", reference["name"])
            assert reference["key"] in configuration_data(secret)


# -- generated names --------------------------------------------------------------

def configuration_references(document: dict) -> list[tuple[str, str]]:
    """(kind, name) of every ConfigMap and Secret a workload or TriggerAuthentication names."""
    found = []
    if document["kind"] == "TriggerAuthentication":
        found += [("Secret", ref["name"]) for ref in document["spec"]["secretTargetRef"]]
    spec = pod_spec(document)
    if spec is None:
        return found
    for volume in spec.get("volumes", []):
        if "configMap" in volume:
            found.append(("ConfigMap", volume["configMap"]["name"]))
        if "secret" in volume:
            found.append(("Secret", volume["secret"]["secretName"]))
    for container in containers(document):
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                found.append(("ConfigMap", source["configMapRef"]["name"]))
            if "secretRef" in source:
                found.append(("Secret", source["secretRef"]["name"]))
        for variable in container.get("env", []):
            for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                if key in variable.get("valueFrom", {}):
                    found.append((kind, variable["valueFrom"][key]["name"]))
    return found


def test_configuration_is_referenced_by_its_generated_name(overlay):
    names = {(doc["kind"], doc["metadata"]["name"]) for doc in overlay
             if doc["kind"] in {"ConfigMap", "Secret"}}
    for kind, name in names:
        # A hashed name: a change of a value makes a new object, and rolls
        # the pods that name it.
        assert generator_name(name) != name, f"{kind} {name} is not generated"
    referenced = set()
    for document in overlay:
        for kind, name in configuration_references(document):
            assert (kind, name) in names, f"{describe(document)} names {kind} {name}, not rendered"
            referenced.add((kind, name))
    assert referenced == names, f"rendered but unused: {names - referenced}"


# -- the image -----------------------------------------------------------------------

def test_the_platform_image_is_named_once():
    kustomizations = sorted(K8S_DIR.rglob("kustomization.yaml"))
    mapped = [(path, entry) for path in kustomizations
              for entry in yaml.safe_load(path.read_text()).get("images", [])]
    new_names = [(path, entry) for path, entry in mapped if "newName" in entry]
    assert len(new_names) == 1, f"the image is named in several places: {new_names}"
    ((path, entry),) = new_names
    assert path == K8S_DIR / "base" / "kustomization.yaml"
    assert (entry["name"], entry["newName"]) == ("odp", IMAGE_REPOSITORY)
    # An overlay may only pin its own tag (or digest) of that image.
    for path, entry in mapped:
        if "newName" not in entry:
            assert entry["name"] == IMAGE_REPOSITORY and set(entry) <= {
                "name", "newTag", "digest"}, f"{path}: {entry}"
    text = "".join(path.read_text() for path in K8S_DIR.rglob("*.yaml")
                   if path.name != "kustomization.yaml")
    assert IMAGE_REPOSITORY not in text, "a manifest names the image instead of `odp`"


def test_every_platform_container_runs_the_image(every_render):
    documents = every_render.documents
    images = {container["image"] for document in platform_workloads(documents)
              for container in containers(document)}
    assert len(images) == 1, f"{every_render.name}: platform containers use {images}"
    image = images.pop()
    repository, _, tag = image.rpartition(":")
    assert repository == IMAGE_REPOSITORY and tag, f"{every_render.name}: {image}"
    backing = {container["image"] for document in workloads(documents)
               for container in containers(document)} - {image}
    for other in backing:
        assert other.rpartition(":")[2] not in {"", "latest"}, f"{other} is not pinned"
