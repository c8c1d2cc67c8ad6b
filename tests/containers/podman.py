"""The podman command line, as the container tests drive it.

deploy/local/containers.sh (run by `make test`) installs podman, builds the stand-ins
of the official images and the project's image; CONTAINERS_CONF names the
configuration it needs on these machines (runc, lowered ulimits).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import pytest

from tests.conftest import REPO

IMAGE = "caravan:latest"
CONFIG = REPO / "deploy" / "containers" / "containers.conf"


def environment() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONFIG)}


def podman(
    *args: str, stdin: bytes | None = None, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[bytes]:
    if shutil.which("podman") is None:
        pytest.fail("no podman: run the suite with `make test` (deploy/local/containers.sh)")
    done = subprocess.run(
        ["podman", *args],
        input=stdin,
        capture_output=True,
        env=environment(),
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        pytest.fail(
            f"podman {' '.join(args)} exited {done.returncode}:\n"
            f"{done.stderr.decode(errors='replace')[-3000:]}"
        )
    return done


def inspect(kind: str, name: str) -> dict[str, Any]:
    [found] = json.loads(podman(kind, "inspect", name).stdout)
    return dict(found)
