"""nDCG@k and recall@k of one ranked list against graded judgments: pure functions."""

from __future__ import annotations

import math


def dcg(grades: list[int]) -> float:
    return sum((2.0**grade - 1) / math.log2(rank + 2) for rank, grade in enumerate(grades))


def ndcg(ranked: list[str], judged: dict[str, int], k: int = 10) -> float:
    ideal = dcg(sorted(judged.values(), reverse=True)[:k])
    return dcg([judged.get(doc, 0) for doc in ranked[:k]]) / ideal if ideal else 0.0


def recall(ranked: list[str], judged: dict[str, int], k: int = 10) -> float:
    """Share of the relevant documents (grade ≥ 1) found in the first k."""
    relevant = {doc for doc, grade in judged.items() if grade > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0
