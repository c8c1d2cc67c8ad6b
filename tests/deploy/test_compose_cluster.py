"""docker-compose.cluster.yml, checked without a Docker engine: the clustered topology's
invariants (docs/operations.md, Scaling) hold between its services."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from tests.conftest import REPO
from tests.deploy.test_containers import COMPOSE_SPEC, _env_example_names
from tests.deploy.tools import check_environment, check_ingest_memory, check_own_keys, load_yaml

PATH = REPO / "docker-compose.cluster.yml"
COMPOSE = load_yaml(PATH)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
CARAVAN = {
    name: s
    for name, s in SERVICES.items()
    if s["image"].startswith("${CARAVAN_IMAGE") and s["restart"] != "no"
}
ES_NODES = {
    name: s
    for name, s in SERVICES.items()
    if s["image"].startswith("elasticsearch:") and "node.name" in s.get("environment", {})
}
REDIS_NODES = {
    name: s
    for name, s in SERVICES.items()
    if "--cluster-enabled yes" in " ".join(s.get("command", []))
}
REPLICAS = {"ingest": 2, "ratefeed": 2, "indexer": 2, "query": 1}


def _hosts(urls: str) -> set[str]:
    return {urlsplit(url.strip()).hostname or "" for url in urls.split(",")}


def _csv(value: str) -> set[str]:
    return {part.strip() for part in value.split(",")}


def test_follows_the_compose_specification() -> None:
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in COMPOSE_SPEC.iter_errors(COMPOSE)
    ]
    assert errors == []


def test_the_topology_is_three_elasticsearch_nodes_and_six_redis_nodes() -> None:
    assert set(CARAVAN) == set(REPLICAS)
    assert len(ES_NODES) == 3
    assert len(REDIS_NODES) == 6
    # The same image as the single-node file.
    single = load_yaml(REPO / "docker-compose.yml")["services"]
    assert {s["image"] for s in ES_NODES.values()} == {single["elasticsearch"]["image"]}
    assert {s["image"] for s in REDIS_NODES.values()} == {single["redis"]["image"]}


def test_every_elasticsearch_node_is_a_seed_and_an_initial_master() -> None:
    names = {s["environment"]["node.name"] for s in ES_NODES.values()}
    assert names == set(ES_NODES)  # node names are the service (host) names
    for name, node in ES_NODES.items():
        environment = node["environment"]
        assert _csv(environment["discovery.seed_hosts"]) == names
        assert _csv(environment["cluster.initial_master_nodes"]) == names
        assert environment["cluster.name"] == "caravan"
        assert "discovery.type" not in environment
        # Security on needs TLS between the nodes; each presents its own certificate.
        assert environment["xpack.security.enabled"] == "true"
        assert environment["xpack.security.transport.ssl.enabled"] == "true"
        assert environment["xpack.security.transport.ssl.certificate"] == f"certs/{name}/{name}.crt"
        assert f"{name}-data:/usr/share/elasticsearch/data" in node["volumes"]
        assert "es-certs:/usr/share/elasticsearch/config/certs:ro" in node["volumes"]
        assert "_cluster/health" in " ".join(node["healthcheck"]["test"])


def test_the_certificates_name_every_node() -> None:
    script = " ".join(SERVICES["es-certs"]["command"])
    assert all(f"name: {name}" in script for name in ES_NODES)
    assert "es-certs:/usr/share/elasticsearch/config/certs" in SERVICES["es-certs"]["volumes"]


def test_redis_nodes_are_clustered_persistent_and_password_protected() -> None:
    for name, node in REDIS_NODES.items():
        command = " ".join(node["command"])
        assert node["hostname"] == name  # what --cluster-announce-hostname announces
        assert '--cluster-announce-hostname "$$HOSTNAME"' in command
        assert "--appendonly yes" in command
        assert "--requirepass" in command
        assert "--masterauth" in command
        assert node["environment"]["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
        assert f"{name}-data:/data" in node["volumes"]
        assert node["healthcheck"]["test"]


def test_the_init_creates_three_primaries_with_a_replica_each_once() -> None:
    init = SERVICES["redis-cluster-init"]
    script = init["command"][-1]
    assert init["restart"] == "no"
    assert re.search(r"for node in (redis-\d )+", script)
    listed = set(re.findall(r"redis-\d", script.split("for node in", 1)[1].split(";")[0]))
    assert listed == set(REDIS_NODES)
    assert len(REDIS_NODES) == 3 * 2  # primaries × (1 + --cluster-replicas)
    assert "--cluster-replicas 1" in script
    assert "--cluster-yes" in script
    # Idempotent: a formed cluster (every slot assigned) is left alone.
    check = script.index("cluster_slots_assigned:16384")
    assert check < script.index("--cluster create")
    assert "exit 0" in script[check : script.index("--cluster create")]
    assert init["depends_on"] == {n: {"condition": "service_healthy"} for n in REDIS_NODES}


def test_every_service_uses_the_redis_cluster_with_one_hash_tag() -> None:
    for name, service in CARAVAN.items():
        environment = service["environment"]
        assert environment["REDIS_CLUSTER"] == "true", name
        assert re.fullmatch(r"\{[^{}]+\}:", environment["CARAVAN_STREAM_PREFIX"]), name
        seeds = _hosts(environment["REDIS_URL"])
        assert len(seeds) > 1, name
        assert seeds <= set(REDIS_NODES), name
        assert _hosts(environment["ELASTICSEARCH_URL"]) == set(ES_NODES), name


def test_indices_keep_a_replica_and_writes_wait_for_it() -> None:
    for service in CARAVAN.values():
        environment = service["environment"]
        replicas = int(environment["CARAVAN_INDEX_REPLICAS"])
        shards = int(environment["CARAVAN_INDEX_SHARDS"])
        assert replicas >= 1
        assert int(environment["CARAVAN_INDEX_WAIT_FOR_ACTIVE_SHARDS"]) == replicas + 1
        # Every copy fits on a node of its own.
        assert replicas + 1 <= len(ES_NODES)
        assert shards >= 1


def test_services_are_scaled_out() -> None:
    for name, count in REPLICAS.items():
        assert CARAVAN[name]["deploy"].get("replicas", 1) == count, name
        assert CARAVAN[name]["deploy"]["resources"]["limits"]["memory"]
        assert CARAVAN[name]["command"] == [name]
    check_ingest_memory(CARAVAN["ingest"]["deploy"]["resources"]["limits"]["memory"])
    # A host port can be published by one replica only.
    assert all("ports" not in CARAVAN[name] for name, count in REPLICAS.items() if count > 1)


def test_services_start_after_the_cluster_is_formed_and_the_nodes_are_healthy() -> None:
    for service in CARAVAN.values():
        assert service["depends_on"] == {
            "redis-cluster-init": {"condition": "service_completed_successfully"},
            **{n: {"condition": "service_healthy"} for n in ES_NODES},
        }
    for node in ES_NODES.values():
        assert node["depends_on"] == {"es-certs": {"condition": "service_completed_successfully"}}


def test_every_dependency_can_meet_its_condition() -> None:
    for service in SERVICES.values():
        for target, dependency in service.get("depends_on", {}).items():
            if dependency["condition"] == "service_healthy":
                assert SERVICES[target]["healthcheck"]["test"], target
            else:
                assert dependency["condition"] == "service_completed_successfully"
                assert SERVICES[target]["restart"] == "no", target


def test_every_named_volume_is_declared() -> None:
    used = {volume.split(":", 1)[0] for s in SERVICES.values() for volume in s.get("volumes", [])}
    assert used == set(COMPOSE["volumes"])


def test_sets_only_variables_the_services_read_and_env_example_lists() -> None:
    check_environment([*CARAVAN.values(), SERVICES["keys"]])
    interpolated = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", PATH.read_text(encoding="utf-8")))
    assert sorted(interpolated - _env_example_names()) == []
    for name, variable in (
        ("ingest", "CARAVAN_INGEST_SOURCES"),
        ("ratefeed", "CARAVAN_RATEFEED_PROVIDERS"),
    ):
        default = CARAVAN[name]["environment"][variable].split(":-", 1)[1].rstrip("}")
        assert (REPO / default.removeprefix("/app/")).is_file()


def test_each_service_has_its_own_elasticsearch_key_from_a_volume_of_its_own() -> None:
    check_own_keys(SERVICES)
