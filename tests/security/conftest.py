"""An Elasticsearch with security on, started for these tests: instance "secure" on 9293.

HTTPS with a certificate from its own CA, verified by every client; the file
realm holds the bootstrap user and one user per service with the role
`caravan keys roles` prints (see realm.py for why users stand in for API keys).
Each test gets its own roles and users, named after its index prefix, and
removes them and its indices when done.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from elasticsearch import AsyncElasticsearch, AuthenticationException, AuthorizationException

from services.keys import SERVICES, role_descriptors, role_name
from tests.conftest import REPO, Namespace
from tests.processes import free_port, stop_processes
from tests.security.realm import BOOTSTRAP, FileRealm
from tests.waiting import until

PORT = 9293
URL = f"https://127.0.0.1:{PORT}"
SCRIPT = REPO / "deploy" / "local" / "elasticsearch.sh"


def _instance_dir() -> Path:
    # As deploy/local/common.sh places it.
    if local := os.environ.get("CARAVAN_LOCAL_DIR"):
        return Path(local) / "secure" / "es"
    if os.getuid() == 0:
        return Path("/var/lib/caravan/secure/es")
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "caravan" / "secure" / "es"


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
    # A small heap (other JVMs share two cores), and the realm and role files
    # re-read every second so a revoked user or a changed role applies at once.
    env = {
        **os.environ,
        "CARAVAN_ES_HEAP": "256m",
        "CARAVAN_ES_SETTINGS": "resource.reload.interval.high: 1s",
    }
    command = [str(SCRIPT), "start", "secure", str(PORT), "secure"]
    subprocess.run(command, check=True, env=env)
    yield SecureCluster(_instance_dir())
    subprocess.run([str(SCRIPT), "stop", "secure", str(PORT)], check=True)


@dataclass
class Secured:
    """One test's users, secret files and service processes on the secure cluster."""

    cluster: SecureCluster
    namespace: Namespace
    realm: FileRealm
    workdir: Path
    passwords: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    health_ports: dict[str, int] = field(default_factory=dict)

    def user(self, service: str) -> str:
        return f"caravan-{self.namespace.index_prefix}{service}"

    def password_file(self, service: str) -> Path:
        return self.workdir / f"{service}.password"

    async def grant(self, service: str, descriptor: dict[str, Any] | None = None) -> None:
        """(Re)define the service's role: its own, or `descriptor` instead."""
        prefix = self.namespace.index_prefix
        self.realm.put_role(
            role_name(service, prefix), descriptor or role_descriptors(prefix)[service]
        )

    async def provide_user(self, service: str) -> str:
        """Create (or give a new password to) the service's user; the password file follows."""
        prefix = self.namespace.index_prefix
        password = self.realm.put_user(self.user(service), role_name(service, prefix))
        self.passwords[service] = password
        await self.until_authenticated(self.user(service), password)
        return password

    async def until_authenticated(self, user: str, password: str) -> None:
        """Poll until the node has read the realm and role files with this user in them."""
        async with self.cluster.client(user, password) as es:

            async def taken() -> bool:
                try:
                    answer = await es.security.has_privileges(cluster=["monitor"])
                except (AuthenticationException, AuthorizationException):
                    return False
                return bool(answer["has_all_requested"])

            await until(taken, f"the node to take user {user}", within=30)

    def env(self, service: str | None, **extra: str) -> dict[str, str]:
        """A service's environment: verified TLS, its user, its password from a file."""
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
            self.password_file(service).write_text(self.passwords[service] + "\n")
            env |= {
                "ELASTICSEARCH_USERNAME": self.user(service),
                "ELASTICSEARCH_PASSWORD_FILE": str(self.password_file(service)),
            }
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
        return subprocess.run(
            [sys.executable, "-m", "services", *args],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def secrets(self) -> list[str]:
        return [*self.passwords.values(), self.cluster.bootstrap_password]

    def logs(self) -> str:
        return "".join(path.read_text(errors="replace") for path in self.workdir.glob("*.log"))


@pytest.fixture
async def secured(
    secure_cluster: SecureCluster, namespace: Namespace, tmp_path: Path
) -> AsyncIterator[Secured]:
    world = Secured(secure_cluster, namespace, FileRealm(secure_cluster.home / "config"), tmp_path)
    yield world
    stop_processes(world.processes)
    for service in SERVICES:
        world.realm.delete_user(world.user(service))
        world.realm.delete_role(role_name(service, namespace.index_prefix))
    async with secure_cluster.bootstrap() as es:
        indices = await es.indices.get(index=f"{namespace.index_prefix}*", allow_no_indices=True)
        if indices:
            await es.indices.delete(index=",".join(indices))
        templates = await es.options(ignore_status=404).indices.get_index_template(
            name=f"{namespace.index_prefix}*"
        )
        for template in templates.get("index_templates", []):
            await es.indices.delete_index_template(name=template["name"])
