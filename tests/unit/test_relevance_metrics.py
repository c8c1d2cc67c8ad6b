"""The relevance bench's measures (bench/relevance/metrics.py) on hand-computed cases."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest

from bench.relevance.metrics import ndcg, recall

JUDGMENTS = Path(__file__).resolve().parents[2] / "bench" / "relevance" / "judgments.toml"


def test_ndcg_is_one_for_the_ideal_order_and_discounts_later_ranks() -> None:
    judged = {"a": 2, "b": 1}
    assert ndcg(["a", "b", "x"], judged) == 1.0
    swapped = (1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3))
    assert ndcg(["b", "a"], judged) == pytest.approx(swapped)
    assert ndcg(["x"], judged) == 0.0


def test_recall_counts_relevant_documents_in_the_first_k() -> None:
    assert recall(["a", "x"], {"a": 2, "b": 1, "c": 0}) == 0.5
    assert recall(["x"] * 10 + ["a"], {"a": 1}, k=10) == 0.0


def test_the_judged_set_covers_the_languages_with_a_held_out_part() -> None:
    queries = tomllib.loads(JUDGMENTS.read_text(encoding="utf-8"))["query"]
    assert len(queries) >= 60
    assert {q["language"] for q in queries} == {"ru", "en", "uz", "uz-Cyrl", "kk"}
    for split in ("dev", "heldout"):
        assert {q["language"] for q in queries if q["split"] == split} == {
            "ru",
            "en",
            "uz",
            "uz-Cyrl",
            "kk",
        }
    assert all(q["relevant"] and set(q["relevant"].values()) <= {1, 2} for q in queries)
