"""The rendered manifests' production rules: security, budgets, network
policies, autoscaling, and what dev and prod each carry.

- Every pod passes the Pod Security Standards' `restricted` profile, which
  the namespace enforces, plus this project's own rules (read-only root
  filesystem, no service account token, numeric user, group and fsGroup).
- Every Deployment has its probes, requests and limits, minReadySeconds, a
  PodDisruptionBudget and a NetworkPolicy of its own.
- The NetworkPolicies are evaluated here the way a network plugin reads
  them (default deny, then what some policy selecting the pod allows), for
  the connections the platform needs and a few it must not make.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from tests.test_deploy_manifests import (
    INGEST_DEPLOYMENTS,
    NAMEKO_DEPLOYMENTS,
    NAMESPACE,
    NIGHTLY_CRONJOB,
    container_environment,
    containers,
    describe,
    find,
    main_container,
    of_kind,
    platform_workloads,
    pod_labels,
    pod_spec,
    pod_template,
    selects,
    workload,
    workloads,
)

# The volume types the restricted profile allows.
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}
PUBLIC_IP = "203.0.113.10"  # a documentation address, outside every private range
PRIVATE_IPS = ("10.1.2.3", "172.20.0.5", "192.168.1.1", "169.254.169.254", "127.0.0.1")
MONITORING = {"kubernetes.io/metadata.name": "monitoring"}
DATABASE_CLIENTS = {"odp-migrate", *INGEST_DEPLOYMENTS, "stats", "admin", "census", "gateway",
                    NIGHTLY_CRONJOB}
BROKER_CLIENTS = DATABASE_CLIENTS - {"odp-migrate"}
METRICS_SERVERS = {*NAMEKO_DEPLOYMENTS, "gateway"}


# -- Pod Security ----------------------------------------------------------------

def restricted_violations(document: dict) -> list[str]:
    """What keeps a workload's pods out of a namespace that enforces
    `restricted`, and out of this project's own rules."""
    spec = pod_spec(document)
    pod = spec.get("securityContext", {})
    problems = []
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host):
            problems.append(host)
    if spec.get("automountServiceAccountToken") is not False:
        problems.append("automountServiceAccountToken is not false")
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        if not isinstance(pod.get(key), int) or pod[key] == 0:
            problems.append(f"pod {key} is not a numeric non-root id")
    if pod.get("runAsNonRoot") is not True:
        problems.append("pod runAsNonRoot is not true")
    if pod.get("seccompProfile", {}).get("type") not in {"RuntimeDefault", "Localhost"}:
        problems.append("pod seccompProfile is not RuntimeDefault")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']} is {kinds}")
    for container in containers(document):
        context = container.get("securityContext", {})
        where = f"container {container['name']}"
        if context.get("privileged"):
            problems.append(f"{where} is privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where} allows privilege escalation")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where} writes its root filesystem")
        capabilities = context.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            problems.append(f"{where} does not drop ALL capabilities")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{where} adds capabilities")
        if context.get("runAsUser") == 0 or context.get("runAsNonRoot") is False:
            problems.append(f"{where} runs as root")
        if any(port.get("hostPort") for port in container.get("ports", [])):
            problems.append(f"{where} has a hostPort")
        mounted = {mount["mountPath"] for mount in container.get("volumeMounts", [])}
        if "/tmp" not in mounted and document["metadata"]["name"] != "memcached":
            problems.append(f"{where} has no writable /tmp")
    return problems


def test_the_namespace_enforces_the_restricted_profile(every_render):
    labels = find(every_render.documents, "Namespace", NAMESPACE)["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels.get(f"pod-security.kubernetes.io/{mode}") == "restricted"


def test_every_pod_passes_the_restricted_profile(every_render):
    for document in workloads(every_render.documents):
        problems = restricted_violations(document)
        assert not problems, f"{every_render.name}: {describe(document)}: {problems}"


def test_the_restricted_check_flags_a_root_pod():
    pod = {"kind": "Job", "metadata": {"name": "x"}, "spec": {"template": {"spec": {
        "containers": [{"name": "x", "image": "x", "securityContext": {"privileged": True}}],
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}]}}}}
    problems = restricted_violations(pod)
    assert len(problems) >= 8, problems


def test_platform_pods_run_as_the_images_user(every_render):
    for document in platform_workloads(every_render.documents):
        context = pod_spec(document)["securityContext"]
        assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (
            10001, 10001, 10001), describe(document)


# -- Deployments -------------------------------------------------------------------

