"""The Dockerfile, docker-compose.yml and .env.example, checked without a Docker engine.

The compose file is validated against the Compose Specification's JSON Schema
(tests/data/README.md says where that copy comes from).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jsonschema import Draft7Validator

from tests.conftest import REPO
from tests.deploy.tools import (
    KEYED,
    check_environment,
    check_ingest_memory,
    check_own_keys,
    load_yaml,
)
from tests.test_documentation import _environment_variables

COMPOSE = load_yaml(REPO / "docker-compose.yml")
SERVICES = ("ingest", "ratefeed", "indexer", "query")
LOADERS = ("load-articles", "load-rates")
COMMANDS = {
    **{name: name for name in SERVICES},
    "load-articles": "ingest",
    "load-rates": "ratefeed",
}
ENV_EXAMPLE = (REPO / ".env.example").read_text(encoding="utf-8")
DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
COMPOSE_SPEC = Draft7Validator(
    json.loads((REPO / "tests" / "data" / "compose-spec.json").read_text(encoding="utf-8"))
)


def _env_example_names() -> set[str]:
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE, flags=re.MULTILINE))


def _service(name: str) -> dict[str, Any]:
    service: dict[str, Any] = COMPOSE["services"][name]
    return service


def test_compose_file_follows_the_compose_specification() -> None:
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in COMPOSE_SPEC.iter_errors(COMPOSE)
    ]
    assert errors == []


def test_the_schema_copy_catches_a_mistake() -> None:
    broken = {
        "services": {
            "query": {"image": "caravan", "depends_on": {"redis": {"condition": "service_up"}}}
        }
    }
    assert not COMPOSE_SPEC.is_valid(broken)


@pytest.mark.parametrize("name", SERVICES + LOADERS)
def test_services_start_once_redis_and_elasticsearch_are_healthy(name: str) -> None:
    service = _service(name)
    assert service["depends_on"] == {
        "redis": {"condition": "service_healthy"},
        "elasticsearch": {"condition": "service_healthy"},
    }
    assert service["deploy"]["resources"]["limits"]["memory"]
    assert service["restart"] == ("no" if name in LOADERS else "unless-stopped")
    assert service["command"][0] == COMMANDS[name]


def test_redis_keeps_an_append_only_file_and_wants_a_password() -> None:
    redis = _service("redis")
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--requirepass ${REDIS_PASSWORD:?" in command
    assert redis["healthcheck"]["test"]
    assert "redis-data:/data" in redis["volumes"]


def test_elasticsearch_is_the_official_single_node_with_security_on() -> None:
    es = _service("elasticsearch")
    environment = es["environment"]
    assert es["image"] == "elasticsearch:9.2.8"
    assert environment["discovery.type"] == "single-node"
    assert environment["xpack.security.enabled"] == "true"
    assert environment["ELASTIC_PASSWORD"].startswith("${ELASTIC_PASSWORD:?")
    assert "-Xms" in environment["ES_JAVA_OPTS"]
    assert "-Xmx" in environment["ES_JAVA_OPTS"]
    assert "_cluster/health" in " ".join(es["healthcheck"]["test"])


def test_samples_profile_loads_the_bundled_files_once() -> None:
    for name in LOADERS:
        assert _service(name)["profiles"] == ["samples"]
    assert _service("load-articles")["command"] == ["ingest", "--once"]
    assert _service("load-rates")["command"] == ["ratefeed", "--once"]
    for name, variable in (
        ("load-articles", "CARAVAN_INGEST_SOURCES"),
        ("load-rates", "CARAVAN_RATEFEED_PROVIDERS"),
    ):
        path = _service(name)["environment"][variable]
        # The image copies samples/ to /app/samples.
        assert (REPO / path.removeprefix("/app/")).is_file()
    assert "COPY --chown=10001:10001 samples ./samples" in DOCKERFILE


def test_compose_sets_only_variables_the_services_read_and_not_the_elastic_password() -> None:
    check_environment(_service(name) for name in (*SERVICES, *LOADERS, "keys"))


def test_image_serves_health_on_8080_as_a_non_root_user() -> None:
    assert "CARAVAN_HEALTH_PORT=8080" in DOCKERFILE
    assert "CARAVAN_HEALTH_HOST=0.0.0.0" in DOCKERFILE
    assert "http://127.0.0.1:8080/healthz" in DOCKERFILE.split("HEALTHCHECK", 1)[1]
    assert re.search(r"^USER 10001:10001$", DOCKERFILE, flags=re.MULTILINE)
    assert re.search(r"^STOPSIGNAL SIGTERM$", DOCKERFILE, flags=re.MULTILINE)
    # Both stages on one base, by default a pinned patch release, never a floating tag.
    bases = re.findall(r"^FROM (\S+)", DOCKERFILE, flags=re.MULTILINE)
    assert bases == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    default = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, flags=re.MULTILINE)
    assert default
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", default[1])


def test_image_installs_exactly_the_runtime_lock() -> None:
    assert "--require-hashes --no-deps -r requirements.lock" in DOCKERFILE
    # Caravan itself: no dependency resolution, no isolated (unpinned) build environment.
    assert "--no-deps --no-build-isolation ." in DOCKERFILE


def test_every_setting_is_in_env_example() -> None:
    missing = sorted(_environment_variables() - _env_example_names())
    assert missing == []


def test_every_variable_compose_reads_is_in_env_example() -> None:
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    interpolated = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    assert "ELASTIC_PASSWORD" in interpolated
    assert sorted(interpolated - _env_example_names()) == []


def test_every_variable_of_env_example_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert sorted(v for v in _env_example_names() if f"`{v}`" not in readme) == []


def test_each_service_has_its_own_elasticsearch_key_from_a_volume_of_its_own() -> None:
    check_own_keys(COMPOSE["services"])
    # New volumes take the mount point's owner: the service user may write and read.
    dirs = " ".join(f"/run/keys/{service}" for service in KEYED)
    assert f"install -d -o 10001 -g 10001 -m 0700 {dirs}" in DOCKERFILE


def test_ingest_holds_its_parse_workers_at_their_cap() -> None:
    for name in ("ingest", "load-articles"):
        check_ingest_memory(_service(name)["deploy"]["resources"]["limits"]["memory"])
