"""One chaos run: the clustered pipeline under a seeded schedule of faults, then the verdict.

    python -m tests.chaos.run --seed 7 --minutes 10      (or `make chaos`)

The deployment: a 3-node Elasticsearch cluster (deploy/local/es-cluster.sh, instance
"cluster" on 9311-9313), a 3+3 Redis Cluster (redis-cluster.sh, 7311-7316), and two
replicas each of ingest, the rate feed, the indexer and the query service, whose
links to Elasticsearch and to Redis go through toxiproxy (each Redis node announces
its proxy's port, REDIS_PROXY_OFFSET above its own; the run's own client goes
around them). The workload (workload.py) feeds them;
the nemesis (nemesis.py) applies the schedule (schedule.py) drawn from the seed;
probes search through the query service all along, and a live ticker stays open.
When the schedule is over, every fault healed, the run waits for the deployment to
settle (on state, up to `settle` seconds), and the checker (checker.py) reads the
final state. The history (every epoch, fault, heal, poison entry and probe) goes to
test-artifacts/chaos/seed-SEED.jsonl, and one summary row to test-artifacts/chaos-runs.jsonl.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
from elasticsearch import Elasticsearch
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from shared.events import DeadLetter
from shared.streams import DATA_FIELD
from tests.chaos import workload
from tests.chaos.checker import Final, Probe, Truth, Verdict, availability, check
from tests.chaos.nemesis import Nemesis, Targets
from tests.chaos.schedule import Fault, draw
from tests.conftest import REPO
from tests.faults.conftest import SCRIPTS
from tests.faults.proxy import Proxy, Toxiproxy
from tests.loopback import LoopbackServer
from tests.processes import free_port, stop_processes

REDIS_PORT = 7311
REDIS_NODES = 6
REDIS_PROXY_OFFSET = 100
# The longest a fault takes to heal: its window (12 s at most), then an Elasticsearch
# node started again and rejoined.
HEAL_SECONDS = 180
ES_PORT = 9311
ES_NODES = 3
TOXIPROXY_PORT = 8494
SERVICES = ("ingest", "ratefeed", "indexer", "query")
REPLICAS = tuple(f"{service}-{name}" for service in SERVICES for name in ("a", "b"))
LEASE = "4"
MAXLEN = 20_000
ARTIFACTS = REPO / "test-artifacts"


@dataclass(frozen=True)
class Plan:
    seed: int
    seconds: float
    """How long faults are drawn for (and the sources change), quiet tail included."""
    quiet: float = 20.0
    epoch_seconds: float = 8.0
    poison: int = 3
    settle: float = 300.0


@dataclass
class Result:
    plan: Plan
    faults: list[Fault]
    verdict: Verdict
    availability: dict[str, dict[str, float]]
    facts: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        kinds: dict[str, int] = {}
        for fault in self.faults:
            kinds[fault.kind] = kinds.get(fault.kind, 0) + 1
        return {
            "seed": self.plan.seed,
            "minutes": round(self.plan.seconds / 60, 1),
            "faults": kinds,
            "ok": self.verdict.ok,
            "lost": len(self.verdict.lost),
            "duplicated": len(self.verdict.duplicated),
            **self.facts,
            "availability": self.availability,
            "command": f"CHAOS_SEED={self.plan.seed} make chaos "
            f"CHAOS_MINUTES={round(self.plan.seconds / 60, 1)}",
        }


class Chaos:
    def __init__(self, plan: Plan, toxiproxy: Toxiproxy, workdir: Path) -> None:
        self.plan = plan
        self.workdir = workdir
        self.token = uuid4().hex[:8]
        self.prefix = f"{{chaos-{self.token}}}:"  # one hash tag: every key in one slot
        self.index_prefix = f"chaos-{self.token}-"
        self.history_path = ARTIFACTS / "chaos" / f"seed-{plan.seed}.jsonl"
        self.history_path.parent.mkdir(parents=True, exist_ok=True)
        self.history_path.write_text("")
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.toxiproxy = toxiproxy
        self.redis_proxies: dict[int, Proxy] = {
            node: toxiproxy.create(
                f"chaos-redis-{self.token}-{node}",
                f"127.0.0.1:{REDIS_PORT + node - 1}",
                listen=f"127.0.0.1:{REDIS_PORT + REDIS_PROXY_OFFSET + node - 1}",
            )
            for node in range(1, REDIS_NODES + 1)
        }
        self._announced = False
        # The run's observer, not a service: straight to the nodes, past the faulted
        # links, and never waiting on one for ever.
        self.redis = RedisCluster.from_url(
            f"redis://127.0.0.1:{REDIS_PORT}/0",
            address_remap=_around_proxies,
            socket_timeout=5,
            socket_connect_timeout=5,
        )
        self.es = Elasticsearch(
            [f"http://127.0.0.1:{ES_PORT + n}" for n in range(ES_NODES)], request_timeout=30
        )
        self.proxies: dict[int, Proxy] = {
            node: toxiproxy.create(
                f"chaos-es-{self.token}-{node}", f"127.0.0.1:{ES_PORT + node - 1}"
            )
            for node in range(1, ES_NODES + 1)
        }
        self.server = LoopbackServer()
        self.workload = workload.Workload(self.server, self.record)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.ports = {name: free_port() for name in REPLICAS}
        self.probes: list[Probe] = []
        self.ticker_days: set[str] = set()
        self.poison: list[str] = []
        self._stopping = threading.Event()
        self._nemesis_stop = threading.Event()
        self._faulting: threading.Thread | None = None

    # History -----------------------------------------------------------------

    def record(self, event: dict[str, Any]) -> None:
        line = json.dumps({"t": round(time.monotonic() - self.started, 2), **event}, default=str)
        with self._lock, self.history_path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")

    # The deployment ----------------------------------------------------------

    def _configure(self) -> None:
        self.workload.show(0)
        self.server.start()
        self.sources, self.rates = self.workload.write_config(self.workdir)

    def env(self, name: str) -> dict[str, str]:
        service = name.rsplit("-", 1)[0]
        seeds = ",".join(f"redis://127.0.0.1:{REDIS_PORT + n}/0" for n in range(REDIS_NODES))
        env = {
            **os.environ,
            "REDIS_URL": seeds,
            "REDIS_CLUSTER": "true",
            "ELASTICSEARCH_URL": ",".join(
                f"http://{proxy.listen}" for proxy in self.proxies.values()
            ),
            "ELASTICSEARCH_REQUEST_TIMEOUT": "5",
            "CARAVAN_STREAM_PREFIX": self.prefix,
            "CARAVAN_INDEX_PREFIX": self.index_prefix,
            "CARAVAN_STREAM_MAXLEN": str(MAXLEN),
            "CARAVAN_INDEX_REPLICAS": "1",
            "CARAVAN_HEALTH_PORT": str(self.ports[name]),
            "CARAVAN_LOG_FORMAT": "console",
            "CARAVAN_FETCH_ALLOW": "127.0.0.1",
            "CARAVAN_LEASE_AUDIT": "true",
        }
        for variable in (
            "ELASTICSEARCH_API_KEY",
            "ELASTICSEARCH_USERNAME",
            "ELASTICSEARCH_PASSWORD",
        ):
            env.pop(variable, None)
        return (
            env
            | {
                "ingest": {
                    "CARAVAN_INGEST_SOURCES": str(self.sources),
                    "CARAVAN_INGEST_LEASE_SECONDS": LEASE,
                    "CARAVAN_INGEST_HOST_DELAY": "0",
                    "CARAVAN_INGEST_HOST_CONCURRENCY": "16",
                    # Below the stream cap, as a capped deployment must be (shared/groups.py).
                    "CARAVAN_INGEST_MAX_LAG": str(MAXLEN // 2),
                },
                "ratefeed": {
                    "CARAVAN_RATEFEED_PROVIDERS": str(self.rates),
                    "CARAVAN_RATEFEED_LEASE_SECONDS": LEASE,
                    "CARAVAN_RATEFEED_HOST_DELAY": "0",
                },
                "indexer": {
                    "CARAVAN_INDEXER_CONSUMER": name,
                    "CARAVAN_INDEXER_BATCH_SIZE": "100",
                    "CARAVAN_INDEXER_BLOCK_MS": "200",
                    "CARAVAN_INDEXER_CLAIM_IDLE_MS": "3000",
                    "CARAVAN_INDEXER_RETRY_BASE_DELAY": "0.1",
                    "CARAVAN_INDEXER_RETRY_MAX_DELAY": "2",
                },
                "query": {
                    "CARAVAN_QUERY_PORT": str(self.ports[name]),
                    "CARAVAN_QUERY_RATE_LIMIT": "0",
                    "CARAVAN_QUERY_CACHE_SECONDS": "0",
                },
            }[service]
        )

    def start_replica(self, name: str) -> None:
        service = name.rsplit("-", 1)[0]
        log = (self.workdir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", f"services.{service}"],
            cwd=REPO,
            env=self.env(name),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.record({"event": "started", "replica": name, "pid": self.processes[name].pid})

    def signal_replica(self, name: str, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.processes[name].send_signal(sig)
        if sig == signal.SIGKILL:
            self.processes[name].wait()

    def redis_primary(self) -> int:
        for _ in range(50):
            with contextlib.suppress(RedisError, RedisClusterException, ConnectionError):
                self.redis.nodes_manager.initialize()
                node = self.redis.get_node_from_key(self.articles)  # type: ignore[no-untyped-call]
                return int(node.port) - REDIS_PORT + 1
            time.sleep(0.2)
        msg = "no Redis primary found for the deployment's slot"
        raise RuntimeError(msg)

    @property
    def articles(self) -> str:
        return f"{self.prefix}articles"

    # Observers ---------------------------------------------------------------

    def _probe(self) -> None:
        """Search through the query replicas twice a second; answered if either does,
        as behind a load balancer that tries the next."""
        with httpx.Client(timeout=2) as client:
            while not self._stopping.wait(0.5):
                at = time.monotonic() - self.started
                begun = time.monotonic()
                ok = False
                for name in ("query-a", "query-b"):
                    with contextlib.suppress(httpx.HTTPError):
                        answer = client.get(
                            f"http://127.0.0.1:{self.ports[name]}/api/search",
                            params={"q": "chaos"},
                        )
                        if answer.status_code == 200:
                            ok = True
                            break
                self.probes.append(Probe(round(at, 2), ok, time.monotonic() - begun))

    def _ticker(self) -> None:
        """An open live ticker (SSE), reconnecting to the other replica when one goes."""
        replicas = ["query-a", "query-b"]
        while not self._stopping.is_set():
            name = replicas[0]
            with (
                contextlib.suppress(httpx.HTTPError),
                httpx.Client(timeout=httpx.Timeout(5, read=30)) as client,
                client.stream(
                    "GET", f"http://127.0.0.1:{self.ports[name]}/api/quotes/stream"
                ) as answer,
            ):
                for line in answer.iter_lines():
                    if line.startswith("data:"):
                        with contextlib.suppress(ValueError, KeyError):
                            self.ticker_days.add(json.loads(line[5:])["as_of"])
                    if self._stopping.is_set():
                        return
            replicas.reverse()
            self._stopping.wait(0.5)

    # The run -----------------------------------------------------------------

    def run(self) -> Result:
        faults = draw(self.plan.seed, self.plan.seconds, REPLICAS, ES_NODES, self.plan.quiet)
        self.record({"event": "plan", **asdict(self.plan)})
        for fault in faults:
            self.record({"event": "scheduled", **fault.as_dict()})
        self._configure()
        # Here, not at construction: close() (in the caller's finally) undoes it.
        self._announced = True
        _redis_cluster("announce", str(REDIS_PROXY_OFFSET))
        for name in REPLICAS:
            self.start_replica(name)
        first = workload.FEEDS * workload.WINDOW
        _until(lambda: self._running() and self._indexed() >= first, 240, "the first epoch indexed")
        self.started = time.monotonic()
        self.record({"event": "chaos begins"})
        observers = [
            threading.Thread(target=self._probe, daemon=True),
            threading.Thread(target=self._ticker, daemon=True),
        ]
        for thread in observers:
            thread.start()
        nemesis = Nemesis(
            Targets(
                self.signal_replica,
                self.start_replica,
                self.redis_primary,
                REDIS_PORT,
                ES_PORT,
                self.proxies,
                self.redis_proxies,
            ),
            self.record,
            self.started,
        )
        self._faulting = threading.Thread(
            target=nemesis.run, args=(faults, self._nemesis_stop), daemon=True
        )
        self._faulting.start()
        self._drive()
        self._faulting.join()
        self.record({"event": "schedule over, every fault healed"})
        truth = self._truth()
        settled = _until_or_false(lambda: check(truth, self._final()).ok, self.plan.settle)
        self.record({"event": "settled" if settled else "did not settle"})
        final = self._final()
        self._stopping.set()
        verdict = check(truth, final)
        table = availability(self.probes, faults)
        facts = {
            "articles": len(truth.articles),
            "quotes": len(truth.quotes),
            "poison": len(truth.poison),
            "poison_lost_to_failover": len(self.poison) - len(truth.poison),
            "stream_entries_republished": self._republished(),
            "ticker_has_last_day": max(d for _, d in truth.quotes) in self.ticker_days,
            "settle_s": round(time.monotonic() - self.started - self.plan.seconds, 1),
        }
        result = Result(self.plan, faults, verdict, table, facts)
        self.record({"event": "verdict", **asdict(verdict), "ok": verdict.ok, **facts})
        with (ARTIFACTS / "chaos-runs.jsonl").open("a", encoding="utf-8") as out:
            out.write(json.dumps(result.row()) + "\n")
        return result

    def _drive(self) -> None:
        """Move the sources through their epochs and add the poison, until the schedule's end."""
        poison_at = workload.poison_times(
            self.plan.seed, self.plan.seconds - self.plan.quiet, self.plan.poison
        )
        end = self.started + self.plan.seconds
        epoch = 0
        while (now := time.monotonic()) < end:
            if now - self.started >= (epoch + 1) * self.plan.epoch_seconds:
                epoch += 1
                self.workload.show(epoch)
            if poison_at and now - self.started >= poison_at[0]:
                with contextlib.suppress(RedisError, RedisClusterException):
                    added = self.redis.xadd(self.articles, {DATA_FIELD: b'{"poison": '})
                    entry = added.decode() if isinstance(added, bytes) else str(added)
                    self.poison.append(entry)
                    self.record({"event": "poison", "entry_id": entry})
                    poison_at.pop(0)
            time.sleep(0.2)

    def _truth(self) -> Truth:
        # Poison Redis lost in a failover (acknowledged, never replicated) never reached
        # an indexer: it is expected nowhere. Whatever exists, or was dead-lettered, is.
        lettered = {entry for entry, _ in self._dead_letters()}
        survived = frozenset(
            entry
            for entry in self.poison
            if entry in lettered
            or self._retry(lambda e=entry: self.redis.xrange(self.articles, e, e))
        )
        return Truth(dict(self.workload.shown), dict(self.workload.days), survived)

    def _final(self) -> Final:
        articles = [
            {
                "_id": doc["_id"],
                "guid": doc["canonical_url"].rsplit("#item=", 1)[-1],
                "title": doc["title"],
            }
            for doc in self._documents("articles", ["canonical_url", "title"])
        ]
        quotes = [
            {"_id": doc["_id"], "base": doc["base"], "as_of": doc["as_of"], "rate": doc["rate"]}
            for doc in self._documents("quotes", ["base", "as_of", "rate"])
        ]
        pending = sum(
            int(self._retry(lambda s=stream: self.redis.xpending(s, "indexer"))["pending"])
            for stream in (self.articles, f"{self.prefix}quotes")
        )
        lengths = {
            stream: int(self._retry(lambda s=stream: self.redis.xlen(s)))
            for stream in (self.articles, f"{self.prefix}quotes")
        }
        return Final(
            articles, quotes, self._dead_letters(), pending, lengths, MAXLEN, self._fencing()
        )

    def _fencing(self) -> dict[str, list[int]]:
        """Each lease's audit stream: the tokens of the writes it accepted, in order."""
        logs: dict[str, list[int]] = {}
        for key in self._retry(
            lambda: list(self.redis.scan_iter(match=f"{self.prefix}lease:audit:*"))
        ):
            name = key.decode().removeprefix(f"{self.prefix}lease:audit:")
            entries = self._retry(lambda k=key: self.redis.xrange(k))
            logs[name] = [int(fields[b"token"]) for _, fields in entries]
        return logs

    def _dead_letters(self) -> list[tuple[str, str]]:
        entries = self._retry(lambda: self.redis.xrange(f"{self.prefix}deadletters"))
        letters = [DeadLetter.model_validate_json(fields[DATA_FIELD]) for _, fields in entries]
        return [(letter.entry_id, letter.error_class) for letter in letters]

    def _republished(self) -> int:
        """Article entries on the stream more than once (same key and content): what
        ingest published again after Redis lost its memory of them in a failover."""
        seen: dict[tuple[str, str], int] = {}
        for _, fields in self._retry(lambda: self.redis.xrange(self.articles)):
            with contextlib.suppress(ValueError, KeyError):
                event = json.loads(fields[DATA_FIELD])
                key = (event["idempotency_key"], event["content_hash"])
                seen[key] = seen.get(key, 0) + 1
        return sum(n - 1 for n in seen.values())

    def _documents(self, alias: str, fields: list[str]) -> list[dict[str, Any]]:
        name = self.index_prefix + alias
        with contextlib.suppress(Exception):
            self.es.indices.refresh(index=name)
            hits = self.es.search(index=name, size=10_000, source_includes=fields)["hits"]["hits"]
            return [{"_id": hit["_id"], **hit["_source"]} for hit in hits]
        return []

    def _running(self) -> bool:
        """True while every replica runs: one that exits before the faults is a broken setup."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                msg = f"{name} exited with {process.returncode}: see {self.workdir / name}.log"
                raise RuntimeError(msg)
        return True

    def _indexed(self) -> int:
        return len(self._documents("articles", ["title"]))

    @staticmethod
    def _retry(call: Any) -> Any:
        for attempt in range(50):
            try:
                return call()
            except (RedisError, RedisClusterException):
                if attempt == 49:
                    raise
                time.sleep(0.2)
        return None

    def close(self) -> None:
        self._stopping.set()
        # A run that failed mid-schedule: no new fault, and every one applied healed
        # (a node killed is started again) before the deployment is taken down.
        self._nemesis_stop.set()
        if self._faulting is not None:
            self._faulting.join(timeout=HEAL_SECONDS)
        try:
            self._close_deployment()
        finally:
            self._leave_redis_as_found()

    def _leave_redis_as_found(self) -> None:
        """The nodes tell their own ports again before their proxies go, so the cluster
        is left as it was found for the tests after this one."""
        try:
            if self._announced:
                _redis_cluster("announce", "0")
        finally:
            for proxy in self.redis_proxies.values():
                self.toxiproxy.delete(proxy)
            # Each replica's link went through its primary's proxy: back, and synced,
            # before a later test fails a primary over.
            _redis_cluster("start")

    def _close_deployment(self) -> None:
        for name, process in self.processes.items():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGCONT)  # a paused one must hear SIGTERM
            self.record({"event": "stopping", "replica": name})
        stop_processes(list(self.processes.values()))
        self.server.stop()
        for proxy in self.proxies.values():
            self.toxiproxy.delete(proxy)
        with contextlib.suppress(RedisError, RedisClusterException):
            for key in self.redis.scan_iter(match=f"{self.prefix}*"):
                self.redis.delete(key)
        with contextlib.suppress(Exception):
            indices = self.es.indices.get(index=f"{self.index_prefix}*", allow_no_indices=True)
            if indices:
                self.es.indices.delete(index=",".join(indices))
        self.redis.close()
        self.es.close()


def _until(probe: Any, seconds: float, what: str) -> None:
    if not _until_or_false(probe, seconds):
        msg = f"timed out waiting for {what}"
        raise TimeoutError(msg)


def _until_or_false(probe: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(1)
    return bool(probe())


def _around_proxies(address: tuple[str, int]) -> tuple[str, int]:
    host, port = address
    if port >= REDIS_PORT + REDIS_PROXY_OFFSET:
        return host, port - REDIS_PROXY_OFFSET
    return host, port


def _redis_cluster(action: str, *args: str) -> None:
    subprocess.run(
        [str(SCRIPTS / "redis-cluster.sh"), action, "cluster", str(REDIS_PORT), *args],
        check=True,
    )


def start_clusters() -> None:
    subprocess.run(
        [str(SCRIPTS / "es-cluster.sh"), "start", "cluster", str(ES_PORT), str(ES_NODES)],
        check=True,
    )
    _redis_cluster("start")
    subprocess.run(
        [str(SCRIPTS / "toxiproxy.sh"), "start", "chaos", str(TOXIPROXY_PORT)], check=True
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="make chaos", description=__doc__)
    parser.add_argument(
        "--seed", type=int, default=int(os.environ.get("CHAOS_SEED") or random.randrange(1 << 30))
    )
    parser.add_argument(
        "--minutes", type=float, default=float(os.environ.get("CHAOS_MINUTES") or 5)
    )
    parser.add_argument("--topology", choices=["cluster"], default="cluster")
    args = parser.parse_args(argv)
    start_clusters()
    plan = Plan(seed=args.seed, seconds=args.minutes * 60)
    workdir = ARTIFACTS / "chaos" / f"seed-{args.seed}-logs"
    workdir.mkdir(parents=True, exist_ok=True)
    toxiproxy = Toxiproxy(f"http://127.0.0.1:{TOXIPROXY_PORT}")
    chaos = Chaos(plan, toxiproxy, workdir)
    try:
        result = chaos.run()
    finally:
        chaos.close()
        toxiproxy.close()
    print(json.dumps(result.row(), indent=2))
    if not result.verdict.ok:
        print(json.dumps(asdict(result.verdict), indent=2), file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