def test_every_deployment_is_probed_sized_and_budgeted(every_render):
    documents = every_render.documents
    budgets = of_kind(documents, "PodDisruptionBudget")
    policies = [policy for policy in of_kind(documents, "NetworkPolicy")
                if policy["spec"]["podSelector"]]
    for deployment in of_kind(documents, "Deployment"):
        where = f"{every_render.name}: {describe(deployment)}"
        assert deployment["spec"].get("minReadySeconds", 0) > 0, f"{where}: no minReadySeconds"
        for container in pod_spec(deployment)["containers"]:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert probe in container, f"{where}: container {container['name']} has no {probe}"
        for container in containers(deployment):
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), (
                    f"{where}: container {container['name']} has no {bound}")
        labels = pod_labels(deployment)
        matching = [budget for budget in budgets if selects(budget["spec"]["selector"], labels)]
        assert len(matching) == 1, f"{where}: {len(matching)} PodDisruptionBudgets"
        own = [policy for policy in policies if selects(policy["spec"]["podSelector"], labels)]
        assert own, f"{where}: no NetworkPolicy of its own beside the default deny"


def test_budgets_select_pods(every_render):
    labels = [pod_labels(document) for document in workloads(every_render.documents)]
    for budget in of_kind(every_render.documents, "PodDisruptionBudget"):
        assert any(selects(budget["spec"]["selector"], pod) for pod in labels), describe(budget)


def test_worker_budgets_let_one_pod_go(every_render):
    for name in (*NAMEKO_DEPLOYMENTS, "memcached"):
        assert find(every_render.documents, "PodDisruptionBudget", name)["spec"] == {
            "maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": name}}}


def test_the_gateway_keeps_pods_through_disruptions(rendered):
    expected = {"base": (1, 1, 3), "dev": (1, 1, 3), "prod": (2, 3, 10)}
    for name, (available, least, most) in expected.items():
        documents = rendered[name].documents
        budget = find(documents, "PodDisruptionBudget", "gateway")["spec"]
        scaled = find(documents, "ScaledObject", "gateway")["spec"]
        assert budget["minAvailable"] == available, name
        assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (least, most), name
        assert budget["minAvailable"] <= scaled["minReplicaCount"]


def test_nameko_pods_expose_their_metrics(every_render):
    for name in METRICS_SERVERS:
        annotations = pod_template(find(every_render.documents, "Deployment", name))[
            "metadata"].get("annotations", {})
        assert annotations.get("prometheus.io/scrape") == "true", name
        assert annotations.get("prometheus.io/port") == "9100", name
        assert annotations.get("prometheus.io/path") == "/metrics", name


def test_ingest_pods_are_sized_for_one_import(every_render):
    nc = main_container(find(every_render.documents, "Deployment", "ingest-nc"))["resources"]
    assert (nc["requests"]["cpu"], nc["requests"]["memory"]) == ("1", "1Gi")
    assert (nc["limits"]["cpu"], nc["limits"]["memory"]) == ("2", "2Gi")


# -- autoscaling -------------------------------------------------------------------

def test_each_ingest_scaledobject_watches_its_states_queue(every_render):
    documents = every_render.documents
    for name, state in INGEST_DEPLOYMENTS.items():
        scaled = find(documents, "ScaledObject", name)["spec"]
        assert scaled["scaleTargetRef"]["name"] == name
        assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (0, 1)
        assert scaled["cooldownPeriod"] == 300
        queues = set()
        for trigger in scaled["triggers"]:
            metadata = trigger["metadata"]
            assert trigger["type"] == "rabbitmq"
            assert (metadata["protocol"], metadata["mode"], metadata["value"]) == (
                "http", "QueueLength", "1")
            queues.add(metadata["queueName"])
        expected = {f"evt-admin-import_requested--ingest_{state}.load_release"}
        if state == "md":
            expected.add("evt-admin-stop_reasons_updated--ingest_md.apply_stop_reasons")
        assert queues == expected, f"{name} watches {queues}"


def test_the_gateway_scales_on_cpu_and_request_rate(every_render):
    triggers = {trigger["type"]: trigger for trigger in find(
        every_render.documents, "ScaledObject", "gateway")["spec"]["triggers"]}
    assert set(triggers) == {"cpu", "prometheus"}
    assert triggers["cpu"]["metricType"] == "Utilization"
    assert triggers["cpu"]["metadata"]["value"] == "70"
    assert "odp_http_requests_total" in triggers["prometheus"]["metadata"]["query"]


# -- what each overlay carries ----------------------------------------------------

