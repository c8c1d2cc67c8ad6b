"""Elasticsearch with security on: verified TLS, one API key per service holding
its least-privilege role, keys refused mid-run (a missing privilege, invalidated,
expired) held by the indexer with the reason, rotated keys followed from their
files without a restart, and never a secret in a log.

Against the local distribution started with `deploy/local/elasticsearch.sh start
secure 9293 secure` (conftest.py). Services run as processes, as in production.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx
import pytest
from elasticsearch import AuthorizationException
from redis.asyncio import Redis

from services.keys import role_descriptors, role_name
from shared.index import IndexNames
from shared.settings import ElasticsearchSettings
from tests.conftest import REALDATA, REPO, Namespace
from tests.integration.conftest import article, publish
from tests.processes import free_port
from tests.security.conftest import Secured
from tests.streams import entries
from tests.waiting import until, wait_for

pytestmark = pytest.mark.security


async def _count(secured: Secured) -> int:
    alias = IndexNames(secured.namespace.index_prefix).articles
    async with secured.cluster.bootstrap() as es:
        if not await es.indices.exists_alias(name=alias):
            return 0
        await es.indices.refresh(index=alias)
        return int((await es.count(index=alias))["count"])


async def _until_count(secured: Secured, expected: int, what: str) -> None:
    # Counted as the bootstrap user, never with the service's own credential.
    async def counted() -> bool:
        return await _count(secured) == expected

    await until(counted, what)


def _no_secret_in(secured: Secured, *outputs: str) -> None:
    text = secured.logs() + "".join(outputs)
    for secret in secured.secrets():
        assert secret not in text


async def test_each_service_works_under_its_own_key_over_verified_tls(
    secured: Secured, redis: Redis, namespace: Namespace
) -> None:
    created = secured.create_keys()
    for service in ("indexer", "query", "reindex"):
        role = role_name(service, namespace.index_prefix)
        assert f"{service}: API key {role}-" in created
        assert f"role {role}, written to {secured.key_file(service)}" in created
        assert secured.key_file(service).stat().st_mode & 0o777 == 0o600
    # The rate feed needs no Elasticsearch credential at all: it only publishes.
    published = secured.caravan(
        secured.env(None), "ratefeed", "--source", str(REALDATA / "cbr-xml-daily-2023-09-27.xml")
    )
    assert published.returncode == 0, published.stderr
    await publish(
        redis,
        namespace.streams.articles,
        *(article(n, title=f"Caspian shipping report {n}") for n in range(12)),
    )

    secured.start_indexer()
    await _until_count(secured, 12, "the articles")
    wait_for(lambda: secured.readiness().get("ready") is True, 30, "the indexer to be ready")

    port = free_port()
    secured.health_ports["query"] = port
    secured.start(
        "query",
        "services.query",
        secured.env("query", CARAVAN_QUERY_PORT=str(port), CARAVAN_QUERY_RATE_LIMIT="0"),
    )
    wait_for(lambda: secured.readiness("query").get("ready") is True, 60, "the query service")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as api:
        found = (await api.get("/api/search", params={"q": "Caspian shipping"})).json()
        latest = (await api.get("/api/quotes/latest")).json()
    assert found["total"] == 12
    assert latest["quotes"]

    rebuilt = secured.caravan(secured.env("reindex"), "reindex", "articles")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "articles-v1 -> " in rebuilt.stdout
    assert "12 documents copied" in rebuilt.stdout
    searched = secured.caravan(secured.env("query"), "search", "Caspian")
    assert searched.returncode == 0, searched.stderr
    assert "of 12" in searched.stdout

    # Least privilege: the indexer's key (which reads, to match saved searches) deletes
    # nothing, the query service's writes no article, and the rate feed has no key.
    refused = secured.caravan(secured.env("query"), "reindex", "articles")
    assert refused.returncode == 3
    assert "is unauthorized" in refused.stderr
    async with secured.client("indexer") as es:
        with pytest.raises(AuthorizationException, match="indices:admin/delete"):
            await es.indices.delete(index=f"{namespace.index_prefix}articles-v1")
    async with secured.client("query") as es:
        with pytest.raises(AuthorizationException, match="indices:data/write"):
            await es.index(index=f"{namespace.index_prefix}articles", document={"title": "x"})

    # Certificate verification is on: without the CA the cluster is not trusted.
    untrusted = secured.env("query")
    del untrusted["ELASTICSEARCH_CA_CERTS"]
    unverified = secured.caravan(untrusted, "search", "Caspian")
    assert unverified.returncode == 3
    assert "CERTIFICATE_VERIFY_FAILED" in unverified.stderr.upper().replace(" ", "_")

    _no_secret_in(
        secured,
        created,
        published.stdout,
        published.stderr,
        rebuilt.stdout,
        rebuilt.stderr,
        searched.stdout,
        searched.stderr,
        refused.stderr,
    )


async def test_a_key_without_write_is_held_with_the_reason_and_resumes_once_granted(
    secured: Secured, redis: Redis, namespace: Namespace
) -> None:
    secured.create_keys("indexer")
    lacking = role_descriptors(namespace.index_prefix)["indexer"]
    # The entry granting `write` goes (an entry may not be left without privileges).
    lacking["indices"] = [e for e in lacking["indices"] if "write" not in e["privileges"]]
    await secured.set_privileges("indexer", lacking)
    await publish(redis, namespace.streams.articles, *(article(n) for n in range(20)))

    secured.start_indexer()
    wait_for(lambda: (secured.hold() or {}).get("for_seconds", 0) >= 3, 60, "a hold")
    readiness = secured.readiness()
    assert readiness["checks"]["writing"] is False
    reason = readiness["details"]["hold"]["reason"]
    assert "security_exception" in reason
    assert "is unauthorized for API key" in reason
    assert "holding: the cluster cannot take writes" in secured.logs()
    assert await entries(redis, namespace.streams.deadletters) == []
    assert await _count(secured) == 0

    # The operator gives the key its role back.
    await secured.set_privileges("indexer", role_descriptors(namespace.index_prefix)["indexer"])
    await _until_count(secured, 20, "the held articles")
    wait_for(lambda: secured.hold() is None, 30, "the hold to be released")
    assert await entries(redis, namespace.streams.deadletters) == []
    _no_secret_in(secured)


async def _indexing_with_its_key(
    secured: Secured, redis: Redis, namespace: Namespace
) -> subprocess.Popen[bytes]:
    """An indexer running with a key of its own, ten articles in."""
    secured.create_keys("indexer")
    indexer = secured.start_indexer()
    await publish(redis, namespace.streams.articles, *(article(n) for n in range(10)))
    await _until_count(secured, 10, "the first articles")
    return indexer


async def _refused_then_rotated(
    secured: Secured, redis: Redis, namespace: Namespace, refusal: str
) -> None:
    """With the indexer's key refused: held with `refusal`, nothing dead-lettered; then
    a new key written to its file (as a Secret update does) resumes the same process."""
    await publish(redis, namespace.streams.articles, *(article(n) for n in range(10, 25)))
    wait_for(lambda: (secured.hold() or {}).get("for_seconds", 0) >= 3, 60, "a hold")
    readiness = secured.readiness()
    assert readiness["ready"] is False
    assert readiness["checks"]["elasticsearch"] is False
    assert readiness["checks"]["writing"] is False
    assert refusal in readiness["details"]["hold"]["reason"]
    assert await entries(redis, namespace.streams.deadletters) == []

    secured.create_keys("indexer")
    await _until_count(secured, 25, "the held articles")
    wait_for(lambda: secured.readiness().get("ready") is True, 30, "the indexer to be ready")
    assert await entries(redis, namespace.streams.deadletters) == []
    assert "elasticsearch credential read again from its file" in secured.logs()
    _no_secret_in(secured)


async def test_an_invalidated_key_holds_and_a_rotated_one_resumes_without_restart(
    secured: Secured, redis: Redis, namespace: Namespace
) -> None:
    indexer = await _indexing_with_its_key(secured, redis, namespace)
    await secured.invalidate("indexer")
    await _refused_then_rotated(secured, redis, namespace, "has been invalidated")
    assert indexer.poll() is None  # the same process: no restart


async def test_a_key_that_expires_mid_run_holds_and_its_successor_resumes(
    secured: Secured, redis: Redis, namespace: Namespace
) -> None:
    indexer = await _indexing_with_its_key(secured, redis, namespace)
    # A short-lived key replaces the first in its file, and runs out.
    secured.create_keys("indexer", expiration="3s")
    await secured.until_refused(secured.key("indexer"), "the short-lived key to expire")
    await _refused_then_rotated(secured, redis, namespace, "api key is expired")
    assert indexer.poll() is None


def test_a_key_set_directly_wins_and_its_file_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("from-the-file\n")
    monkeypatch.setenv("ELASTICSEARCH_API_KEY_FILE", str(key_file))
    monkeypatch.setenv("ELASTICSEARCH_API_KEY", "set-directly")

    settings = ElasticsearchSettings()

    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == "set-directly"
    assert settings.api_key_file is None


def test_the_roles_in_the_operations_guide_are_the_ones_the_services_get() -> None:
    guide = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    start = guide.index("<!-- roles -->")
    block = guide[guide.index("```json", start) + len("```json") : guide.index("```\n", start + 8)]
    documented = json.loads(block)

    assert documented == {
        role_name(service, ""): descriptor for service, descriptor in role_descriptors("").items()
    }


async def test_an_indexer_started_before_its_key_exists_waits_for_it(
    secured: Secured, redis: Redis, namespace: Namespace
) -> None:
    # As under compose or an init job: the service is up before the key is made.
    await publish(redis, namespace.streams.articles, *(article(n) for n in range(5)))
    indexer = secured.start_indexer()
    wait_for(lambda: "waiting for elasticsearch" in secured.logs(), 60, "the indexer to wait")
    assert indexer.poll() is None

    secured.create_keys("indexer")
    await _until_count(secured, 5, "the articles")
    assert await entries(redis, namespace.streams.deadletters) == []
    _no_secret_in(secured)


def test_an_init_job_makes_each_key_once_in_a_directory_of_its_own(
    secured: Secured, tmp_path: Path
) -> None:
    out = str(tmp_path / "per-service" / "{service}")
    command = ["keys", "create", "--out", out, "--service", "indexer", "--service", "query"]
    first = secured.caravan(secured.bootstrap_env(), *command, "--if-missing")
    assert first.returncode == 0, first.stderr
    files = [tmp_path / "per-service" / s / f"{s}.api-key" for s in ("indexer", "query")]
    keys = [path.read_text() for path in files]
    secured.key_ids |= dict(re.findall(r"^(\w+): API key \S+ \(id (\S+)\)", first.stdout, re.M))

    again = secured.caravan(secured.bootstrap_env(), *command, "--if-missing")

    assert again.returncode == 0, again.stderr
    assert f"indexer: key file already there, {files[0]}" in again.stdout
    assert "API key" not in again.stdout
    assert [path.read_text() for path in files] == keys


async def test_a_restart_over_its_indices_works_and_a_refusal_there_is_held_not_fatal(
    secured: Secured, redis: Redis, namespace: Namespace
) -> None:
    secured.create_keys("indexer")
    first = secured.start_indexer()
    await publish(redis, namespace.streams.articles, *(article(n) for n in range(5)))
    await _until_count(secured, 5, "the first articles")
    first.terminate()
    assert first.wait(timeout=60) == 0

    # Restarted over the indices it made, with a key that may not update their settings:
    # the start is held with the reason, the process stays up.
    lacking = role_descriptors(namespace.index_prefix)["indexer"]
    lacking["indices"][0]["privileges"].remove("indices:admin/settings/update")
    await secured.set_privileges("indexer", lacking)
    again = secured.start_indexer()
    await publish(redis, namespace.streams.articles, *(article(n) for n in range(5, 10)))
    wait_for(lambda: "indices not ensured, holding" in secured.logs(), 60, "the start to hold")
    assert "indices:admin/settings/update] is unauthorized" in secured.logs()
    assert secured.readiness()["checks"]["indices"] is False
    assert again.poll() is None

    await secured.set_privileges("indexer", role_descriptors(namespace.index_prefix)["indexer"])
    await _until_count(secured, 10, "the articles published meanwhile")
    wait_for(lambda: secured.readiness().get("ready") is True, 30, "the indexer to be ready")
    assert await entries(redis, namespace.streams.deadletters) == []
