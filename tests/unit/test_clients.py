"""The Elasticsearch client as every service makes it: how its bodies are written and read."""

from __future__ import annotations

import pytest
from elastic_transport import SerializerCollection
from elasticsearch.serializer import OrjsonSerializer
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import (
    AuthenticationError,
    ClusterCrossSlotError,
    ClusterDownError,
    ConnectionError,
    MaxConnectionsError,
    NoPermissionError,
    OutOfMemoryError,
    RedisClusterException,
    ResponseError,
)

from shared.clients import _host_port, make_elasticsearch, make_redis, redis_trouble
from shared.settings import ElasticsearchSettings, RedisSettings, Settings, SettingsError

COMPATIBLE = "; compatible-with=9"


@pytest.fixture
def serializers() -> SerializerCollection:
    es = make_elasticsearch(ElasticsearchSettings(url="http://127.0.0.1:9200"))
    return es.transport.serializers


@pytest.mark.parametrize(
    "mimetype", ["application/json", f"application/vnd.elasticsearch+json{COMPATIBLE}"]
)
def test_answers_are_parsed_by_orjson_whichever_json_mimetype(
    serializers: SerializerCollection, mimetype: str
) -> None:
    assert isinstance(serializers.get_serializer(mimetype), OrjsonSerializer)
    assert serializers.loads(b'{"took":3,"hits":{"hits":[]}}', mimetype) == {
        "took": 3,
        "hits": {"hits": []},
    }


@pytest.mark.parametrize(
    "mimetype", ["application/x-ndjson", f"application/vnd.elasticsearch+x-ndjson{COMPATIBLE}"]
)
def test_a_ready_bulk_body_goes_out_as_it_is(
    serializers: SerializerCollection, mimetype: str
) -> None:
    body = b'{"index":{"_id":"1"}}\n{"title":"\xd0\x9e\xd1\x88"}\n'
    assert serializers.dumps(body, mimetype) is body


@pytest.mark.parametrize(
    ("error", "told"),
    [
        (ConnectionError("Connection refused"), "redis unreachable"),
        (TimeoutError(), "redis unreachable"),
        (ClusterDownError("The cluster is down"), "redis unreachable"),
        (ResponseError("MISCONF errors writing to disk"), "redis unreachable"),
        (
            NoPermissionError("this user has no permissions to run the 'xadd' command"),
            "redis refused this service's user (its ACL rules)",
        ),
        # Inside a script Redis 7 refuses with a plain error, as redis-py passes it on.
        (
            ResponseError(
                "The user executing the script can't run this command or subcommand "
                "script: 2b58b1, on @user_script:1."
            ),
            "redis refused this service's user (its ACL rules)",
        ),
        (
            ResponseError(
                "ACL failure in script: User caravan-ingest has no permissions to run the "
                "'time' command script: 2b58b1, on @user_script:1."
            ),
            "redis refused this service's user (its ACL rules)",
        ),
        (
            AuthenticationError("invalid username-password pair or user is disabled."),
            "redis refused this service's credentials",
        ),
        # The indexer held on a dead letters' key of another type, "unreachable".
        (
            ResponseError(
                "Command # 1 (XADD caravan:deadletters * __data__ ...) of pipeline caused "
                "error: WRONGTYPE Operation against a key holding the wrong kind of value"
            ),
            "a key holds another type than Caravan writes there: delete it",
        ),
        # A full Redis answers: operators were sent to the network.
        (
            OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
            "redis at maxmemory",
        ),
        # An unhashtagged prefix in a cluster: the lease script's keys in two slots,
        # refused by the client before it sends, or by Redis (CROSSSLOT).
        (
            RedisClusterException("EVAL - all keys must map to the same key slot"),
            "keys in different cluster slots: CARAVAN_STREAM_PREFIX needs a {hash tag}",
        ),
        (
            ClusterCrossSlotError("Keys in request don't hash to the same slot"),
            "keys in different cluster slots: CARAVAN_STREAM_PREFIX needs a {hash tag}",
        ),
        # The cap on this process' own connections: a cluster node's pool, or the
        # blocking pool's wait for a free one, ran out.
        (
            MaxConnectionsError("Too many connections"),
            "all of this service's redis connections in use",
        ),
        (
            ConnectionError("No connection available."),
            "all of this service's redis connections in use",
        ),
    ],
)
def test_a_refusal_of_the_services_user_is_not_redis_away(error: Exception, told: str) -> None:
    assert redis_trouble(error) == told


SEEDS = "redis://10.0.0.1:6379, 10.0.0.2:6380,redis://node-c,node-d"


def test_cluster_seeds_without_a_scheme_name_their_own_nodes() -> None:
    settings = RedisSettings(url=SEEDS, cluster=True)
    cluster = make_redis(settings)
    assert isinstance(cluster, RedisCluster)
    nodes = {(node.host, node.port) for node in cluster.nodes_manager.startup_nodes.values()}
    assert nodes == {("10.0.0.1", 6379), ("10.0.0.2", 6380), ("node-c", 6379), ("node-d", 6379)}

    # The broker's seeds, by the same reading.
    assert [_host_port(seed) for seed in ("10.0.0.2:6380", "node-d")] == [
        ("10.0.0.2", 6380),
        ("node-d", 6379),
    ]


@pytest.mark.parametrize(
    ("seed", "problem"),
    [
        (":6380", "names no host"),
        ("rediss://caravan:S3cret@:6380", "names no host"),
        ("node-b:63a9", "has no valid port"),
        ("rediss://caravan:S3cret@node-b:x", "has no valid port"),
    ],
)
def test_a_cluster_seed_without_a_host_is_refused_not_taken_for_localhost(
    monkeypatch: pytest.MonkeyPatch, seed: str, problem: str
) -> None:
    # Refused with the settings, by its place in the list: a seed may hold the password.
    monkeypatch.setenv("REDIS_CLUSTER", "true")
    monkeypatch.setenv("CARAVAN_STREAM_PREFIX", "{caravan}:")
    monkeypatch.setenv("REDIS_URL", f"rediss://caravan:S3cret@node-a:6379,{seed}")
    with pytest.raises(SettingsError) as refused:
        Settings.from_env()
    assert str(refused.value) == f"REDIS_URL: cluster node 2 {problem}"


def test_blank_cluster_seeds_are_left_out_as_the_client_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_CLUSTER", "true")
    monkeypatch.setenv("CARAVAN_STREAM_PREFIX", "{caravan}:")
    monkeypatch.setenv("REDIS_URL", "redis://:pw@10.0.0.1:7000, ,10.0.0.2:7000,")
    assert Settings.from_env().redis.cluster