def test_dev_runs_its_own_database_and_broker(dev):
    for name in ("postgres", "rabbitmq"):
        statefulset = find(dev, "StatefulSet", name)
        assert find(dev, "Service", name)["spec"]["selector"] == {
            "app.kubernetes.io/name": name}
        assert statefulset["spec"]["volumeClaimTemplates"]
    assert not of_kind(dev, "Ingress")


def test_prod_uses_managed_backing_services_and_an_ingress_with_tls(prod):
    assert not of_kind(prod, "StatefulSet"), "prod runs no database or broker of its own"
    services = {service["metadata"]["name"] for service in of_kind(prod, "Service")}
    assert services == {"gateway", "memcached"}
    (ingress,) = of_kind(prod, "Ingress")
    assert ingress["metadata"]["annotations"].get("cert-manager.io/cluster-issuer")
    spec = ingress["spec"]
    hosts = {rule["host"] for rule in spec["rules"]}
    assert spec["tls"] and all(set(tls["hosts"]) <= hosts and tls["secretName"]
                               for tls in spec["tls"])
    assert hosts <= {host for tls in spec["tls"] for host in tls["hosts"]}, "a host without TLS"
    for rule in spec["rules"]:
        for path in rule["http"]["paths"]:
            assert path["backend"]["service"] == {"name": "gateway", "port": {"name": "http"}}
    for document in platform_workloads(prod):
        for container in containers(document):
            environment = container_environment(container, prod)
            for key in ("DATABASE_URL", "READER_DATABASE_URL", "AMQP_URI"):
                if key in environment:
                    host = environment[key].split("@")[-1].split(":")[0].split("/")[0]
                    assert host.split(".")[0] not in {"postgres", "rabbitmq"}, (
                        f"prod {describe(document)}: {key} names an in-cluster Service")


# -- network policies ----------------------------------------------------------------

@dataclass(frozen=True)
class Peer:
    """One end of a connection: a pod (its labels and its namespace's) or an address."""

    labels: dict = field(default_factory=dict)
    namespace: dict = field(default_factory=lambda: {"kubernetes.io/metadata.name": NAMESPACE})
    ip: str | None = None


def pod(documents: list[dict], name: str) -> Peer:
    return Peer(labels=pod_labels(workload(documents, name)))


def address(ip: str) -> Peer:
    return Peer(labels={}, namespace={}, ip=ip)


def peer_matches(rule: dict, peer: Peer) -> bool:
    if "ipBlock" in rule:
        if peer.ip is None:
            return False
        ip = ipaddress.ip_address(peer.ip)
        block = rule["ipBlock"]
        return ip in ipaddress.ip_network(block["cidr"]) and not any(
            ip in ipaddress.ip_network(cidr) for cidr in block.get("except", []))
    if peer.ip is not None:
        return False
    if "namespaceSelector" in rule:
        if not selects(rule["namespaceSelector"], peer.namespace):
            return False
    elif peer.namespace.get("kubernetes.io/metadata.name") != NAMESPACE:
        return False
    return selects(rule.get("podSelector", {}), peer.labels)


def port_matches(ports: list[dict] | None, port: int, protocol: str) -> bool:
    return not ports or any(entry.get("protocol", "TCP") == protocol
                            and entry.get("port") in (None, port) for entry in ports)


def allowed(documents: list[dict], direction: str, subject: Peer, other: Peer, port: int,
            protocol: str = "TCP") -> bool:
    """Whether the policies let `subject` (a pod of the namespace) send (Egress)
    to or receive (Ingress) from `other` on `port`."""
    key, peers = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    policies = [policy for policy in of_kind(documents, "NetworkPolicy")
                if direction in policy["spec"].get("policyTypes", ["Ingress"])
                and selects(policy["spec"]["podSelector"], subject.labels)]
    if not policies:
        return True
    return any((not rule.get(peers) or any(peer_matches(peer, other) for peer in rule[peers]))
               and port_matches(rule.get("ports"), port, protocol)
               for policy in policies for rule in policy["spec"].get(key) or [])


def connects(documents: list[dict], source: Peer, target: Peer, port: int) -> bool:
    """Both ends' policies allow it (a peer outside the namespace has none here)."""
    inside = target.namespace.get("kubernetes.io/metadata.name") == NAMESPACE and not target.ip
    return (allowed(documents, "Egress", source, target, port)
            and (not inside or allowed(documents, "Ingress", target, source, port)))


def test_everything_starts_denied(every_render):
    policies = of_kind(every_render.documents, "NetworkPolicy")
    deny = [policy for policy in policies if policy["spec"]["podSelector"] == {}
            and set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and not policy["spec"].get("ingress") and not policy["spec"].get("egress")]
    assert len(deny) == 1, "no default deny of both directions"
    stranger = Peer(labels={"app.kubernetes.io/name": "stranger"})
    assert not allowed(every_render.documents, "Egress", stranger, address(PUBLIC_IP), 443)
    assert not allowed(every_render.documents, "Ingress", stranger, stranger, 8000)


