"""The benchmark's metric: 4-token shingles with multiplicity, mean precision and recall."""

from __future__ import annotations

import pytest

from bench.extraction import part_of
from bench.extraction_metric import (
    Counts,
    Snippets,
    page_counts,
    score,
    shingles,
    snippet_counts,
    snippet_score,
)


def test_shingles_are_four_tokens_case_kept_with_multiplicity() -> None:
    got = shingles("A b, c d. a b c d")
    assert got[("A", "b", "c", "d")] == 1
    assert got[("a", "b", "c", "d")] == 1
    assert got[("b", "c", "d", "a")] == 1
    assert sum(got.values()) == 5
    assert not shingles("only three words")


def test_page_counts_split_shared_predicted_only_and_truth_only() -> None:
    truth = "one two three four five six"
    prediction = "one two three four five seven"
    assert page_counts(truth, prediction) == Counts(tp=2, fp=1, fn=1)
    assert page_counts("w x y z w x y z", "w x y z") == Counts(tp=1, fp=0, fn=4)


def test_both_empty_counts_one_and_an_empty_prediction_zero() -> None:
    assert (Counts(0, 0, 0).precision, Counts(0, 0, 0).recall) == (1.0, 1.0)
    assert (Counts(0, 0, 3).precision, Counts(0, 0, 3).recall) == (0.0, 0.0)


def test_score_averages_pages_then_takes_f1_of_the_means() -> None:
    result = score([Counts(tp=1, fp=1, fn=0), Counts(tp=3, fp=0, fn=1)])
    assert result.precision == pytest.approx((0.5 + 1.0) / 2)
    assert result.recall == pytest.approx((1.0 + 0.75) / 2)
    p, r = 0.75, 0.875
    assert result.f1 == pytest.approx(2 * p * r / (p + r))
    assert result.pages == 2


def test_the_split_depends_on_the_key_alone_and_holds_out_about_a_third() -> None:
    keys = [f"page-{n}" for n in range(300)]
    parts = [part_of(key) for key in keys]
    assert parts == [part_of(key) for key in keys]
    assert 70 < parts.count("held-out") < 130


def test_snippets_found_missed_and_unwanted() -> None:
    text = "The river rose overnight. Subscribe to our newsletter."
    assert snippet_counts(text, ["river rose", "dam held"], ["newsletter", "cookies"]) == Snippets(
        found=1, missed=1, unwanted=1
    )


def test_snippet_score_sums_the_pages_before_dividing() -> None:
    scored = snippet_score([Snippets(3, 1, 0), Snippets(1, 0, 1)])
    assert scored.precision == pytest.approx(4 / 5)
    assert scored.recall == pytest.approx(4 / 5)
    assert scored.f1 == pytest.approx(4 / 5)
    assert scored.pages == 2
    assert snippet_score([Snippets(0, 2, 1)]).f1 == 0.0
