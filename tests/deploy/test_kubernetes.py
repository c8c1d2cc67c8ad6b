"""deploy/kubernetes, rendered by kustomize and validated against Kubernetes' schemas.

The schemas are those kubernetes-validate ships, strict (unknown fields are errors),
for the oldest and the newest Kubernetes minor we mean to support.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.tools import DEPLOY, check_ingest_memory, render, unknown_metrics
from tests.test_documentation import _environment_variables

KUBERNETES = DEPLOY / "kubernetes"
VERSIONS = ("1.31", "1.37")
SERVICES = ("ingest", "ratefeed", "indexer", "query")
WORKERS = ("ingest", "ratefeed", "indexer")

Objects = list[dict[str, Any]]


@pytest.fixture(scope="module")
def local() -> Objects:
    return render(KUBERNETES / "overlays" / "local")


def _one(objects: Objects, kind: str, name: str) -> dict[str, Any]:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def _deployments(objects: Objects) -> dict[str, dict[str, Any]]:
    return {
        o["metadata"]["name"].removeprefix("caravan-"): o
        for o in objects
        if o["kind"] == "Deployment"
    }


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    [container] = containers
    return container


def _settings(objects: Objects) -> dict[str, str]:
    [config] = [o for o in objects if o["kind"] == "ConfigMap"]
    data: dict[str, str] = config["data"]
    return data


@pytest.mark.parametrize("overlay", ["base", "overlays/local"])
def test_every_rendered_object_is_valid_kubernetes(overlay: str) -> None:
    objects = render(KUBERNETES / overlay)
    kinds = {o["kind"] for o in objects}
    assert {
        "Deployment",
        "Service",
        "Ingress",
        "ConfigMap",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    } <= kinds
    for obj in objects:
        for version in VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_the_validation_catches_a_misspelt_field(local: Objects) -> None:
    deployment = copy.deepcopy(_deployments(local)["query"])
    _container(deployment)["readinesProbe"] = _container(deployment).pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


def _with_component(tmp_path: Path, component: str) -> Objects:
    overlay = tmp_path / "kustomization.yaml"
    overlay.write_text(
        yaml.safe_dump(
            {
                "resources": [os.path.relpath(KUBERNETES / "base", tmp_path)],
                "components": [os.path.relpath(KUBERNETES / "components" / component, tmp_path)],
            }
        )
    )
    return render(tmp_path)


def test_lag_component_scales_the_indexer_on_an_exported_metric(tmp_path: Path) -> None:
    objects = _with_component(tmp_path, "scale-on-lag")
    autoscaler = _one(objects, "HorizontalPodAutoscaler", "caravan-indexer")
    kubernetes_validate.validate(autoscaler, VERSIONS[-1], strict=True)
    [metric] = autoscaler["spec"]["metrics"]
    assert metric["type"] == "External"
    assert unknown_metrics([metric["external"]["metric"]["name"]]) == set()


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector's verdict on `labels` (the forms the policies use)."""
    matched = all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        matched &= labels.get(expression["key"]) in expression["values"]
    return matched


def test_network_policies_let_each_service_reach_what_it_needs_and_no_more(
    tmp_path: Path,
) -> None:
    # Without them any pod could call the query service and name itself in
    # X-Forwarded-For, which it trusts one hop of (helper-113).
    objects = _with_component(tmp_path, "network-policy")
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    for policy in policies:
        kubernetes_validate.validate(policy, VERSIONS[-1], strict=True)
    pods = {
        name: d["spec"]["template"]["metadata"]["labels"]
        for name, d in _deployments(objects).items()
    }

    def allowed(name: str, direction: str) -> set[int]:
        ports = set()
        for policy in policies:
            if _selects(policy["spec"]["podSelector"], pods[name]):
                for rule in policy["spec"].get(direction, []):
                    ports |= {port["port"] for port in rule["ports"]}
        return ports

    for name in SERVICES:  # denied both ways but for what follows
        assert any(
            _selects(p["spec"]["podSelector"], pods[name])
            and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and "ingress" not in p["spec"]
            and "egress" not in p["spec"]
            for p in policies
        )
        assert allowed(name, "ingress") == {8080}  # Prometheus; the ingress too for query
        assert {53, 6379} <= allowed(name, "egress")
    assert allowed("indexer", "egress") == allowed("query", "egress") == {53, 6379, 9200}
    assert allowed("ingest", "egress") == allowed("ratefeed", "egress") == {53, 6379, 80, 443}


