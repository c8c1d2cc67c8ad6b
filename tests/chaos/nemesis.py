"""Applies the schedule's faults to the running deployment, and heals them.

Each fault is applied when its time comes and healed `seconds` later, in threads of
its own, so that overlapping faults overlap and a slow heal (an Elasticsearch node
starting again takes tens of seconds) holds up nothing else. What was done, and
when, goes to the history.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos.schedule import Fault
from tests.faults.conftest import SCRIPTS
from tests.faults.proxy import Proxy, Toxic
from tests.processes import local_dir

Record = Callable[[dict[str, object]], None]


@dataclass
class Targets:
    """What the nemesis can reach: the replicas, the clusters, the proxies."""

    stop_replica: Callable[[str, signal.Signals], None]
    restart_replica: Callable[[str], None]
    redis_primary: Callable[[], int]
    """The node number (1..6) of the primary serving the deployment's slot now."""
    redis_port: int
    es_port: int
    proxies: dict[int, Proxy]
    """Elasticsearch node number -> the proxy the services reach it through."""
    redis_proxies: dict[int, Proxy]
    """Redis node number -> the proxy its clients and replica reach it through."""


@dataclass
class Nemesis:
    targets: Targets
    record: Record
    started: float
    _threads: list[threading.Thread] = field(default_factory=list)

    def run(self, faults: list[Fault], stopping: threading.Event) -> None:
        """Apply each fault at its time (until `stopping`), then wait for every heal."""
        for fault in faults:
            if stopping.wait(max(0.0, self.started + fault.at - time.monotonic())):
                break
            thread = threading.Thread(target=self._inject, args=(fault,), daemon=True)
            thread.start()
            self._threads.append(thread)
        for thread in self._threads:
            thread.join()

    def _inject(self, fault: Fault) -> None:
        heal = self._apply(fault)
        self.record({"event": "fault", **fault.as_dict(), "applied": self._now()})
        time.sleep(fault.seconds)
        heal()
        self.record({"event": "healed", **fault.as_dict(), "healed": self._now()})

    def _now(self) -> float:
        return round(time.monotonic() - self.started, 2)

    def _apply(self, fault: Fault) -> Callable[[], None]:
        t = self.targets
        if fault.kind == "kill":
            t.stop_replica(fault.target, signal.SIGKILL)
            return lambda: t.restart_replica(fault.target)
        if fault.kind == "pause":
            t.stop_replica(fault.target, signal.SIGSTOP)
            return lambda: t.stop_replica(fault.target, signal.SIGCONT)
        if fault.kind.startswith("redis-"):
            node = t.redis_primary()
            self.record({"event": "redis-primary", "node": node, "at": self._now()})
            if fault.kind not in ("redis-kill", "redis-pause"):
                return _toxics(t.redis_proxies[node], fault)
            if fault.kind == "redis-kill":
                _cluster_script("redis-cluster.sh", "kill-node", t.redis_port, node)
                return lambda: _cluster_script("redis-cluster.sh", "start-node", t.redis_port, node)
            return _paused(
                _pid(local_dir() / "cluster" / "redis-cluster" / str(node) / "redis.pid")
            )
        node = int(fault.target)
        if fault.kind == "es-kill":
            _cluster_script("es-cluster.sh", "kill-node", t.es_port, node)
            return lambda: _cluster_script("es-cluster.sh", "start-node", t.es_port, node)
        if fault.kind == "es-pause":
            return _paused(_pid(local_dir() / "cluster" / f"es-{node}" / "es.pid"))
        return _toxics(t.proxies[node], fault)


def _toxics(proxy: Proxy, fault: Fault) -> Callable[[], None]:
    toxics: list[Toxic]
    link_fault = fault.kind.split("-", 1)[1]
    if link_fault == "latency":
        toxics = [proxy.latency(1500, jitter_ms=500)]
    elif link_fault == "reset":
        toxics = [proxy.reset_peer(after_ms=50)]
    elif link_fault == "blackhole":
        toxics = [proxy.timeout(stream="upstream"), proxy.timeout(stream="downstream")]
    else:  # one-way: requests reach the node, its answers never come back
        toxics = [proxy.timeout(stream="downstream")]

    # toxiproxy drops what a black hole swallows, where TCP would deliver it late. A
    # replica's replication stream that went on past such a gap would skip writes
    # unnoticed: its connections are closed before the toxics go (no byte passes after
    # the gap), and the replica resyncs from what it applied.
    closes = fault.kind in ("redis-blackhole", "redis-one-way")

    def heal() -> None:
        if closes:
            proxy.disable()
        try:
            for toxic in toxics:
                proxy.remove(toxic)
        finally:
            if closes:
                proxy.enable()

    return heal


def _paused(pid: int) -> Callable[[], None]:
    os.kill(pid, signal.SIGSTOP)
    return lambda: os.kill(pid, signal.SIGCONT)


def _pid(pidfile: Path) -> int:
    return int(pidfile.read_text().strip())


def _cluster_script(script: str, action: str, port: int, node: int) -> None:
    subprocess.run([str(SCRIPTS / script), action, "cluster", str(port), str(node)], check=True)
