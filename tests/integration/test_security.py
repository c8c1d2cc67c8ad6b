"""Credentials end to end: an ACL user, secrets read from files, and never a secret in a log."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from tests.conftest import REALDATA, REPO, Namespace

pytestmark = pytest.mark.integration

SECRET = f"not-for-logs-{uuid4().hex}"


@pytest.fixture
async def acl_user(redis: Redis, namespace: Namespace) -> AsyncIterator[str]:
    # A user confined to this test's keys: proves the services authenticate as it.
    name = f"caravan-{uuid4().hex[:8]}"
    await redis.acl_setuser(name, enabled=True, passwords=[f"+{SECRET}"],
                            keys=[f"{namespace.stream_prefix}*"], commands=["+@all"],
                            channels=["*"])
    yield name
    await redis.acl_deluser(name)


def _caravan(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)


async def test_acl_user_with_secrets_from_files_works_and_no_secret_is_logged(
    acl_user: str, tmp_path: Path, namespace: Namespace
) -> None:
    password_file = tmp_path / "redis-password"
    password_file.write_text(SECRET + "\n")
    es_password_file = tmp_path / "es-password"
    es_password_file.write_text(SECRET + "\n")
    env = {**os.environ, "REDIS_USERNAME": acl_user,
           "REDIS_PASSWORD_FILE": str(password_file),
           "ELASTICSEARCH_USERNAME": "caravan",
           "ELASTICSEARCH_PASSWORD_FILE": str(es_password_file),
           "CARAVAN_LOG_LEVEL": "DEBUG"}

    rates = str(REALDATA / "cbr-xml-daily-2023-09-27.xml")
    published = _caravan(env, "ratefeed", "--source", rates)
    searched = _caravan(env, "search", "anything")

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

    result = _caravan(env, "ratefeed", "--source", str(REALDATA / "cbr-xml-daily-2023-09-27.xml"))

    assert result.returncode == 3
    assert result.stderr.startswith("caravan ratefeed: Redis: AuthenticationError:")
    assert "Traceback" not in result.stderr
    assert wrong not in result.stdout + result.stderr