def test_each_deployment_runs_its_service(local: Objects) -> None:
    deployments = _deployments(local)
    assert set(deployments) == set(SERVICES)
    for service, deployment in deployments.items():
        assert _container(deployment)["args"] == [service]
        assert _container(deployment)["image"] == "caravan:local"


def test_every_pod_is_probed_limited_and_locked_down(local: Objects) -> None:
    dockerfile = (DEPLOY.parent / "Dockerfile").read_text(encoding="utf-8")
    grace = float(_settings(local)["CARAVAN_SHUTDOWN_GRACE"])
    for deployment in _deployments(local).values():
        pod = deployment["spec"]["template"]["spec"]
        container = _container(deployment)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert set(mounts) == {"/tmp", "/run/secrets/caravan"}
        assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
        assert mounts["/run/secrets/caravan"]["readOnly"] is True
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) == {"cpu", "memory"}
        [port] = container["ports"]
        assert port == {"name": "http", "containerPort": 8080}
        assert f"CARAVAN_HEALTH_PORT={port['containerPort']}" in dockerfile
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        waits = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
        before = float(waits[1]) if waits else 0.0
        assert pod["terminationGracePeriodSeconds"] > before + grace


def test_every_service_spreads_its_replicas_over_nodes(local: Objects) -> None:
    # Together on one node, one node's loss took a whole service (helper-113's linter).
    for deployment in _deployments(local).values():
        [spread] = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert spread["topologyKey"] == "kubernetes.io/hostname"
        assert spread["whenUnsatisfiable"] == "ScheduleAnyway"  # a one-node cluster still fits
        assert spread["matchLabelKeys"] == ["app.kubernetes.io/name"]
        assert "app.kubernetes.io/name" in deployment["spec"]["template"]["metadata"]["labels"]


