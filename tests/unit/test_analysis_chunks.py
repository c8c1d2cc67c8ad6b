"""The `stem` and `fold` fields, from known chunks or from a batch's new ones, are exactly
each word's tokens, whatever else is in the batch, and the kept tokens stay bounded."""

from __future__ import annotations

import sys
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.language import analysis
from shared.language._chunks import ChunkTable
from shared.language.analysis import analyse, fold_text, stem_text, stem_token, words
from shared.language.scripts import OKINA_MARKS, fold, fold_many

# Letters of the region's scripts, digits, okina look-alikes, every kind of
# whitespace str.split knows, underscores, punctuation, combining marks, and letters
# whose lower case depends on what is around them (Σ) or is longer (İ).
ALPHABET = (
    "abcxyzKHQ0129_-.,«»“”…"
    "вокзалаЁёҚқЎўҒғҲҳәӘьъ"
    + OKINA_MARKS
    + " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2028\u2029\u202f\u3000"
    + "\u0301\u0308ǣß½²ΣσςΟΔİ"
)
TEXTS = st.text(alphabet=ALPHABET, max_size=300)


def _word_by_word(text: str) -> tuple[str, str]:
    found = words(text)
    return (
        " ".join(filter(None, map(stem_token, found))),
        " ".join(filter(None, map(fold, found))),
    )


@settings(max_examples=500)
@given(TEXTS)
def test_every_path_gives_each_words_tokens(text: str) -> None:
    expected = _word_by_word(text)
    analysis.clear_caches()
    assert analyse([text]) == [expected]  # its chunks and words new
    assert analyse([text]) == [expected]  # from the chunks kept
    analysis.clear_caches()
    assert (stem_text(text), fold_text(text)) == expected


@settings(max_examples=200)
@given(st.lists(TEXTS, max_size=6), st.booleans())
def test_a_batch_gives_each_text_what_it_gives_alone(texts: list[str], warm: bool) -> None:
    alone = [_word_by_word(text) for text in texts]
    analysis.clear_caches()
    if warm:
        analyse(texts[::2])  # some of the chunks known, others not
    assert analyse(texts) == alone


@settings(max_examples=1000)
@given(st.lists(st.text(max_size=12) | st.text(alphabet=ALPHABET.replace("\n", ""), max_size=12)))
def test_folding_words_together_is_folding_each(found: list[str]) -> None:
    # Any words but those with a newline (analyse's never have one).
    found = [word.replace("\n", "") for word in found]
    assert fold_many(found) == [fold.__wrapped__(word) for word in found]


def test_long_words_and_text_past_the_bound_are_left_out_alike() -> None:
    text = f"short {'x' * 300} {'ё' * 256}, also " * 3 + "tail " * analysis.MAX_ANALYSED_CHARS
    analysis.clear_caches()
    assert analyse([text, text]) == [_word_by_word(text)] * 2


def test_recurring_chunks_and_words_are_kept() -> None:
    analysis.clear_caches()
    text = "the council met, and the council voted"
    analyse([text])
    assert {c.decode() for c in analysis._chunks.kept()[0]} == set(text.split())
    assert set(analysis._words[0]) == set(words(text))


def test_what_is_kept_is_bounded() -> None:
    analysis.clear_caches()
    per = analysis._PER_GENERATION
    for start in range(0, 3 * per, per // 2):
        analyse([" ".join(f"w{n}" for n in range(start, start + per // 2))])
    for kept in (*analysis._chunks.kept(), *analysis._words, *analysis._older_words):
        assert len(kept) <= per
    long_chunk = "y" * (analysis._KEPT_CHUNK_BYTES + 1)
    long_word = "z" * (analysis._KEPT_WORD_CHARS + 1)
    assert analyse([long_chunk, f"{long_word}."]) == [
        (stem_token(long_chunk), fold(long_chunk)),
        (stem_token(long_word), fold(long_word)),
    ]
    assert long_chunk.encode() not in analysis._chunks.kept()[0]
    assert long_word not in analysis._words[0]


def test_lone_surrogates_are_split_as_their_utf8_with_surrogatepass() -> None:
    # Text decoded with surrogateescape or from a JSON \ud800 escape can hold them.
    texts = ["a\ud800b c", "\udcff", "вок\ud83dзал x"]
    analysis.clear_caches()
    assert analyse(texts) == [_word_by_word(text) for text in texts]
    assert analyse(texts) == [_word_by_word(text) for text in texts]


def test_threads_sharing_small_tables_each_get_their_texts_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Generations of four entries (chunks and words) turn over on every call, while other
    # threads read them and add to them (the indexer's decoding thread and a saved-search
    # check, say).
    monkeypatch.setattr(analysis, "_PER_GENERATION", 4)
    analysis.clear_caches()
    table = ChunkTable(analysis.MAX_ANALYSED_CHARS, 64, 128, 4)
    texts = [f"w{n} common, w{n + 1} v{n % 7}." for n in range(200)]
    expected = [_word_by_word(text) for text in texts]
    start = threading.Barrier(4)
    failures: list[object] = []

    def work(offset: int) -> None:
        start.wait()
        for round_ in range(150):
            at = (offset * 17 + round_ * 5) % len(texts)
            batch = texts[at : at + 7]
            try:
                if table.analyse(batch, analysis._new_chunks_tokens) != expected[at : at + 7]:
                    failures.append(at)
            except Exception as exc:  # a thread's own would not fail the test
                failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns inside `make`, between the locks
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert failures == []
    newest, older = table.kept()
    assert len(newest) <= 4
    assert len(older) <= 4


def test_a_make_that_answers_for_other_chunks_fails_the_call() -> None:
    table = ChunkTable(analysis.MAX_ANALYSED_CHARS, 64, 128, 16)
    with pytest.raises(ValueError, match="other chunks"):
        table.analyse(["two chunks"], lambda new: (["x "], ["x "]))
    assert table.kept() == ([], [])