def test_every_pod_resolves_names(every_render):
    kube_dns = Peer(labels={"k8s-app": "kube-dns"},
                    namespace={"kubernetes.io/metadata.name": "kube-system"})
    for document in workloads(every_render.documents):
        source = Peer(labels=pod_labels(document))
        for protocol in ("UDP", "TCP"):
            assert allowed(every_render.documents, "Egress", source, kube_dns, 53, protocol), (
                f"{describe(document)} cannot resolve names over {protocol}")


def test_the_platform_reaches_its_backing_services_in_dev(dev):
    postgres, rabbitmq, memcached = (pod(dev, name) for name in ("postgres", "rabbitmq",
                                                                 "memcached"))
    for document in workloads(dev):
        name = document["metadata"]["name"]
        source = pod(dev, name)
        assert connects(dev, source, postgres, 5432) == (name in DATABASE_CLIENTS), name
        assert connects(dev, source, rabbitmq, 5672) == (name in BROKER_CLIENTS), name
        assert connects(dev, source, memcached, 11211) == (name in {"gateway", "stats"}), name
        assert connects(dev, source, rabbitmq, 15672) == (name == "rabbitmq-users"), name
    keda = Peer(labels={"app": "keda-operator"}, namespace={"kubernetes.io/metadata.name": "keda"})
    assert allowed(dev, "Ingress", rabbitmq, keda, 15672)
    assert not allowed(dev, "Ingress", rabbitmq, keda, 5672)


def test_prod_reaches_its_managed_services_by_address(prod):
    policies = {policy["metadata"]["name"]: policy for policy in of_kind(prod, "NetworkPolicy")}
    for name, port, clients in (("postgres-clients", 5432, DATABASE_CLIENTS),
                                ("rabbitmq-clients", 5672, BROKER_CLIENTS)):
        (rule,) = policies[name]["spec"]["egress"]
        (peer,) = rule["to"]
        assert set(peer) == {"ipBlock"}, f"prod's {name} must name the service's addresses"
        inside = str(next(ipaddress.ip_network(peer["ipBlock"]["cidr"]).hosts()))
        for client in clients:
            assert connects(prod, pod(prod, client), address(inside), port), client
        for other in {doc["metadata"]["name"] for doc in workloads(prod)} - clients:
            assert not connects(prod, pod(prod, other), address(inside), port), other


def test_the_gateway_serves_everyone_and_its_metrics_to_monitoring(every_render):
    documents = every_render.documents
    gateway = pod(documents, "gateway")
    controller = Peer(labels={"app.kubernetes.io/name": "ingress-nginx"},
                      namespace={"kubernetes.io/metadata.name": "ingress-nginx"})
    prometheus = Peer(labels={"app.kubernetes.io/name": "prometheus"}, namespace=MONITORING)
    assert allowed(documents, "Ingress", gateway, controller, 8000)
    assert allowed(documents, "Ingress", gateway, address(PUBLIC_IP), 8000)
    assert connects(documents, pod(documents, "stats"), gateway, 8000), "stats warms the cache"
    assert not connects(documents, pod(documents, "admin"), gateway, 8000)
    for name in METRICS_SERVERS:
        target = pod(documents, name)
        assert allowed(documents, "Ingress", target, prometheus, 9100), name
        assert not allowed(documents, "Ingress", target, controller, 9100), name
        assert not allowed(documents, "Ingress", target, pod(documents, "stats"), 9100), name


def test_only_the_services_that_need_the_internet_reach_it(every_render):
    documents = every_render.documents
    ports = (21, 25, 80, 443, 465, 587, 5432, 50000)
    outside = {  # name: the public ports it may reach
        # FTP's passive data connections go to any port the server names.
        **dict.fromkeys(INGEST_DEPLOYMENTS, set(ports)),
        "census": {443},
        "admin": {25, 465, 587},
        NIGHTLY_CRONJOB: {25, 465, 587},
    }
    for document in workloads(documents):
        name = document["metadata"]["name"]
        source = pod(documents, name)
        expected = outside.get(name, set())
        for port in ports:
            assert allowed(documents, "Egress", source, address(PUBLIC_IP), port) == (
                port in expected), f"{name} to a public address, port {port}"
        for ip in PRIVATE_IPS:
            for port in expected:
                assert not allowed(documents, "Egress", source, address(ip), port), (
                    f"{name} reaches the private address {ip}:{port}")
