"""Caravan's Elasticsearch node over HTTPS (shared/esnode.py), against the secure node:
certificates checked as the library's aiohttp node checks them, connections kept alive."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from elastic_transport import NodeConfig, TlsError
from elasticsearch import AsyncElasticsearch
from pydantic import SecretStr

from shared.clients import make_elasticsearch
from shared.esnode import HttpNode, tls_context
from shared.settings import ElasticsearchSettings
from tests.security.conftest import BOOTSTRAP, URL, SecureCluster


def _client(cluster: SecureCluster, ca_certs: Path | None) -> AsyncElasticsearch:
    settings = ElasticsearchSettings(
        url=URL,
        username=BOOTSTRAP,
        password=SecretStr(cluster.bootstrap_password),
        ca_certs=str(ca_certs) if ca_certs else None,
        request_timeout=30,
    )
    return make_elasticsearch(settings)


@pytest.fixture
async def verified(secure_cluster: SecureCluster) -> AsyncIterator[AsyncElasticsearch]:
    es = _client(secure_cluster, secure_cluster.ca)
    yield es
    await es.close()


async def _opened(es: AsyncElasticsearch) -> int:
    stats = await es.nodes.stats(metric="http")
    return sum(node["http"]["total_opened"] for node in stats["nodes"].values())


async def test_https_requests_share_kept_alive_verified_connections(
    verified: AsyncElasticsearch,
) -> None:
    assert isinstance(verified.transport.node_pool.get(), HttpNode)
    before = await _opened(verified)
    for _ in range(20):
        assert (await verified.cluster.health())["status"] in ("green", "yellow")
        assert not await verified.indices.exists(index="caravan-no-such-index")
    assert await _opened(verified) - before <= 1
    before = await _opened(verified)
    await asyncio.gather(*(verified.cluster.health() for _ in range(30)))
    assert await _opened(verified) - before <= 10


async def test_a_certificate_from_another_ca_is_a_tls_error(
    secure_cluster: SecureCluster,
) -> None:
    # certifi's authorities: the node's own CA is not among them.
    es = _client(secure_cluster, None)
    try:
        with pytest.raises(TlsError, match="CERTIFICATE_VERIFY_FAILED"):
            await es.cluster.health()
    finally:
        await es.close()


def test_what_the_node_cannot_check_is_refused_not_ignored(tmp_path: Path) -> None:
    https = {"scheme": "https", "host": "127.0.0.1", "port": 9200}
    for unchecked in (
        {"ssl_assert_fingerprint": "AA:BB"},
        {"verify_certs": False},
        {"client_cert": str(tmp_path / "client.pem")},
        # A context of the caller's own does not make a fingerprint checked.
        {"ssl_context": ssl.create_default_context(), "ssl_assert_fingerprint": "AA:BB"},
    ):
        with pytest.raises(ValueError, match="need AiohttpHttpNode"):
            HttpNode(NodeConfig(**https, **unchecked))  # type: ignore[arg-type]
    context = tls_context(NodeConfig(**https))  # type: ignore[arg-type]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert not context.check_hostname  # an address, as the library's node has it
    named = tls_context(NodeConfig(scheme="https", host="es.example", port=9200))
    assert named.check_hostname
