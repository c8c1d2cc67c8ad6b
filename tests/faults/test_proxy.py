"""The fault proxy itself: each toxic does to real clients what it says, and goes away."""

from __future__ import annotations

import time

import pytest
import redis
from elastic_transport import ConnectionTimeout
from elasticsearch import Elasticsearch
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.faults.proxy import Proxy

pytestmark = pytest.mark.faults


def _redis(proxy: Proxy) -> redis.Redis:
    # No client-side retries: each call shows what one attempt met.
    return redis.Redis(
        host=proxy.host, port=proxy.port, socket_timeout=5, retry=Retry(NoBackoff(), 0)
    )


def _timed_ping(client: redis.Redis) -> float:
    started = time.monotonic()
    assert client.ping()
    return time.monotonic() - started


def test_a_black_hole_times_elasticsearch_out_until_it_is_removed(es_proxy: Proxy) -> None:
    es = Elasticsearch(f"http://{es_proxy.listen}", request_timeout=1, max_retries=0)
    assert es.cluster.health()["cluster_name"]

    black_hole = es_proxy.timeout()
    with pytest.raises(ConnectionTimeout):
        es.cluster.health()

    es_proxy.remove(black_hole)
    assert es.cluster.health()["cluster_name"]


def test_a_reset_peer_breaks_redis_until_it_is_removed(redis_proxy: Proxy) -> None:
    client = _redis(redis_proxy)
    assert client.ping()

    reset = redis_proxy.reset_peer()
    with pytest.raises(redis.ConnectionError):
        client.ping()

    redis_proxy.remove(reset)
    assert client.ping()


def test_latency_delays_each_answer(redis_proxy: Proxy) -> None:
    client = _redis(redis_proxy)
    assert _timed_ping(client) < 0.3

    latency = redis_proxy.latency(500)
    assert _timed_ping(client) >= 0.5

    redis_proxy.remove(latency)
    assert _timed_ping(client) < 0.3


def test_bandwidth_slows_a_large_answer(redis_proxy: Proxy) -> None:
    client = _redis(redis_proxy)
    key = f"faults-proxy-{redis_proxy.name}"
    client.set(key, b"x" * 128 * 1024, ex=60)
    redis_proxy.bandwidth(64)
    started = time.monotonic()
    assert len(client.get(key) or b"") == 128 * 1024
    # 131,072 bytes at 64,000 a second: about two seconds.
    assert time.monotonic() - started >= 1.5
    client.delete(key)


def test_a_disabled_proxy_refuses_connections_until_enabled(redis_proxy: Proxy) -> None:
    client = _redis(redis_proxy)
    assert client.ping()

    redis_proxy.disable()
    with pytest.raises(redis.ConnectionError):
        client.ping()

    redis_proxy.enable()
    assert client.ping()
