"""The region's scripts, word forms and place names (shared/language): pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.language.analysis import fold_text, stem_prefix, stem_text, words
from shared.language.scripts import (
    fold,
    kazakh_latin_folds,
    kazakh_to_cyrillic,
    kazakh_to_latin,
    uzbek_to_cyrillic,
    uzbek_to_latin,
)
from shared.language.synonyms import Synonyms
from shared.language.wording import expand

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


def _meets(query: str, text: str) -> bool:
    """Whether a word the reader types finds the text: one of its query alternatives is
    one of the text's indexed `stem` or `fold` tokens."""
    alternatives = expand(query).strip("()").split(" | ")
    return bool(set(alternatives) & set(f"{stem_text(text)} {fold_text(text)}".split()))


@pytest.mark.parametrize(
    ("marked", "plain"),
    [
        ("Ташке\u0301нт", "Ташкент"),
        ("Ташке\u0300нт", "Ташкент"),
        ("Ташкѐнт", "Ташкент"),
        ("за\u0301мок", "замок"),
        ("мои\u0306", "мой"),
        ("Е\u0308лка", "Ёлка"),
        ("Ў\u0301збекистон", "Ўзбекистон"),
        ("у\u0306збекистон", "ўзбекистон"),
    ],
)
def test_a_word_with_stress_or_decomposed_letters_is_the_word(marked: str, plain: str) -> None:
    assert words(f"в {marked}.") == ["в", plain]
    assert (stem_text(marked), fold_text(marked)) == (stem_text(plain), fold_text(plain))
    assert _meets(marked, plain)
    assert _meets(plain, marked)


def test_a_decomposed_short_i_stays_a_short_i() -> None:
    assert fold_text("мои\u0306") == "moy" != fold_text("мои")


@pytest.mark.parametrize(
    ("mixed", "proper"),
    [
        ("Kaзaхcтан", "Казахстан"),
        ("Тoшкент", "Тошкент"),
        ("Pоссия", "Россия"),
        ("ВЫБОPЫ", "ВЫБОРЫ"),
        ("Рresident", "President"),
        ("Сhina", "China"),
    ],
)
def test_look_alike_letters_are_read_in_the_word_s_script(mixed: str, proper: str) -> None:
    assert words(mixed) == [proper]
    assert (stem_text(mixed), fold_text(mixed)) == (stem_text(proper), fold_text(proper))
    assert _meets(proper, mixed)
    assert _meets(mixed, proper)


@pytest.mark.parametrize("word", ["iPhoneом", "SMSка", "Wi-Fiем", "МКС3", "Mix"])
def test_words_that_really_mix_scripts_stay_as_written(word: str) -> None:
    assert "".join(words(word)) == word.replace("-", "")


KAZAKH_SPELLINGS = [
    # Cyrillic, 2021, 2018 (acute), 2017 (apostrophe), informal ASCII
    ("Қазақстан", "Qazaqstan", "Qazaqstan", "Qazaqstan", "Kazakstan"),
    ("Өскемен", "Öskemen", "Óskemen", "O'skemen", "Oskemen"),
    ("Шымкент", "Şymkent", "Shymkent", "S'ymkent", "Shymkent"),
    ("Ақтөбе", "Aqtöbe", "Aqtóbe", "Aqto'be", "Aktobe"),
    ("Түркістан", "Türkıstan", "Túrkistan", "Tu'rkistan", "Turkistan"),
    ("Ұлттық", "Ūlttyq", "Ulttyq", "Ulttyq", "Ulttyk"),
    ("жаңалықтар", "jañalyqtar", "jańalyqtar", "jan'alyqtar", "zhangalyqtar"),
    ("ақпарат", "aqparat", "aqparat", "aqparat", "akparat"),
    ("ауыл", "auyl", "aýyl", "ay'yl", "auyl"),
    ("Байқоңыр", "Baiqoñyr", "Baıqońyr", "Bai'qon'yr", "Bayqongyr"),
    ("Қоғамдық", "Qoğamdyq", "Qoǵamdyq", "Qog'amdyq", "Qoghamdyq"),
    ("Шешім", "Şeşım", "Sheshim", "S'es'im", "Sheshim"),
]


@pytest.mark.parametrize("spellings", KAZAKH_SPELLINGS)
def test_every_kazakh_latin_alphabet_finds_the_cyrillic(spellings: tuple[str, ...]) -> None:
    cyrillic, *latin = spellings
    for spelling in latin:
        assert _meets(spelling, cyrillic), spelling


@pytest.mark.parametrize(
    ("typed", "text"),
    [
        *((spelling, "Ўзбекистон") for spelling in OKINA_SPELLINGS),
        ("mas'uliyat", "масъулият"),
        ("mas'uliyat", "mas'uliyat"),
        ("ma'lumot", "маълумот"),
        ("Qo'ng'irot", "Қўнғирот"),
        ("yangi", "янги"),
    ],
)
def test_uzbek_still_meets_its_other_spellings(typed: str, text: str) -> None:
    assert _meets(typed, text)


@pytest.mark.parametrize("word", ["king", "night", "Afghanistan", "it's", "Qatar", "Iraq"])
def test_english_words_are_not_read_as_kazakh(word: str) -> None:
    assert kazakh_latin_folds(word) == []
