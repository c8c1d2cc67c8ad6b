"""The chaos run's verdict, from the history and the final state alone.

Pure: what the sources showed (the workload's truth), what the index, the streams
and the dead letters hold at the end, and the query probes: never the services'
own counters. A clean verdict is: every article a source showed long enough to be
read is searchable exactly once, at the latest version shown; every quote the bank
showed is in the index with its exact value; nothing is indexed that no source
showed; the poison, and only the poison, is dead-lettered, each exactly once;
nothing is left pending; no lease accepted a write of an older holder after a newer
holder's (fencing).
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import pairwise
from typing import Any

from tests.chaos.schedule import Fault


@dataclass(frozen=True)
class Truth:
    articles: dict[str, str]
    """guid -> the title of the latest version shown (a version marker in it)."""
    quotes: dict[tuple[str, str], Decimal]
    """(currency, as-of date) -> X/USD, exactly, for the days the bank showed."""
    poison: frozenset[str]
    """Entry ids of what was added to the article stream as poison."""


@dataclass(frozen=True)
class Final:
    articles: list[dict[str, Any]]
    """Every article document: `_id`, `guid`, `title`."""
    quotes: list[dict[str, Any]]
    """Every quote document: `_id`, `base`, `as_of`, `rate` (as a string)."""
    dead_letters: list[tuple[str, str]]
    """(entry_id, error_class) of every dead letter."""
    pending: int
    stream_lengths: dict[str, int]
    maxlen: int
    fencing: dict[str, list[int]] = field(default_factory=dict)
    """Per lease (an ingest source, the rate feed's providers): the fencing token of each
    write accepted through it, in the order Redis accepted them (CARAVAN_LEASE_AUDIT)."""


@dataclass(frozen=True)
class Probe:
    at: float
    ok: bool
    seconds: float


@dataclass
class Verdict:
    lost: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    quotes_missing: list[str] = field(default_factory=list)
    quotes_wrong: list[str] = field(default_factory=list)
    quotes_duplicated: list[str] = field(default_factory=list)
    poison_missing: list[str] = field(default_factory=list)
    poison_repeated: list[str] = field(default_factory=list)
    dead_lettered_wrongly: list[str] = field(default_factory=list)
    pending: int = 0
    overlong: list[str] = field(default_factory=list)
    unfenced: list[str] = field(default_factory=list)
    """Leases under which a write of an older token was accepted after a newer one's."""

    @property
    def ok(self) -> bool:
        return not any(
            (
                self.lost,
                self.stale,
                self.duplicated,
                self.unexpected,
                self.quotes_missing,
                self.quotes_wrong,
                self.quotes_duplicated,
                self.poison_missing,
                self.poison_repeated,
                self.dead_lettered_wrongly,
                self.pending,
                self.overlong,
                self.unfenced,
            )
        )


def check(truth: Truth, final: Final) -> Verdict:
    verdict = Verdict(pending=final.pending)
    by_guid: dict[str, list[dict[str, Any]]] = {}
    for doc in final.articles:
        by_guid.setdefault(doc["guid"], []).append(doc)
    for guid, title in sorted(truth.articles.items()):
        docs = by_guid.get(guid, [])
        if not docs:
            verdict.lost.append(guid)
        elif len(docs) > 1:
            verdict.duplicated.append(guid)
        elif docs[0]["title"] != title:
            verdict.stale.append(f"{guid}: {docs[0]['title']!r}, not {title!r}")
    verdict.unexpected = sorted(set(by_guid) - set(truth.articles))
    ids = Counter(doc["_id"] for doc in final.articles)
    verdict.duplicated += sorted(i for i, n in ids.items() if n > 1)

    stored: dict[tuple[str, str], list[Decimal]] = {}
    for doc in final.quotes:
        stored.setdefault((doc["base"], doc["as_of"]), []).append(Decimal(str(doc["rate"])))
    for key, rate in sorted(truth.quotes.items()):
        found = stored.get(key, [])
        name = f"{key[0]} {key[1]}"
        if not found:
            verdict.quotes_missing.append(name)
        elif len(found) > 1:
            verdict.quotes_duplicated.append(name)
        elif found[0] != rate:
            verdict.quotes_wrong.append(f"{name}: {found[0]}, not {rate}")

    lettered = Counter(entry for entry, _ in final.dead_letters)
    verdict.poison_missing = sorted(truth.poison - set(lettered))
    verdict.poison_repeated = sorted(e for e in truth.poison if lettered[e] > 1)
    verdict.dead_lettered_wrongly = sorted(
        f"{entry} ({kind})" for entry, kind in final.dead_letters if entry not in truth.poison
    )
    verdict.unfenced = sorted(
        f"{lease}: {a} after {b}"
        for lease, tokens in final.fencing.items()
        for b, a in pairwise(tokens)
        if a < b
    )
    # Trimmed by MAXLEN ~ (approximate: a node's worth of slack).
    verdict.overlong = sorted(
        f"{stream}: {length}"
        for stream, length in final.stream_lengths.items()
        if length > final.maxlen + 100
    )
    return verdict


def availability(probes: list[Probe], faults: list[Fault]) -> dict[str, dict[str, float]]:
    """Per fault kind (`none`: outside every window; `all`: the whole run): the share of
    probes answered, and the answered ones' p50 and p99 latency in ms."""
    windows: dict[str, list[Probe]] = {"all": list(probes)} if probes else {}
    for probe in probes:
        kinds: set[str] = {f.kind for f in faults if f.at <= probe.at < f.ends} or {"none"}
        for kind in kinds:
            windows.setdefault(kind, []).append(probe)
    table: dict[str, dict[str, float]] = {}
    for kind, seen in sorted(windows.items()):
        answered = sorted(p.seconds * 1000 for p in seen if p.ok)
        table[kind] = {
            "probes": len(seen),
            "available": round(len(answered) / len(seen), 4),
            "p50_ms": round(statistics.median(answered), 1) if answered else 0.0,
            "p99_ms": round(_percentile(answered, 0.99), 1) if answered else 0.0,
        }
    return table


def _percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
