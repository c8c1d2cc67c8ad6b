"""The article extraction benchmark's metric (Scrapinghub/Zyte), as its README states it; pure.

Tokens are the `\\w+` matches of a text, case kept. Per page, the 4-token shingles of
the truth and of the prediction are counted with multiplicity: TP = shared, FP =
predicted only, FN = truth only. Precision is the mean over pages of TP/(TP+FP), recall
the mean of TP/(TP+FN), a page where both texts are empty counting 1; F1 = 2PR/(P+R)
of the two means.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

_TOKEN = re.compile(r"\w+")
SHINGLE = 4


@dataclass(frozen=True)
class Counts:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        if self.tp == self.fp == self.fn == 0:
            return 1.0
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        if self.tp == self.fp == self.fn == 0:
            return 1.0
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0


@dataclass(frozen=True)
class Score:
    f1: float
    precision: float
    recall: float
    pages: int


def shingles(text: str, size: int = SHINGLE) -> Counter[tuple[str, ...]]:
    tokens = _TOKEN.findall(text)
    return Counter(tuple(tokens[i : i + size]) for i in range(len(tokens) - size + 1))


def page_counts(truth: str, prediction: str) -> Counts:
    expected, got = shingles(truth), shingles(prediction)
    return Counts(
        tp=(expected & got).total(), fp=(got - expected).total(), fn=(expected - got).total()
    )


def score(pages: Iterable[Counts]) -> Score:
    counted = list(pages)
    if not counted:
        return Score(f1=0.0, precision=0.0, recall=0.0, pages=0)
    precision = sum(c.precision for c in counted) / len(counted)
    recall = sum(c.recall for c in counted) / len(counted)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Score(f1=f1, precision=precision, recall=recall, pages=len(counted))


@dataclass(frozen=True)
class Snippets:
    """trafilatura's own evaluation rule for one page: of its snippets that belong to the
    article, how many the text holds (found) or lacks (missed); of those that do not
    belong, how many it holds (unwanted)."""

    found: int
    missed: int
    unwanted: int


def snippet_counts(text: str, wanted: Iterable[str], unwanted: Iterable[str]) -> Snippets:
    inside = [snippet in text for snippet in wanted]
    return Snippets(
        found=sum(inside),
        missed=len(inside) - sum(inside),
        unwanted=sum(snippet in text for snippet in unwanted),
    )


def snippet_score(pages: Iterable[Snippets]) -> Score:
    """Precision, recall and F1 of the snippets counted over all pages together, as
    trafilatura's evaluation reports them."""
    counted = list(pages)
    found = sum(p.found for p in counted)
    precision = found / (found + sum(p.unwanted for p in counted)) if found else 0.0
    recall = found / (found + sum(p.missed for p in counted)) if found else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Score(f1=f1, precision=precision, recall=recall, pages=len(counted))
