"""The lock files: complete for pyproject.toml, hashed, and one set of versions.

A fresh clone installs requirements-dev.lock (deploy/local/provision.sh) and the image
requirements.lock (Dockerfile); both come from `make lock` (deploy/local/lock.sh).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$", re.MULTILINE)


def _locked(name: str) -> dict[str, Version]:
    text = (REPO / name).read_text(encoding="utf-8")
    return {canonicalize_name(package): Version(version) for package, version in PIN.findall(text)}


def _unsatisfied(requirements: list[str], locked: dict[str, Version]) -> list[str]:
    missing = []
    for requirement in map(Requirement, requirements):
        version = locked.get(canonicalize_name(requirement.name))
        if version is None or version not in requirement.specifier:
            missing.append(str(requirement))
    return missing


def test_runtime_lock_satisfies_every_runtime_dependency() -> None:
    assert _unsatisfied(PROJECT["dependencies"], _locked("requirements.lock")) == []


def test_dev_lock_satisfies_every_dependency() -> None:
    everything = PROJECT["dependencies"] + PROJECT["optional-dependencies"]["dev"]
    assert _unsatisfied(everything, _locked("requirements-dev.lock")) == []


def test_dev_lock_runs_the_versions_the_image_runs() -> None:
    runtime, dev = _locked("requirements.lock"), _locked("requirements-dev.lock")
    assert {name: dev.get(name) for name in runtime} == runtime


def test_every_locked_package_is_hashed() -> None:
    for name in ("requirements.lock", "requirements-dev.lock"):
        text = (REPO / name).read_text(encoding="utf-8")
        blocks = re.split(r"\n(?=[A-Za-z0-9])", text)[1:]
        assert blocks
        unhashed = [block.split()[0] for block in blocks if "--hash=sha256:" not in block]
        assert unhashed == []
        # Versions and hashes only: no registry is named.
        assert "--index-url" not in text
        assert "://" not in text
