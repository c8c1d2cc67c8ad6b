"""An Elasticsearch with security on, started for these tests: instance "secure" on 9293.

HTTPS with a certificate from its own CA, verified by every client. Its file
realm holds one bootstrap superuser; every service runs with its own API key,
made by `caravan keys create` (the local distribution stores keys thanks to
deploy/local/es-plugin.sh) and read from its file. Each test makes its own
keys and roles, named after its index prefix, and removes them and its indices
when done.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from elasticsearch import AsyncElasticsearch, AuthenticationException

from services.keys import SERVICES, role_name
from tests.conftest import REPO, Namespace
from tests.processes import caravan, free_port, local_dir, stop_processes
from tests.waiting import until

PORT = 9293
# The file-realm superuser deploy/local/elasticsearch.sh makes, for creating keys only.
BOOTSTRAP = "caravan-bootstrap"
URL = f"https://127.0.0.1:{PORT}"
SCRIPT = REPO / "deploy" / "local" / "elasticsearch.sh"


@dataclass(frozen=True)
class SecureCluster:
    home: Path

    @property
    def ca(self) -> Path:
        return self.home / "config" / "certs" / "ca" / "ca.crt"

    @property
    def bootstrap_password(self) -> str:
        return (self.home / "bootstrap-password").read_text().strip()

    def client(self, username: str, password: str) -> AsyncElasticsearch:
        return AsyncElasticsearch(
            URL, ca_certs=str(self.ca), basic_auth=(username, password), request_timeout=30
        )

    def bootstrap(self) -> AsyncElasticsearch:
        return self.client(BOOTSTRAP, self.bootstrap_password)


@pytest.fixture(scope="package")
def secure_cluster() -> Iterator[SecureCluster]:
    # A small heap: other JVMs share two cores.
    env = {**os.environ, "CARAVAN_ES_HEAP": "256m"}
    command = [str(SCRIPT), "start", "secure", str(PORT), "secure"]
    subprocess.run(command, check=True, env=env)
    yield SecureCluster(local_dir() / "secure" / "es")
    subprocess.run([str(SCRIPT), "stop", "secure", str(PORT)], check=True)


@dataclass
class Secured:
    """One test's API keys, their files and service processes on the secure cluster."""

    cluster: SecureCluster
    namespace: Namespace
    workdir: Path
    key_ids: dict[str, str] = field(default_factory=dict)
    retired: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    health_ports: dict[str, int] = field(default_factory=dict)

    @property
    def key_dir(self) -> Path:
        return self.workdir / "keys"

    def key_file(self, service: str) -> Path:
        return self.key_dir / f"{service}.api-key"

    def key(self, service: str) -> str:
        return self.key_file(service).read_text().strip()

    def bootstrap_env(self) -> dict[str, str]:
        return {
            **self.env(None),
            "ELASTICSEARCH_USERNAME": BOOTSTRAP,
            "ELASTICSEARCH_PASSWORD": self.cluster.bootstrap_password,
        }

    def create_keys(self, *services: str, expiration: str | None = None) -> str:
        """`caravan keys create` as the bootstrap user; its output. The keys replace
        whatever the services' files held (a rotation), the old ones stay valid."""
        args = ["keys", "create", "--out", str(self.key_dir)]
        args += [word for service in services for word in ("--service", service)]
        args += ["--expiration", expiration] if expiration else []
        created = self.caravan(self.bootstrap_env(), *args)
        assert created.returncode == 0, created.stderr
        for service, key_id in re.findall(
            r"^(\w+): API key \S+ \(id (\S+)\)", created.stdout, re.M
        ):
            if service in self.key_ids:
                self.retired.append(self.key_ids[service])
            self.key_ids[service] = key_id
        return created.stdout

    async def set_privileges(self, service: str, descriptor: dict[str, Any]) -> None:
        """Change what the service's key may do (as its owner may), in place."""
        role = role_name(service, self.namespace.index_prefix)
        async with self.cluster.bootstrap() as es:
            await es.security.update_api_key(
                id=self.key_ids[service], role_descriptors={role: descriptor}
            )

    async def invalidate(self, service: str) -> None:
        async with self.cluster.bootstrap() as es:
            await es.security.invalidate_api_key(ids=[self.key_ids[service]])

    def client(self, service: str) -> AsyncElasticsearch:
        return AsyncElasticsearch(
            URL, ca_certs=str(self.cluster.ca), api_key=self.key(service), request_timeout=30
        )

    async def until_refused(self, key: str, what: str) -> None:
        """Until the cluster refuses `key` (401): an expiry, seen from outside."""
        async with AsyncElasticsearch(
            URL, ca_certs=str(self.cluster.ca), api_key=key, request_timeout=30
        ) as es:

            async def refused() -> bool:
                try:
                    await es.security.authenticate()
                except AuthenticationException:
                    return True
                return False

            await until(refused, what)

    def env(self, service: str | None, **extra: str) -> dict[str, str]:
        """A service's environment: verified TLS and its own key, from its file."""
        env = {
            **os.environ,
            "ELASTICSEARCH_URL": URL,
            "ELASTICSEARCH_CA_CERTS": str(self.cluster.ca),
            "CARAVAN_LOG_FORMAT": "json",
            **extra,
        }
        for name in ("ELASTICSEARCH_API_KEY", "ELASTICSEARCH_USERNAME", "ELASTICSEARCH_PASSWORD"):
            env.pop(name, None)
        if service is not None:
            env["ELASTICSEARCH_API_KEY_FILE"] = str(self.key_file(service))
        return env

    def log_path(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def start(self, name: str, module: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=REPO,
            env=env,
            stdout=self.log_path(name).open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def start_indexer(self, **extra: str) -> subprocess.Popen[bytes]:
        port = free_port()
        self.health_ports["indexer"] = port
        env = self.env(
            "indexer",
            CARAVAN_HEALTH_PORT=str(port),
            CARAVAN_INDEXER_BLOCK_MS="100",
            CARAVAN_INDEXER_RETRY_BASE_DELAY="0.05",
            CARAVAN_INDEXER_RETRY_MAX_DELAY="0.5",
            **extra,
        )
        return self.start("indexer", "services.indexer", env)

    def readiness(self, name: str = "indexer") -> dict[str, Any]:
        """The worker's /readyz answer ({} while it does not answer yet)."""
        try:
            answer = httpx.get(f"http://127.0.0.1:{self.health_ports[name]}/readyz", timeout=5)
        except httpx.HTTPError:
            return {}
        return cast("dict[str, Any]", answer.json())

    def hold(self) -> dict[str, Any] | None:
        return cast("dict[str, Any] | None", self.readiness().get("details", {}).get("hold"))

    def caravan(self, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return caravan(env, *args, timeout=120)

    def secrets(self) -> list[str]:
        """Every secret this test handed out, the keys' own halves included."""
        keys = [path.read_text().strip() for path in self.key_dir.glob("*.api-key")]
        halves = [base64.b64decode(key).decode().split(":", 1)[1] for key in keys]
        return [*keys, *halves, self.cluster.bootstrap_password]

    def logs(self) -> str:
        return "".join(path.read_text(errors="replace") for path in self.workdir.glob("*.log"))


@pytest.fixture
async def secured(
    secure_cluster: SecureCluster, namespace: Namespace, tmp_path: Path
) -> AsyncIterator[Secured]:
    world = Secured(secure_cluster, namespace, tmp_path)
    yield world
    stop_processes(world.processes)
    async with secure_cluster.bootstrap() as es:
        if ids := [*world.key_ids.values(), *world.retired]:
            await es.security.invalidate_api_key(ids=ids)
        for service in SERVICES:
            await es.options(ignore_status=404).security.delete_role(
                name=role_name(service, namespace.index_prefix)
            )
        indices = await es.indices.get(index=f"{namespace.index_prefix}*", allow_no_indices=True)
        if indices:
            await es.indices.delete(index=",".join(indices))
        templates = await es.options(ignore_status=404).indices.get_index_template(
            name=f"{namespace.index_prefix}*"
        )
        for template in templates.get("index_templates", []):
            await es.indices.delete_index_template(name=template["name"])
