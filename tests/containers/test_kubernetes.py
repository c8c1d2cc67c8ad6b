"""The local Kubernetes overlay as a smoke test: `podman kube play` runs its pods.

The overlay is rendered by kustomize, as `kubectl apply -k` would; podman runs its
Deployments (a pod per replica) and ConfigMap on a network where Redis and
Elasticsearch (the stand-in images) answer as `redis` and `elasticsearch`, as the
overlay expects. Each service's Secret reaches it as files, as the manifests mount
it; the indexer's and the query service's hold real API keys of their own, made by
`caravan keys create` as an operator would. Each service's pod must start with the
manifests' security context and answer its probes' endpoints, ready: it found Redis
and Elasticsearch, and the two keyed services were let in with their own keys.
docs/operations.md ("Containers in CI") lists what this does not exercise (Services,
Ingress, HPA, PDB, NetworkPolicy).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.containers.podman import IMAGE, inspect, podman
from tests.deploy.tools import render
from tests.waiting import wait_for

pytestmark = pytest.mark.containers

OVERLAY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "overlays" / "local"
NETWORK = "caravan-kube-test"
# What podman 4.3 runs of a rendering; the rest is left out (see the module docstring).
PLAYED = ("Deployment", "ConfigMap")
# The image's user (Dockerfile), which the manifests' securityContext runs as.
USER = 10001
# Only the keys step (the operator's) knows it; no service is given it.
ELASTIC_PASSWORD = "kube-test-bootstrap"
PROBE = (
    "import sys, urllib.request as u; "
    "sys.exit(0 if u.urlopen('http://127.0.0.1:8080' + sys.argv[1], timeout=3).status"
    " == 200 else 1)"
)


def _playable(objects: list[dict[str, Any]], secrets: Path) -> list[dict[str, Any]]:
    """The Deployments and ConfigMaps, as podman 4.3 can run them.

    Two differences, each a podman limitation, not the manifests': it mounts only
    secrets of its own, so each Secret volume becomes a folder holding the Secret's
    files (owned by the pod's user, as fsGroup would make them readable); and a
    containerPort is published on the host, where four pods cannot all have 8080,
    so the ports (which only Services use) go.
    """
    data = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "Secret"}
    played = [o for o in objects if o["kind"] in PLAYED]
    for deployment in (o for o in played if o["kind"] == "Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        for container in spec["containers"]:
            container.pop("ports", None)
        for volume in spec["volumes"]:
            if "secret" not in volume:
                continue
            folder = secrets / volume["secret"]["secretName"]
            folder.mkdir()
            for key, value in data[volume.pop("secret")["secretName"]].items():
                (folder / key).write_bytes(base64.b64decode(value))
                os.chown(folder / key, USER, USER)
                (folder / key).chmod(0o400)
            volume["hostPath"] = {"path": str(folder), "type": "Directory"}
    return played


def _with_real_keys(objects: list[dict[str, Any]], keys: Path) -> None:
    """The keyed services' Secrets with the keys `caravan keys create` made in `keys`."""
    for secret in (o for o in objects if o["kind"] == "Secret"):
        service = secret["metadata"]["name"].removeprefix("caravan-").rsplit("-", 1)[0]
        if "elasticsearch-api-key" in secret["data"]:
            key = (keys / service / f"{service}.api-key").read_bytes().strip()
            secret["data"]["elasticsearch-api-key"] = base64.b64encode(key).decode()


def _make_keys(keys: Path) -> bool:
    """`caravan keys create` in the image, on the pods' network; whether it succeeded
    (Elasticsearch may still be starting)."""
    made = podman(
        "run",
        "--rm",
        "--network",
        NETWORK,
        "--volume",
        f"{keys}:/keys",
        "--env",
        "ELASTICSEARCH_URL=http://elasticsearch:9200",
        "--env",
        "ELASTICSEARCH_USERNAME=elastic",
        "--env",
        f"ELASTICSEARCH_PASSWORD={ELASTIC_PASSWORD}",
        IMAGE,
        "keys",
        "create",
        "--out",
        "/keys/{service}",
        "--if-missing",
        "--service",
        "indexer",
        "--service",
        "query",
        check=False,
    )
    return made.returncode == 0


def _answers(container: str, path: str) -> Callable[[], bool]:
    """Whether the service in `container` answers 200 on `path`, asked from inside its pod."""
    return lambda: (
        podman("exec", container, "python", "-c", PROBE, path, check=False).returncode == 0
    )


@pytest.fixture
def rendered(tmp_path: Path) -> Iterator[tuple[Path, list[dict[str, Any]]]]:
    objects = render(OVERLAY)
    [redis_password] = {
        base64.b64decode(o["data"]["redis-password"]).decode()
        for o in objects
        if o["kind"] == "Secret"
    }
    podman("network", "create", NETWORK)
    podman(
        "run",
        "-d",
        "--name",
        f"{NETWORK}-redis",
        "--network",
        NETWORK,
        "--network-alias",
        "redis",
        "redis:7.4-bookworm",
        "redis-server",
        "--requirepass",
        redis_password,
    )
    podman(
        "run",
        "-d",
        "--name",
        f"{NETWORK}-es",
        "--network",
        NETWORK,
        "--network-alias",
        "elasticsearch",
        "--env",
        "discovery.type=single-node",
        "--env",
        "xpack.security.enabled=true",
        "--env",
        "xpack.security.http.ssl.enabled=false",
        "--env",
        f"ELASTIC_PASSWORD={ELASTIC_PASSWORD}",
        "--env",
        "ES_JAVA_OPTS=-Xms512m -Xmx512m",
        "elasticsearch:9.2.8",
    )
    # The operator's step: each keyed service's own key, made with the bootstrap user.
    keys = tmp_path / "keys"
    keys.mkdir()
    os.chown(keys, USER, USER)
    wait_for(lambda: _make_keys(keys), 180, "caravan keys create to succeed")
    _with_real_keys(objects, keys)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    played = _playable(objects, secrets)
    path = tmp_path / "caravan.yaml"
    path.write_text(yaml.safe_dump_all(played), encoding="utf-8")
    # The overlay's image name for the image built from the Dockerfile.
    [image] = {
        c["image"]
        for o in played
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    podman("tag", IMAGE, image)
    try:
        yield path, played
    finally:
        podman("kube", "down", str(path), check=False)
        podman("rm", "-f", f"{NETWORK}-redis", f"{NETWORK}-es", check=False)
        podman("network", "rm", "-f", NETWORK, check=False)
        podman("rmi", image, check=False)


def test_each_services_pod_starts_and_answers_its_probes_ready(
    rendered: tuple[Path, list[dict[str, Any]]],
) -> None:
    path, played = rendered
    podman("kube", "play", "--network", NETWORK, str(path))
    deployments = [o for o in played if o["kind"] == "Deployment"]
    assert len(deployments) == 4
    for deployment in deployments:
        spec = deployment["spec"]["template"]["spec"]
        [container] = spec["containers"]
        probes = {
            container["livenessProbe"]["httpGet"]["path"],
            container["readinessProbe"]["httpGet"]["path"],
        }
        name = f"{deployment['metadata']['name']}-pod-0-{container['name']}"
        for probe in sorted(probes):
            wait_for(_answers(name, probe), 180, f"{name} to answer {probe}")
        state = inspect("container", name)
        # The manifests' security context, as the runtime applied it.
        assert state["HostConfig"]["ReadonlyRootfs"]
        assert state["Config"]["User"].split(":")[0] == "10001"