def test_the_query_service_leaves_its_service_before_it_stops_taking_connections(
    local: Objects,
) -> None:
    # uvicorn closes its socket on SIGTERM, while the ingress still sends to the pod.
    query = _deployments(local)["query"]
    assert _container(query)["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "5"]}}}


def test_settings_and_credentials_resolve(local: Objects) -> None:
    names = {(o["kind"], o["metadata"]["name"]) for o in local}
    known = _environment_variables()
    assert set(_settings(local)) <= known
    for deployment in _deployments(local).values():
        container = _container(deployment)
        [source] = container["envFrom"]
        assert ("ConfigMap", source["configMapRef"]["name"]) in names
        # Any setting may come from a file instead: NAME_FILE (shared/settings.py).
        readable = known | {f"{name}_FILE" for name in known}
        assert {variable["name"] for variable in container["env"]} <= readable


def test_each_service_reads_its_own_secret_from_files_never_the_environment(
    local: Objects,
) -> None:
    secrets = {o["metadata"]["name"]: o for o in local if o["kind"] == "Secret"}
    keyed = {"indexer", "query"}  # the only services that talk to Elasticsearch
    for service, deployment in _deployments(local).items():
        pod = deployment["spec"]["template"]["spec"]
        container = _container(deployment)
        env = {v["name"]: v for v in container["env"]}
        assert not any("secretKeyRef" in v.get("valueFrom", {}) for v in env.values())
        [volume] = [v for v in pod["volumes"] if "secret" in v]
        secret = secrets[volume["secret"]["secretName"]]
        assert secret["metadata"]["name"].startswith(f"caravan-{service}-")  # kustomize's hash
        assert volume["secret"]["defaultMode"] == 0o440
        assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
        files = {f"/run/secrets/caravan/{key}" for key in secret["data"]}
        expected = {"REDIS_PASSWORD_FILE": "redis-password"}
        if service in keyed:
            expected["ELASTICSEARCH_API_KEY_FILE"] = "elasticsearch-api-key"
        for variable, key in expected.items():
            assert env[variable]["value"] == f"/run/secrets/caravan/{key}"
            assert env[variable]["value"] in files
        assert ("ELASTICSEARCH_API_KEY_FILE" in env) == (service in keyed)
        assert "elasticsearch-api-key" in secret["data"] or service not in keyed


def test_indexer_consumers_are_named_after_their_pod(local: Objects) -> None:
    env = {v["name"]: v for v in _container(_deployments(local)["indexer"])["env"]}
    consumer = env["CARAVAN_INDEXER_CONSUMER"]["valueFrom"]
    assert consumer == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_indexer_is_autoscaled(local: Objects) -> None:
    autoscaler = _one(local, "HorizontalPodAutoscaler", "caravan-indexer")
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == "caravan-indexer"
    assert autoscaler["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_every_service_has_a_disruption_budget_over_its_pods(local: Objects) -> None:
    for service, deployment in _deployments(local).items():
        budget = _one(local, "PodDisruptionBudget", f"caravan-{service}")
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        assert budget["spec"]["maxUnavailable"] == 1


def test_query_is_reachable_through_its_service_and_ingress(local: Objects) -> None:
    query = _deployments(local)["query"]
    service = _one(local, "Service", "caravan-query")
    assert (
        service["spec"]["selector"].items()
        <= query["spec"]["template"]["metadata"]["labels"].items()
    )
    [port] = service["spec"]["ports"]
    assert port["targetPort"] == _container(query)["ports"][0]["name"]
    ingress = _one(local, "Ingress", "caravan-query")
    for path in ingress["spec"]["rules"][0]["http"]["paths"]:
        assert path["backend"]["service"] == {
            "name": "caravan-query",
            "port": {"name": port["name"]},
        }


def _routed(ingress: dict[str, Any], request_path: str) -> bool:
    """Whether an Ingress sends `request_path` anywhere, by Kubernetes' matching rules:
    Exact is the whole path; Prefix matches whole `/`-separated elements."""
    elements = [e for e in request_path.split("/") if e]
    for path in ingress["spec"]["rules"][0]["http"]["paths"]:
        if path["pathType"] == "Exact" and path["path"] == request_path:
            return True
        prefix = [e for e in path["path"].split("/") if e]
        if path["pathType"] == "Prefix" and elements[: len(prefix)] == prefix:
            return True
    return False


@pytest.mark.parametrize("overlay", ["base", "overlays/local"])
def test_the_ingress_routes_the_public_paths_and_not_metrics_or_probes(overlay: str) -> None:
    ingress = _one(render(KUBERNETES / overlay), "Ingress", "caravan-query")
    public = [
        "/",
        "/articles/0123456789abcdef0123456789abcdef",
        "/api/search",
        "/api/quotes/latest",
        "/api/quotes/stream",
        "/api/convert",
        "/static/style.css",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/openapi.json",
    ]
    internal = [
        "/metrics",
        "/metrics/",
        "/metrics/x",
        "/healthz",
        "/readyz",
        "/apix",
        "/openapi.json/x",
    ]
    assert [p for p in public if not _routed(ingress, p)] == []
    assert [p for p in internal if _routed(ingress, p)] == []


def test_the_query_rate_limit_trusts_the_ingress_controller_hop(local: Objects) -> None:
    assert _settings(local)["CARAVAN_QUERY_TRUSTED_PROXIES"] == "1"


def test_every_service_invites_prometheus_to_scrape_it(local: Objects) -> None:
    # The query service's too: its shedding and live-ticker refusals were unseen.
    for service in SERVICES:
        annotations = _deployments(local)[service]["spec"]["template"]["metadata"]["annotations"]
        assert annotations == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": "8080",
            "prometheus.io/path": "/metrics",
        }


def test_ingest_holds_its_parse_workers_at_their_cap(local: Objects) -> None:
    check_ingest_memory(_container(_deployments(local)["ingest"])["resources"]["limits"]["memory"])
