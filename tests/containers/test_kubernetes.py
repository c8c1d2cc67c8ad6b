"""The local Kubernetes overlay as a smoke test: `podman kube play` runs its pods.

The overlay is rendered by kustomize, as `kubectl apply -k` would; podman runs its
Deployments (a pod per replica) and ConfigMap on a network where Redis and
Elasticsearch (the stand-in images, with the overlay's placeholder passwords) answer
as `redis` and `elasticsearch`, as the overlay expects. Each service's pod must start
with the manifests' security context and answer its probes' endpoints, ready: it found
Redis and Elasticsearch. docs/operations.md ("Containers in CI") lists what this does
not exercise (Services, Ingress, HPA, PDB, NetworkPolicy, the Secret's references).
"""

from __future__ import annotations

import base64
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
PROBE = (
    "import sys, urllib.request as u; "
    "sys.exit(0 if u.urlopen('http://127.0.0.1:8080' + sys.argv[1], timeout=3).status"
    " == 200 else 1)"
)


def _playable(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Deployments and ConfigMaps, as podman 4.3 can run them.

    Two differences, each a podman limitation, not the manifests': a secretKeyRef
    to a Secret in the same file fails ("secret … is not valid JSON"), so the Secret's
    values are given as plain values; and a containerPort is published on the host,
    where four pods cannot all have 8080, so the ports (which only Services use) go.
    """
    [secret] = [o for o in objects if o["kind"] == "Secret"]
    values = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    played = [o for o in objects if o["kind"] in PLAYED]
    for deployment in (o for o in played if o["kind"] == "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            container.pop("ports", None)
            env = []
            for variable in container.get("env", []):
                reference = variable.get("valueFrom", {}).get("secretKeyRef")
                if reference is None:
                    env.append(variable)
                elif reference["key"] in values:
                    env.append({"name": variable["name"], "value": values[reference["key"]]})
            container["env"] = env
    return played


def _answers(container: str, path: str) -> Callable[[], bool]:
    """Whether the service in `container` answers 200 on `path`, asked from inside its pod."""
    return lambda: (
        podman("exec", container, "python", "-c", PROBE, path, check=False).returncode == 0
    )


@pytest.fixture
def rendered(tmp_path: Path) -> Iterator[tuple[Path, list[dict[str, Any]]]]:
    objects = render(OVERLAY)
    [secret] = [o for o in objects if o["kind"] == "Secret"]
    password = base64.b64decode(secret["data"]["elasticsearch-password"]).decode()
    redis_password = base64.b64decode(secret["data"]["redis-password"]).decode()
    played = _playable(objects)
    path = tmp_path / "caravan.yaml"
    path.write_text(yaml.safe_dump_all(played), encoding="utf-8")
    # The overlay's image name for the image built from the Dockerfile.
    [image] = {
        c["image"]
        for o in played
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    podman("network", "create", NETWORK)
    podman("tag", IMAGE, image)
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
        f"ELASTIC_PASSWORD={password}",
        "--env",
        "ES_JAVA_OPTS=-Xms512m -Xmx512m",
        "elasticsearch:9.2.8",
    )
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
