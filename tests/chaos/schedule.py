"""The nemesis's schedule: which faults, where and when, drawn from a seed alone.

Pure: the same seed, duration and targets give the same schedule on any machine,
so a run that found something is replayed with `CHAOS_SEED=…`. What it draws from:

- a service replica SIGKILLed (restarted after the window) or SIGSTOPped
  (resumed after it; windows up to 12 s, longer than the 4 s lease and the
  indexer's claim idle time);
- the Redis primary of the deployment's slot SIGKILLed, or SIGSTOPped past
  `cluster-node-timeout` (2 s): its replica is promoted, and the old primary comes
  back stale and is demoted;
- an Elasticsearch node (any, the elected master included) SIGKILLed or SIGSTOPped;
- TCP faults through toxiproxy on the services' links to one Elasticsearch node, or
  to the Redis primary of the deployment's slot (its replica's replication link
  too; the cluster bus stays whole, so no failover): latency, connection resets,
  a black hole, and a one-way partition (requests reach the node, answers never
  come back).

Several faults overlap, within what the topology is built to survive and what a
checker can judge: at most one replica of each service, one Elasticsearch node
and one Redis primary are faulted at a time, so one replica of every service and
a majority of each cluster stay. A window always ends (healed) before the run's
quiet tail, in which the checker waits for everything to settle.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal, get_args

Kind = Literal[
    "kill",
    "pause",
    "redis-kill",
    "redis-pause",
    "es-kill",
    "es-pause",
    "es-latency",
    "es-reset",
    "es-blackhole",
    "es-one-way",
    "redis-latency",
    "redis-reset",
    "redis-blackhole",
    "redis-one-way",
]
KINDS: tuple[Kind, ...] = get_args(Kind)
# How often each is drawn: process faults most, as in production.
WEIGHTS: dict[Kind, int] = {
    "kill": 4,
    "pause": 4,
    "redis-kill": 1,
    "redis-pause": 1,
    "es-kill": 1,
    "es-pause": 2,
    "es-latency": 1,
    "es-reset": 1,
    "es-blackhole": 1,
    "es-one-way": 1,
    "redis-latency": 1,
    "redis-reset": 1,
    "redis-blackhole": 1,
    "redis-one-way": 1,
}


@dataclass(frozen=True)
class Fault:
    at: float
    """Seconds from the start of the run."""
    kind: Kind
    target: str
    """A replica (`indexer-a`), `redis` (the slot's primary, found when applied), or
    an Elasticsearch node's number (`2`)."""
    seconds: float
    """How long until it is healed."""

    @property
    def ends(self) -> float:
        return self.at + self.seconds

    @property
    def resource(self) -> str:
        """What may be faulted once at a time: a service, Redis, or Elasticsearch."""
        if self.kind.startswith("redis"):
            return "redis"
        if self.kind.startswith("es-"):
            return "elasticsearch"
        return self.target.rsplit("-", 1)[0]

    def as_dict(self) -> dict[str, object]:
        return {"at": self.at, "kind": self.kind, "target": self.target, "seconds": self.seconds}


def draw(
    seed: int, seconds: float, replicas: tuple[str, ...], es_nodes: int, quiet: float
) -> list[Fault]:
    """The faults of a run of `seconds`, the last healed `quiet` seconds before its end."""
    rng = random.Random(seed)
    faults: list[Fault] = []
    busy: dict[str, float] = {}  # resource -> when its fault ends
    now = rng.uniform(2, 5)
    while now < seconds - quiet:
        kind = rng.choices(KINDS, weights=[WEIGHTS[k] for k in KINDS])[0]
        length = round(rng.uniform(2, 12), 1)
        target = _target(rng, kind, replicas, es_nodes)
        fault = Fault(round(now, 1), kind, target, length)
        if busy.get(fault.resource, 0) <= now and fault.ends <= seconds - quiet:
            faults.append(fault)
            busy[fault.resource] = fault.ends
        now += rng.uniform(1, 6)
    return faults


def _target(rng: random.Random, kind: Kind, replicas: tuple[str, ...], es_nodes: int) -> str:
    if kind in ("kill", "pause"):
        return rng.choice(replicas)
    if kind.startswith("redis"):
        return "redis"
    return str(rng.randint(1, es_nodes))
