"""The project's image, checked as a platform team's admission policy would.

Built by deploy/local/containers.sh from the Dockerfile users get (on a local stand-in
of its python base). Each service runs from it against the test Redis and
Elasticsearch (host network: they listen on loopback), and its own HEALTHCHECK is run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REALDATA, Namespace, _require
from tests.containers.podman import IMAGE, inspect, podman
from tests.waiting import wait_for

pytestmark = pytest.mark.containers

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Docker's --read-only semantics (podman would add tmpfs on /tmp, /run, /var/tmp by
# itself): a writable /tmp only, as the Dockerfile, compose files and manifests give.
READ_ONLY = ["--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp"]


def test_runs_as_10001_and_reports_its_size() -> None:
    config = inspect("image", IMAGE)["Config"]
    assert config["User"] == "10001:10001"
    assert podman("run", "--rm", "--entrypoint", "id", IMAGE).stdout.startswith(b"uid=10001")
    size = inspect("image", IMAGE)["Size"]
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "image.json").write_text(json.dumps({"image": IMAGE, "bytes": size}))


def test_no_compilers_pip_caches_or_build_leftovers_inside() -> None:
    script = (
        "for tool in gcc cc c++ make; do command -v $tool && exit 1; done; "
        "for dir in /root/.cache/pip /app/.cache /wheels /src; do "
        "[ -e $dir ] && echo $dir && exit 1; done; exit 0"
    )
    done = podman("run", "--rm", "--entrypoint", "sh", IMAGE, "-c", script, check=False)
    assert done.returncode == 0, done.stdout.decode()


def test_help_and_extract_work_on_a_read_only_root() -> None:
    assert b"caravan" in podman("run", "--rm", *READ_ONLY, IMAGE, "--help").stdout
    page = (REALDATA / "article-lsm-lv.html").read_bytes()
    done = podman("run", "--rm", "-i", *READ_ONLY, IMAGE, "extract", "-", stdin=page)
    record = json.loads(done.stdout)
    assert record["title"] == "Norvēģijā pēc zemes nogruvuma pieci bojāgājušie"
    assert record["path"].startswith("trafilatura")


@pytest.mark.parametrize("service", ["query", "indexer", "ingest", "ratefeed"])
def test_each_services_healthcheck_passes(service: str, namespace: Namespace) -> None:
    # Its own HEALTHCHECK (the Dockerfile's, on 8080), run as the engine would run it.
    name = f"caravan-health-{service}-{namespace.stream_prefix.strip(':')}"
    env = {
        "REDIS_URL": _require("REDIS_URL"),
        "ELASTICSEARCH_URL": _require("ELASTICSEARCH_URL"),
        "CARAVAN_STREAM_PREFIX": namespace.stream_prefix,
        "CARAVAN_INDEX_PREFIX": namespace.index_prefix,
        # The host's loopback is the container's: nothing is fetched from outside.
        "CARAVAN_INGEST_SOURCES": "/app/samples/sources.toml",
        "CARAVAN_RATEFEED_PROVIDERS": "/app/samples/rates.toml",
    }
    flags = [flag for key, value in env.items() for flag in ("--env", f"{key}={value}")]
    podman("run", "-d", "--name", name, "--network", "host", *READ_ONLY, *flags, IMAGE, service)
    try:
        assert "/healthz" in " ".join(inspect("image", IMAGE)["Healthcheck"]["Test"])
        wait_for(
            lambda: podman("healthcheck", "run", name, check=False).returncode == 0,
            90,
            f"{service}'s healthcheck to pass",
        )
        assert inspect("container", name)["State"]["Running"]
    finally:
        podman("rm", "-f", "-t", "5", name, check=False)
