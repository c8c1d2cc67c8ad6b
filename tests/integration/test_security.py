"""Credentials end to end: an ACL user, secrets read from files, and never a secret in a log."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from tests.conftest import REALDATA, Namespace
from tests.processes import caravan, free_port

pytestmark = pytest.mark.integration

SECRET = f"not-for-logs-{uuid4().hex}"


@pytest.fixture
async def acl_user(redis: Redis, namespace: Namespace) -> AsyncIterator[str]:
    # A user confined to this test's keys: proves the services authenticate as it.
    name = f"caravan-{uuid4().hex[:8]}"
    await redis.acl_setuser(
        name,
        enabled=True,
        passwords=[f"+{SECRET}"],
        keys=[f"{namespace.stream_prefix}*"],
        commands=["+@all"],
        channels=["*"],
    )
    yield name
    await redis.acl_deluser(name)


async def test_acl_user_with_secrets_from_files_works_and_no_secret_is_logged(
    acl_user: str, tmp_path: Path, namespace: Namespace
) -> None:
    password_file = tmp_path / "redis-password"
    password_file.write_text(SECRET + "\n")
    es_password_file = tmp_path / "es-password"
    es_password_file.write_text(SECRET + "\n")
    env = {
        **os.environ,
        "REDIS_USERNAME": acl_user,
        "REDIS_PASSWORD_FILE": str(password_file),
        "ELASTICSEARCH_USERNAME": "caravan",
        "ELASTICSEARCH_PASSWORD_FILE": str(es_password_file),
        "CARAVAN_LOG_LEVEL": "DEBUG",
    }

    rates = str(REALDATA / "cbr-xml-daily-2023-09-27.xml")
    published = caravan(env, "ratefeed", "--source", rates)
    searched = caravan(env, "search", "anything")

    assert published.returncode == 0, published.stderr
    assert "5 quotes published" in published.stdout
    assert searched.returncode == 0, searched.stderr
    for output in (published.stdout, published.stderr, searched.stdout, searched.stderr):
        assert SECRET not in output


async def test_a_wrong_password_fails_clearly_without_echoing_it(
    acl_user: str, tmp_path: Path
) -> None:
    wrong = f"wrong-{SECRET}"
    env = {**os.environ, "REDIS_USERNAME": acl_user, "REDIS_PASSWORD": wrong}

    result = caravan(env, "ratefeed", "--source", str(REALDATA / "cbr-xml-daily-2023-09-27.xml"))

    assert result.returncode == 3
    assert result.stderr.startswith("caravan ratefeed: Redis: AuthenticationError:")
    assert "Traceback" not in result.stderr
    assert wrong not in result.stdout + result.stderr


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A Redis that speaks only TLS, with a certificate from a throwaway CA."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=caravan-test-ca",
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    )
    (tmp_path / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "1",
        "-extfile",
        "san.cnf",
    )
    port = free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            "server.crt",
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            "ca.crt",
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            ping = subprocess.run(
                ["redis-cli", "--tls", "--cacert", "ca.crt", "-p", str(port), "ping"],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                check=False,
            )
            if ping.stdout.strip() == "PONG":
                break
            time.sleep(0.1)
        yield f"rediss://127.0.0.1:{port}/0", tmp_path / "ca.crt"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_services_speak_tls_to_redis_with_a_ca_file(tls_redis: tuple[str, Path]) -> None:
    url, ca = tls_redis
    rates = str(REALDATA / "cbr-xml-daily-2023-09-27.xml")
    trusted = {**os.environ, "REDIS_URL": url, "REDIS_SSL_CA_CERTS": str(ca)}
    untrusted = {**os.environ, "REDIS_URL": url}

    published = caravan(trusted, "ratefeed", "--source", rates)  # broker and plain client
    listed = caravan(trusted, "deadletters", "list")
    refused = caravan(untrusted, "ratefeed", "--source", rates)

    assert published.returncode == 0, published.stderr
    assert "5 quotes published" in published.stdout
    assert listed.returncode == 0, listed.stderr
    assert refused.returncode == 3
    assert "certificate verify failed" in refused.stderr
