"""What the deployment tests share: the offline validators and the metric names.

kustomize and promtool are installed into the venv's bin by deploy/local/provision.sh.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.settings import IngestSettings
from tests.conftest import REPO
from tests.test_documentation import _environment_variables

DEPLOY = REPO / "deploy"

_DEFINITION = re.compile(r'\b(?:Counter|Gauge|Histogram|Summary)\(\s*"(caravan_\w+)"')
_REFERENCE = re.compile(r"\bcaravan_\w+")
# What prometheus_client adds to a metric's name in the exposition.
_SUFFIXES = ("", "_total", "_bucket", "_sum", "_count")


def run_tool(name: str, *args: str | Path) -> str:
    path = REPO / ".venv" / "bin" / name
    if not path.exists():
        pytest.fail(f"{name} is missing: run deploy/local/provision.sh")
    result = subprocess.run([path, *map(str, args)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{name} {args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects `kustomize build` makes of a kustomization directory."""
    return [doc for doc in yaml.safe_load_all(run_tool("kustomize", "build", directory)) if doc]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def defined_metrics() -> set[str]:
    """Every series name the services can expose, from their metric definitions."""
    names = set()
    for source in [*REPO.glob("services/**/*.py"), *REPO.glob("shared/**/*.py")]:
        for name in _DEFINITION.findall(source.read_text(encoding="utf-8")):
            names |= {name + suffix for suffix in _SUFFIXES}
    return names


def unknown_metrics(expressions: list[str]) -> set[str]:
    used = {name for expr in expressions for name in _REFERENCE.findall(expr)}
    return used - defined_metrics()


# The services that talk to Elasticsearch, each with an API key of its own (services/keys.py).
KEYED = ("indexer", "query")
_CREDENTIALS = ("ELASTICSEARCH_USERNAME", "ELASTICSEARCH_PASSWORD", "ELASTICSEARCH_API_KEY")


def check_own_keys(services: dict[str, dict[str, Any]]) -> None:
    """Each keyed service reads its own key from a volume only it mounts; nothing else
    holds an Elasticsearch credential but the `keys` one-off, the only one given the
    `elastic` password, which makes each key once."""
    keys = services["keys"]
    assert keys["restart"] == "no"
    assert keys["command"][:5] == ["keys", "create", "--out", "/run/keys/{service}", "--if-missing"]
    assert keys["environment"]["ELASTICSEARCH_USERNAME"] == "elastic"
    assert keys["environment"]["ELASTICSEARCH_PASSWORD"].startswith("${ELASTIC_PASSWORD:?")
    assert sorted(keys["volumes"]) == [f"{s}-key:/run/keys/{s}" for s in KEYED]
    for name, service in services.items():
        if name == "keys" or not service.get("image", "").startswith("${CARAVAN_IMAGE"):
            continue
        environment = service["environment"]
        assert not set(_CREDENTIALS) & set(environment), name
        if name in KEYED:
            assert environment["ELASTICSEARCH_API_KEY_FILE"] == f"/run/keys/{name}/{name}.api-key"
            assert service["volumes"] == [f"{name}-key:/run/keys/{name}:ro"]
        else:
            assert "ELASTICSEARCH_API_KEY_FILE" not in environment, name
            assert not any("-key:" in volume for volume in service.get("volumes", [])), name


def check_environment(services: Iterable[dict[str, Any]]) -> None:
    """Each of Caravan's compose services sets only variables Caravan reads, and
    blanks the `elastic` password that `.env` would give it (only `keys` needs it,
    and gets it as ELASTICSEARCH_PASSWORD)."""
    known = _environment_variables()
    for service in services:
        environment = dict(service["environment"])
        assert environment.pop("ELASTIC_PASSWORD") == ""
        assert set(environment) <= known


# What ingest's own process takes beside its parse workers (bench/README.md: 280-300 MiB
# for the process and two workers on the bench's pages).
SERVICE_MIB = 256
# Compose's units are binary (1G is 1 GiB), as Kubernetes' Gi and Mi are.
_MIB = {"G": 1024, "Gi": 1024, "M": 1, "Mi": 1}


def check_ingest_memory(limit: str) -> None:
    """An ingest container's memory limit (compose's 1G, Kubernetes' 1Gi) holds the
    service and every parse worker at its cap: past a worker's cap one page fails,
    past the container's the whole replica is killed."""
    number, unit = re.fullmatch(r"(\d+)([GM]i?)", limit).groups()  # type: ignore[union-attr]
    settings = IngestSettings()
    needed = SERVICE_MIB + settings.parse_workers * settings.parse_memory_mb
    assert int(number) * _MIB[unit] >= needed, f"{limit} < {needed} MiB"
