"""The region's scripts, word forms and place names (shared/language): pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.language.analysis import fold_text, stem_prefix, stem_text, words
from shared.language.scripts import (
    fold,
    kazakh_to_cyrillic,
    kazakh_to_latin,
    uzbek_to_cyrillic,
    uzbek_to_latin,
)
from shared.language.synonyms import Synonyms

OKINA_SPELLINGS = [
    "Oʻzbekiston",
    "O'zbekiston",
    "O‘zbekiston",
    "O’zbekiston",
    "Oʼzbekiston",
    "O`zbekiston",
    "Ozbekiston",
]


@pytest.mark.parametrize(
    ("cyrillic", "latin"),
    [
        ("Ўзбекистон", "Oʻzbekiston"),
        ("Ғалаба", "Gʻalaba"),
        ("Тошкент шаҳри", "Toshkent shahri"),
        ("Қорақалпоғистон", "Qoraqalpogʻiston"),
        ("Европа", "Yevropa"),
        ("Эргаш", "Ergash"),
        ("маъмурий", "maʼmuriy"),
        ("ШАҲАР", "SHAHAR"),
    ],
)
def test_uzbek_both_ways(cyrillic: str, latin: str) -> None:
    assert uzbek_to_latin(cyrillic) == latin
    assert uzbek_to_cyrillic(latin) == cyrillic


@pytest.mark.parametrize("spelling", OKINA_SPELLINGS[:-1])
def test_every_okina_look_alike_transliterates_as_the_okina(spelling: str) -> None:
    assert uzbek_to_cyrillic(spelling) == "Ўзбекистон"


@pytest.mark.parametrize(
    ("cyrillic", "latin"),
    [
        ("Қазақстан", "Qazaqstan"),
        ("теңге", "teñge"),
        ("Жаңаөзен", "Jañaözen"),
        ("Шымкент", "Şymkent"),
        ("Үкімет", "Ükımet"),
    ],
)
def test_kazakh_both_ways(cyrillic: str, latin: str) -> None:
    assert kazakh_to_latin(cyrillic) == latin
    assert kazakh_to_cyrillic(latin) == cyrillic


@pytest.mark.parametrize(
    "spellings",
    [
        [*OKINA_SPELLINGS, "Ўзбекистон", "ЎЗБЕКИСТОН"],
        ["Aktau", "Актау", "Ақтау", "Aqtau"],
        ["Tokayev", "Токаев", "Тоқаев"],
        ["tenge", "теңге", "тенге", "teñge"],
        ["Zhanaozen", "Жаңаөзен", "Jañaözen"],
        ["Xorazm", "Хоразм", "Khorazm"],
        ["Kazakhstan", "Казахстан"],
    ],
)
def test_spellings_of_one_word_fold_alike(spellings: list[str]) -> None:
    assert len({fold(s) for s in spellings}) == 1, {s: fold(s) for s in spellings}


@given(st.text())
def test_fold_is_idempotent_and_never_raises(text: str) -> None:
    assert fold(fold(text)) == fold(text)


def test_words_keep_the_okina_inside_and_split_on_hyphens() -> None:
    assert words("«Oʻzbekiston» — Нур-Султан, O‘zbek 2025!") == [
        "Oʻzbekiston",
        "Нур",
        "Султан",
        "O‘zbek",
        "2025",
    ]


def test_word_forms_meet_in_the_stem_field() -> None:
    assert stem_text("…с железнодорожного вокзала") == stem_text("С железнодорожный вокзал")
    assert stem_text("Counter Sanctions") == stem_text("counter sanction")
    assert stem_text("Ўзбекистон") == stem_text("Oʻzbekiston")


def test_the_fold_field_is_the_text_in_one_script_unstemmed() -> None:
    assert fold_text("Ўзбекистон банки") == fold_text("O'zbekiston banki") == "ozbekiston banki"


def test_the_stem_prefix_is_what_every_form_starts_with() -> None:
    assert stem_prefix("countries") == "countri"
    assert stem_prefix("Country") == "countr"
    assert stem_prefix("вокзала") == "вокза"


def test_bundled_names_are_found_by_any_spelling_or_form() -> None:
    places = Synonyms.bundled()
    for spelling in ["Uzbekistan", "Узбекистана", "Ўзбекистон", *OKINA_SPELLINGS]:
        assert "Ўзбекистон" in places.names_for(spelling), spelling
    assert "Қазақстан" in places.names_for("Kazakhstan’s")
    assert "Astana" in places.names_for("Нур-Султан")
    assert "KZT" in places.names_for("теңге")
    assert places.names_for("banana") == ()


def test_a_name_in_two_groups_brings_both() -> None:
    places = Synonyms.parse('[c]\na = ["som", "сом"]\nb = ["sum", "сўм"]\n')
    # сўм folds to "som": Uzbek and Kyrgyz money are one word to a reader in Latin.
    assert set(places.names_for("som")) == {"som", "сом", "sum", "сўм"}
