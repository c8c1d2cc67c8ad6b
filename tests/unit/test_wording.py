"""Query words in all their forms, near spellings and "Did you mean" (shared/language/wording)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.query.search import (
    FUZZY_MOST_WORDS,
    Correction,
    SearchPage,
    SearchRequest,
    build_search,
    did_you_mean,
    shape_results,
    wants_fuzzy,
)
from shared.language import wording
from shared.language.synonyms import Synonyms
from shared.language.wording import (
    MAX_OPERATORS,
    Phrase,
    Word,
    expand,
    highlight_patterns,
    loosenable,
    operators_refusal,
    parse,
)

NONE = Synonyms([])


def test_the_syntax_is_parsed_into_words_phrases_and_operators() -> None:
    assert parse('a -"b c"~2 | (d* e~1) +f') == [
        Word("a"),
        " ",
        Phrase("b c", "-", "~2"),
        " ",
        "|",
        " ",
        "(",
        Word("d", "", "*"),
        " ",
        Word("e", "", "~1"),
        ")",
        " ",
        Word("f", "+"),
    ]
    assert parse('"open') == [Phrase("open")]


def test_a_word_is_searched_as_typed_stemmed_and_folded() -> None:
    assert expand("вокзала", NONE) == "(вокзала | vokza | vokzala)"
    assert expand("Sanctions", NONE) == "(Sanctions | sanction | sanctions)"
    # A name of many tokens is a phrase in the normalised fields.
    assert expand("Нур-Султан", NONE) == '(Нур-Султан | "nur sulta" | "nur sultan")'


def test_operators_phrases_and_exclusions_keep_their_meaning() -> None:
    assert expand('"железнодорожного вокзала" | поезд -Москва', NONE) == (
        '("железнодорожного вокзала" | "jeleznodorojn vokza" | "jeleznodorojnogo vokzala")'
        " | (поезд | poezd) -(Москва | moskv | moskva)"
    )
    assert expand("(a | b) 2025 -", NONE) == "(a | b) 2025 -"
    assert expand("Oʻzb* kaza~1", NONE) == "(Oʻzb* | ozb*) kaza~1"


def test_a_place_name_brings_its_names_in_other_languages_and_scripts() -> None:
    query = expand("Ўзбекистон")
    for form in ("uzbekistan", "ozbekiston", "ozbekstan"):
        assert form in query
    assert expand("-Tashkent").startswith("-(Tashkent |")


@given(st.text())
def test_highlight_patterns_stay_within_what_elasticsearch_takes(text: str) -> None:
    assert all(len(p) <= 1000 for p in highlight_patterns(text))
    assert all(len(p) <= 1000 for p in highlight_patterns("o" * 400 + " " + "gʻ" * 300))


@given(st.text())
def test_any_text_expands_without_adding_unbalanced_syntax(text: str) -> None:
    expanded = expand(text)
    plain = text.replace("\\", "")
    assert expanded.count("(") - expanded.count(")") == plain.count("(") - plain.count(")")
    assert expanded.count('"') % 2 == 0


def test_the_second_try_allows_edits_by_word_length() -> None:
    assert expand("вокзла sanctons tax", NONE, fuzzy=True) == (
        "(вокзла~2 | vokzla~2) sanctons~2 (tax | tah)"
    )
    assert expand("Kazak", NONE, fuzzy=True) == "(Kazak~1 | kazak~1)"


def test_highlight_patterns_mark_forms_and_other_scripts_not_exclusions() -> None:
    patterns = highlight_patterns("Oʻzbekiston вокзал -Москва", NONE)
    okina = "[ʻʼʽ‘’'`´ʹ]?"
    assert f"o{okina}zbekisto{okina}n.*" in patterns  # any okina spelling, any suffix
    assert "ўзбекистон.*" in patterns  # the Cyrillic text
    assert "вокза.*" in patterns
    assert not any("моск" in p for p in patterns)


def test_few_hits_ask_for_a_fuzzy_second_try_with_a_suggestion() -> None:
    request = SearchRequest(q="Kazakstan sanctons")
    few = SearchPage(total=2, page=1, size=10, from_=1, to=2, results=[])
    assert wants_fuzzy(request, few)
    assert not wants_fuzzy(SearchRequest(), few)
    # A long text is no typo: near spellings of each of its words cost seconds. Words
    # are counted as the try would spell them: `|` joins none, a phrase spells none.
    most = FUZZY_MOST_WORDS
    assert wants_fuzzy(SearchRequest(q=" ".join(["sanctons"] * most)), few)
    assert not wants_fuzzy(SearchRequest(q=" ".join(["sanctons"] * (most + 1))), few)
    assert not wants_fuzzy(SearchRequest(q="|".join(["sanctons"] * (most + 1))), few)
    assert wants_fuzzy(SearchRequest(q=f'sanctons "{" ".join(["a"] * 20)}"'), few)
    body = build_search(request, fuzzy=True)
    near = body["query"]["bool"]["should"][1]
    assert near["simple_query_string"]["fields"] == ["title", "fold.title"]
    assert body["suggest"]["did_you_mean"]["term"]["field"] == "title"
    assert "suggest" not in build_search(request)


def test_did_you_mean_replaces_only_the_corrected_words() -> None:
    suggest: dict[str, list[Correction]] = {
        "did_you_mean": [
            {"offset": 0, "length": 9, "options": [{"text": "kazakhstan"}]},
            {"offset": 10, "length": 8, "options": [{"text": "sanctions"}]},
            {"offset": 19, "length": 3, "options": []},
        ]
    }
    assert did_you_mean("Kazakstan sanctons now", suggest) == "kazakhstan sanctions now"
    assert (
        did_you_mean("fine", {"did_you_mean": [{"offset": 0, "length": 4, "options": []}]}) is None
    )
    page = shape_results(
        {"hits": {"total": {"value": 0}}, "suggest": suggest},
        SearchRequest(q="Kazakstan sanctons now"),
    )
    assert page.did_you_mean == "kazakhstan sanctions now"


def test_the_second_try_also_takes_all_words_but_one_when_that_keeps_the_meaning() -> None:
    assert loosenable("Bobur Arena")
    assert not loosenable("Arena")
    assert not loosenable("Bobur -Arena")
    assert not loosenable("Bobur | Arena")
    should = build_search(SearchRequest(q="Bobur Arena"), fuzzy=True)["query"]["bool"]["should"]
    assert should[2]["simple_query_string"]["minimum_should_match"] == "-1"
    assert (
        len(build_search(SearchRequest(q="Bobur -Arena"), fuzzy=True)["query"]["bool"]["should"])
        == 2
    )


def test_a_word_that_folds_into_many_is_searched_as_typed() -> None:
    # U+FDFA folds to 18 letters and three spaces: 500 of them were 9,500 characters
    # and about a thousand terms, seconds of the cluster's CPU for one search.
    typed = "\ufdfa" * 255 + " " + "\ufdfa" * 244
    assert expand(typed, NONE) == typed
    assert expand(typed, NONE, fuzzy=True) == typed
    assert expand("Щука", NONE) == "(Щука | shuk | shuka)"
    assert expand('"\ufdfa"', NONE) == '"\ufdfa"'  # no empty phrase beside it


@pytest.mark.parametrize(
    ("typed", "refusal"),
    [
        ("ab* cd~ ef~1 title:* plain", None),
        ("a*", "a word ending in * needs 2 letters before it"),
        ("*", "a word ending in * needs 2 letters before it"),
        (".a*", "a word ending in * needs 2 letters before it"),  # `a*` to the index
        ("ьa*", "a word ending in * needs 2 letters before it"),  # folded: `a*`
        (" ".join(f"w{n}~" for n in range(MAX_OPERATORS + 1)), "at most 4 words may end in"),
        # Past 2 edits Elasticsearch refuses the search: a 503 here, and every saved
        # search matched with it failed, every round.
        ("tashkent~0 almaty~2", None),
        ("tashkent~3", "a word ending in ~ may differ by 0, 1 or 2 letters"),
        ("bishkek~" + "9" * 5000, "a word ending in ~ may differ by 0, 1 or 2 letters"),
        ('"in bishkek"~9', None),  # a phrase's slop is not edits
        ("tashkent~3+moscow", "a word ending in ~ may differ by 0, 1 or 2 letters"),
        ("tashkent~\uff13", "a word ending in ~ may differ by 0, 1 or 2 letters"),
    ],
)
def test_words_ending_in_a_star_or_a_tilde_are_few_and_long_enough(
    typed: str, refusal: str | None
) -> None:
    found = operators_refusal(typed)
    if refusal is None:
        assert found is None
        return
    assert found is not None
    assert found.startswith(refusal)
    with pytest.raises(ValueError, match=re.escape(found)):
        SearchRequest(q=typed)


def test_a_long_text_of_repeated_names_is_worked_out_once_per_word(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 490 characters of place names took 25 ms to expand and 110 to mark for each search
    # (every name's spellings over and over, then all but 24 patterns thrown away):
    # within the rate limit, one client held the event loop for everyone.
    made: list[str] = []
    pattern = wording._pattern

    def counted(word: str) -> str:
        made.append(word)
        return pattern(word)

    monkeypatch.setattr(wording, "_pattern", counted)
    wording._word_patterns.cache_clear()
    names = ["Kyrgyzstan", "Astana", "uz", "сом", "Тәжік"] * 14
    patterns = highlight_patterns(" ".join(names))

    assert len(patterns) == wording.MAX_HIGHLIGHT_PATTERNS
    # A word and its other script each once, none past the cut: 34 here, 1,288 before.
    assert len(made) <= 2 * wording.MAX_HIGHLIGHT_PATTERNS
