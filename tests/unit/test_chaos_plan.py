"""The chaos run's pure parts: a schedule from a seed alone, and the checker's verdict."""

from __future__ import annotations

from decimal import Decimal

from tests.chaos.checker import Final, Probe, Truth, availability, check
from tests.chaos.schedule import KINDS, Fault, draw
from tests.chaos.workload import LIFETIME, quotes, version

REPLICAS = ("ingest-a", "ingest-b", "indexer-a", "indexer-b")


def test_a_seed_gives_the_same_schedule_and_another_seed_another() -> None:
    assert draw(7, 600, REPLICAS, 3, 20) == draw(7, 600, REPLICAS, 3, 20)
    assert draw(7, 600, REPLICAS, 3, 20) != draw(8, 600, REPLICAS, 3, 20)


def test_faults_overlap_only_where_the_topology_survives_and_end_before_the_quiet_tail() -> None:
    faults = draw(3, 1800, REPLICAS, 3, 20)
    assert {f.kind for f in faults} == set(KINDS)
    assert all(f.ends <= 1800 - 20 for f in faults)
    for one in faults:
        overlapping = [f for f in faults if f is not one and f.at < one.ends and one.at < f.ends]
        assert one.resource not in {f.resource for f in overlapping}
    assert any(f.at < g.ends and g.at < f.ends for f in faults for g in faults if f is not g)


def test_an_items_latest_version_is_listed_at_least_three_epochs() -> None:
    for item in range(40, 60):
        epochs = [e for e in range(100) if item // 2 - LIFETIME < e <= item // 2]
        latest = version(item, epochs[-1])
        assert sum(1 for e in epochs if version(item, e) == latest) >= 3


def test_the_verdict_names_what_is_lost_stale_doubled_or_dead_lettered_wrongly() -> None:
    day = quotes(0)
    truth = Truth({"a": "A v2", "b": "B v1", "c": "C v1"}, day, frozenset({"9-0"}))
    (key, rate), *others = sorted(day.items())
    final = Final(
        articles=[
            {"_id": "1", "guid": "a", "title": "A v1"},
            {"_id": "2", "guid": "b", "title": "B v1"},
            {"_id": "3", "guid": "b", "title": "B v1"},
            {"_id": "4", "guid": "z", "title": "Z"},
        ],
        quotes=[{"_id": "q", "base": key[0], "as_of": key[1], "rate": str(rate + Decimal("1E-9"))}],
        dead_letters=[("9-0", "InvalidJson"), ("5-0", "Elasticsearch400")],
        pending=2,
        stream_lengths={"s": 99_999},
        maxlen=20_000,
        fencing={"ingest:feed-1": [1, 1, 2, 3], "ratefeed:providers": [4, 5, 4]},
    )

    verdict = check(truth, final)

    assert not verdict.ok
    assert verdict.lost == ["c"]
    assert verdict.stale == ["a: 'A v1', not 'A v2'"]
    assert verdict.duplicated == ["b"]
    assert verdict.unexpected == ["z"]
    assert verdict.quotes_wrong == [f"{key[0]} {key[1]}: {rate + Decimal('1E-9')}, not {rate}"]
    assert len(verdict.quotes_missing) == len(others)
    assert verdict.dead_lettered_wrongly == ["5-0 (Elasticsearch400)"]
    assert verdict.poison_missing == []
    assert verdict.pending == 2
    assert verdict.overlong == ["s: 99999"]
    assert verdict.unfenced == ["ratefeed:providers: 4 after 5"]


def test_availability_is_counted_per_fault_window() -> None:
    faults = [Fault(10, "kill", "query-a", 5)]
    probes = [Probe(1, True, 0.01), Probe(11, True, 0.02), Probe(12, False, 2.0)]
    table = availability(probes, faults)
    assert table["all"]["probes"] == 3
    assert table["none"]["available"] == 1.0
    assert table["kill"] == {"probes": 2, "available": 0.5, "p50_ms": 20.0, "p99_ms": 20.0}
