"""What the deployment tests share: the offline validators and the metric names.

kustomize and promtool are installed into the venv's bin by deploy/local/provision.sh.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

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
