"""Uzbek and Kazakh between Latin and Cyrillic, and one folded spelling for search.

The transliterations follow the official alphabets (Uzbek Latin of 1995 with
oʻ/gʻ; Kazakh Latin of 2021). `fold` is lossy on purpose: it maps the
spellings a reader may type for one word (Latin or Cyrillic, any okina look-alike
or none, kh/x/h, zh/j, q/k, diacritics or not) to a single ASCII form, so
"Oʻzbekiston", "O'zbekiston", "Ozbekiston" and "Ўзбекистон" meet.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from functools import lru_cache

# The okina (U+02BB) and what people type for it: apostrophes, quotes, accents.
OKINA_MARKS = "ʻʼʽ‘’'`´ʹ"
OKINA_CLASS = "[" + re.escape(OKINA_MARKS) + "]"
_OKINA = re.compile(OKINA_CLASS)

_UZ_TO_LATIN = {
    "а": "a",
    "б": "b",
    "в": "v",
    "г": "g",
    "д": "d",
    "е": "e",
    "ё": "yo",
    "ж": "j",
    "з": "z",
    "и": "i",
    "й": "y",
    "к": "k",
    "л": "l",
    "м": "m",
    "н": "n",
    "о": "o",
    "п": "p",
    "р": "r",
    "с": "s",
    "т": "t",
    "у": "u",
    "ф": "f",
    "х": "x",
    "ц": "ts",
    "ч": "ch",
    "ш": "sh",
    "щ": "sh",
    "ъ": "ʼ",
    "ь": "",
    "ы": "i",
    "э": "e",
    "ю": "yu",
    "я": "ya",
    "ў": "oʻ",
    "қ": "q",
    "ғ": "gʻ",
    "ҳ": "h",
}
_UZ_TO_CYRILLIC = [
    # Longest first: digraphs before their letters.
    ("oʻ", "ў"),
    ("gʻ", "ғ"),
    ("sh", "ш"),
    ("ch", "ч"),
    ("yo", "ё"),
    ("yu", "ю"),
    # Any mark not after o or g is the tutuq belgisi (ʼ), the hard sign.
    ("ya", "я"),
    ("ye", "е"),
    ("ʻ", "ъ"),
    ("a", "а"),
    ("b", "б"),
    ("d", "д"),
    ("e", "е"),
    ("f", "ф"),
    ("g", "г"),
    ("h", "ҳ"),
    ("i", "и"),
    ("j", "ж"),
    ("k", "к"),
    ("l", "л"),
    ("m", "м"),
    ("n", "н"),
    ("o", "о"),
    ("p", "п"),
    ("q", "қ"),
    ("r", "р"),
    ("s", "с"),
    ("t", "т"),
    ("u", "у"),
    ("v", "в"),
    ("x", "х"),
    ("y", "й"),
    ("z", "з"),
]
_KK_TO_LATIN = {
    "а": "a",
    "ә": "ä",
    "б": "b",
    "в": "v",
    "г": "g",
    "ғ": "ğ",
    "д": "d",
    "е": "e",
    "ё": "io",
    "ж": "j",
    "з": "z",
    "и": "i",
    "й": "i",
    "к": "k",
    "қ": "q",
    "л": "l",
    "м": "m",
    "н": "n",
    "ң": "ñ",
    "о": "o",
    "ө": "ö",
    "п": "p",
    "р": "r",
    "с": "s",
    "т": "t",
    "у": "u",
    "ұ": "ū",
    "ү": "ü",
    "ф": "f",
    "х": "h",
    "һ": "h",
    "ц": "ts",
    "ч": "ç",
    "ш": "ş",
    "щ": "şş",
    "ъ": "",
    "ы": "y",
    "і": "ı",
    "ь": "",
    "э": "e",
    "ю": "iu",
    "я": "ia",
}
_KK_TO_CYRILLIC = [
    ("ia", "я"),
    ("iu", "ю"),
    ("ts", "ц"),
    ("a", "а"),
    ("ä", "ә"),
    ("b", "б"),
    ("v", "в"),
    ("g", "г"),
    ("ğ", "ғ"),
    ("d", "д"),
    ("e", "е"),
    ("j", "ж"),
    ("z", "з"),
    ("i", "и"),
    ("k", "к"),
    ("q", "қ"),
    ("l", "л"),
    ("m", "м"),
    ("n", "н"),
    ("ñ", "ң"),
    ("o", "о"),
    ("ö", "ө"),
    ("p", "п"),
    ("r", "р"),
    ("s", "с"),
    ("t", "т"),
    ("u", "у"),
    ("ū", "ұ"),
    ("ü", "ү"),
    ("f", "ф"),
    ("h", "х"),
    ("ç", "ч"),
    ("ş", "ш"),
    ("y", "ы"),
    ("ı", "і"),
]
# One letter (or none) for each Cyrillic letter of Russian, Uzbek, Kazakh, Kyrgyz and
# Tajik; the Latin spellings below are folded to the same letters.
_FOLD_CYRILLIC = str.maketrans(
    {
        "а": "a",
        "б": "b",
        "в": "v",
        "г": "g",
        "д": "d",
        "е": "e",
        "ё": "yo",
        "ж": "j",
        "з": "z",
        "и": "i",
        "й": "y",
        "к": "k",
        "л": "l",
        "м": "m",
        "н": "n",
        "о": "o",
        "п": "p",
        "р": "r",
        "с": "s",
        "т": "t",
        "у": "u",
        "ф": "f",
        "х": "h",
        "ц": "ts",
        "ч": "ch",
        "ш": "sh",
        "щ": "sh",
        "ъ": "",
        "ы": "y",
        "ь": "",
        "э": "e",
        "ю": "yu",
        "я": "ya",
        "ў": "o",
        "қ": "k",
        "ғ": "g",
        "ҳ": "h",
        "ә": "a",
        "ө": "o",
        "ү": "u",
        "ұ": "u",
        "і": "i",
        "ң": "n",
        "һ": "h",
        "ӣ": "i",
        "ӯ": "u",
        "ҷ": "j",
        "ҫ": "s",
    }
)
_FOLD_LATIN = str.maketrans(
    {"ı": "i", "ş": "sh", "ç": "ch", "ñ": "n", "ß": "ss", "ø": "o", "æ": "ae", "đ": "d", "ł": "l"}
)


def _indexed(table: Mapping[int, str | None], size: int = 0x800) -> list[int | str | None]:
    """The same translation as a sequence, each code point below `size` its own entry.

    str.translate looks a dictionary up once per character and raises and clears a
    KeyError for every one it lacks (nearly all): two to three times slower than an
    index into a list of every character of the alphabets folded (Latin to Cyrillic),
    where one past the list's end is left as it is, as a missing key is.
    """
    return [table.get(code, code) for code in range(size)]


_FOLD_CYRILLIC_INDEXED = _indexed(_FOLD_CYRILLIC)
_FOLD_LATIN_INDEXED = _indexed(_FOLD_LATIN)
# Spellings of one sound: Russian-style romanisation (kh, zh), Uzbek (x, j), Kazakh (q).
# Rewriting kh → h, x → h, zh → j, q → k and ye → e until nothing changes gives one
# spelling whatever the order (no two of them overlap), so `fold` makes it in one pass:
# x and q letter by letter, then each run whole, "kkkh" → "h" (each rewrite of "kh"
# makes another), "zkkh" → "j", "yye" → "e"; rewriting until nothing changed took a
# pass per letter of such a run. The lookbehinds start a run of k or y at its first
# letter only: started at each, a long run with no h or e after it is quadratic again.
_FOLD_RUNS = re.compile(r"zk*h|(?<!k)k+h|(?<!y)y+e")
_RUN_FOLDS = {"z": "j", "k": "h", "y": "e"}
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_WORD_START_E = re.compile(r"\b[еЕ]")
_WORD_START_LATIN_E = re.compile(r"\b[eE]")


def fold_okina(text: str) -> str:
    """Every okina look-alike to the okina itself (U+02BB), the form the transliteration uses."""
    return _OKINA.sub("ʻ", text)


def has_cyrillic(text: str) -> bool:
    return _CYRILLIC.search(text) is not None


def _cased(source: str, target: str) -> str:
    if not source.isupper() or not target:
        return target
    # A capital becomes a capital digraph ("Ш" → "Sh"), or all capitals in a capital word.
    return target.upper() if len(source) > 1 else target[0].upper() + target[1:]


def _per_letter(text: str, table: dict[str, str]) -> str:
    out = []
    for i, char in enumerate(text):
        target = table.get(char.lower())
        if target is None:
            out.append(char)
            continue
        word_upper = char.isupper() and i + 1 < len(text) and text[i + 1].isupper()
        out.append(target.upper() if word_upper else _cased(char, target))
    return "".join(out)


def _by_pairs(text: str, pairs: list[tuple[str, str]]) -> str:
    out = []
    i = 0
    lower = text.lower()
    while i < len(text):
        for latin, cyrillic in pairs:
            if lower.startswith(latin, i):
                source = text[i : i + len(latin)]
                out.append(cyrillic.upper() if source[0].isupper() else cyrillic)
                i += len(latin)
                break
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def uzbek_to_latin(text: str) -> str:
    """Uzbek Cyrillic → Uzbek Latin: "Ўзбекистон" → "Oʻzbekiston"."""
    # A word-initial е is "ye" ("Европа" → "Yevropa"); inside a word it is "e".
    text = _WORD_START_E.sub(lambda m: "Ye" if m.group() == "Е" else "ye", text)
    return _per_letter(text, _UZ_TO_LATIN)


def uzbek_to_cyrillic(text: str) -> str:
    """Uzbek Latin (any okina look-alike) → Uzbek Cyrillic: "O'zbekiston" → "Ўзбекистон"."""
    # A word-initial e is э ("Ergash" → "Эргаш"); "ye" is е.
    text = _WORD_START_LATIN_E.sub(lambda m: "Э" if m.group() == "E" else "э", text)
    return _by_pairs(fold_okina(text), _UZ_TO_CYRILLIC)


def kazakh_to_latin(text: str) -> str:
    """Kazakh Cyrillic → Kazakh Latin (2021): "Қазақстан" → "Qazaqstan"."""
    return _per_letter(text, _KK_TO_LATIN)


def kazakh_to_cyrillic(text: str) -> str:
    """Kazakh Latin (2021) → Kazakh Cyrillic: "Qazaqstan" → "Қазақстан"."""
    return _by_pairs(text, _KK_TO_CYRILLIC)


def _fold_run(match: re.Match[str]) -> str:
    return _RUN_FOLDS[match.group()[0]]


# Words longer than this are not kept by a WordCache: "ﷺ" folds to 18 letters, and
# 65,536 kept forms of 255 of them grew the query service by 600 MB, one search each.
LONGEST_CACHED_WORD = 40


class WordCache:
    """`fn(word)`, the most recently used `size` kept for words up to
    LONGEST_CACHED_WORD characters; a longer word's is made again."""

    def __init__(self, fn: Callable[[str], str], size: int = 65_536) -> None:
        self.__wrapped__ = fn
        self._cached = lru_cache(maxsize=size)(fn)

    def __call__(self, word: str) -> str:
        if len(word) <= LONGEST_CACHED_WORD:
            return self._cached(word)
        return self.__wrapped__(word)

    def cache_clear(self) -> None:
        self._cached.cache_clear()


# Pure and called for every word of every indexed text: the indexer's hottest function.
@WordCache
def fold(word: str) -> str:
    """One lower-case ASCII spelling for the search index, whatever the script typed.

    Linear in a word as `analysis.words` finds it. Not in any text: NFKD sorts a run
    of combining marks in quadratic time, and a word has none.
    """
    text = _OKINA.sub("", word.lower())
    transliterated = text.translate(_FOLD_CYRILLIC_INDEXED).translate(_FOLD_LATIN_INDEXED)
    if transliterated.isascii():
        # Most words (all Russian ones, English ones): nothing to decompose, and the
        # loop below would stop after its first pass with this.
        text = transliterated
    # Transliterate, then take diacritics off (ä → a, ğ → g), until stable: a letter
    # the tables lack may decompose to one they have ("ӛ" → "ә" + diaeresis). Every
    # character of Unicode is stable within three passes ("ǣ" → "æ" → "ae").
    while not text.isascii():
        plain = "".join(
            c
            for c in unicodedata.normalize(
                "NFKD", text.translate(_FOLD_CYRILLIC_INDEXED).translate(_FOLD_LATIN_INDEXED)
            )
            if not unicodedata.combining(c)
        ).lower()
        if plain == text:
            break
        text = plain
    text = text.replace("x", "h").replace("q", "k")
    # Most words have no digraph: the regex, a few times slower than these, only for those
    # that have one. To the end of each run, so that a folded word folds to itself.
    if "kh" in text or "zh" in text or "ye" in text:
        return _FOLD_RUNS.sub(_fold_run, text)
    return text


def fold_many(words: list[str]) -> list[str]:
    """Each word's `fold`, the same as fold(word), for many words at once.

    The per-word steps are character by character or, for the digraph runs, within a
    word, so they are made once over the words joined by newlines (no word holds one,
    and a newline neither has a case nor is ignored by one, so `lower` treats each word
    as it would alone): a few calls in C instead of a dozen per word. The words still
    not ASCII after the transliteration (no Russian or English one) go on through
    fold's loop together (_fold_rest). Not cached.
    """
    if not words:
        return []
    text = (
        _OKINA.sub("", "\n".join(words).lower())
        .translate(_FOLD_CYRILLIC_INDEXED)
        .translate(_FOLD_LATIN_INDEXED)
        .replace("x", "h")
        .replace("q", "k")
    )
    if "kh" in text or "zh" in text or "ye" in text:
        text = _FOLD_RUNS.sub(_fold_run, text)
    folded = text.split("\n")
    if not text.isascii():
        rest = [i for i, word in enumerate(folded) if not word.isascii()]
        for i, word in zip(rest, _fold_rest([words[i] for i in rest]), strict=True):
            folded[i] = word
    return folded


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_combining_deleted: list[int | None] = []


def _without_combining(text: str) -> str:
    """ "".join(c for c in text if not unicodedata.combining(c)), by str.translate."""
    if _ASTRAL.search(text) is not None:
        return "".join(c for c in text if not unicodedata.combining(c))
    if not _combining_deleted:
        _combining_deleted.extend(
            None if unicodedata.combining(chr(code)) else code for code in range(0x10000)
        )
    return text.translate(_combining_deleted)


def _fold_rest(words: list[str]) -> list[str]:
    """fold of words still not ASCII after the transliteration, together: fold's loop
    (transliterate, decompose, drop the combining marks, until stable) over the words
    that have not settled, joined by newlines (NFKD and its ordering of marks never
    cross one: a newline is a starter)."""
    texts = _OKINA.sub("", "\n".join(words).lower()).split("\n")
    unsettled = [i for i, text in enumerate(texts) if not text.isascii()]
    while unsettled:
        joined = "\n".join([texts[i] for i in unsettled])
        decomposed = unicodedata.normalize(
            "NFKD", joined.translate(_FOLD_CYRILLIC_INDEXED).translate(_FOLD_LATIN_INDEXED)
        )
        plain = _without_combining(decomposed).lower().split("\n")
        if len(plain) != len(unsettled):  # never: no character decomposes to a newline
            return [fold.__wrapped__(word) for word in words]
        left = []
        for i, word in zip(unsettled, plain, strict=True):
            if word != texts[i]:
                texts[i] = word
                if not word.isascii():
                    left.append(i)
        unsettled = left
    text = "\n".join(texts).replace("x", "h").replace("q", "k")
    if "kh" in text or "zh" in text or "ye" in text:
        text = _FOLD_RUNS.sub(_fold_run, text)
    return text.split("\n")


# Inside a word (analysis.WORD): the stress marks of dictionaries, school texts and some
# news (acute, grave), and the breve and diaeresis of a й, ў or ё typed or pasted as a
# letter and a mark.
WORD_MARKS = "\u0300\u0301\u0306\u0308"
_MARKED = re.compile("[" + WORD_MARKS + "ѐѝЀЍ]")
# What NFC leaves of a stress mark: a Cyrillic vowel has no precomposed form with an
# acute, and е and и with a grave compose to letters of their own.
_UNSTRESSED = str.maketrans(
    {"\u0300": None, "\u0301": None, "ѐ": "е", "ѝ": "и", "Ѐ": "Е", "Ѝ": "И"}
)
# Latin and Cyrillic letters drawn alike, as copied text and spam mix them in one word.
_LATIN_LOOKALIKES = "aceopxyiABCEHIKMOPTXY"
_CYRILLIC_LOOKALIKES = "асеорхуіАВСЕНІКМОРТХУ"
_TO_CYRILLIC = str.maketrans(_LATIN_LOOKALIKES, _CYRILLIC_LOOKALIKES)
_TO_LATIN = str.maketrans(_CYRILLIC_LOOKALIKES, _LATIN_LOOKALIKES)
_ASCII_LETTER = re.compile("[A-Za-z]")
# A line (one word of a joined batch) with letters of both scripts: its first letter's
# script, then one of the other; each line read once.
_MIXED_LINE = re.compile(
    r"(?m)^[^\nA-Za-z\u0400-\u04ff]*+"
    r"(?:[A-Za-z][^\n\u0400-\u04ff]*+[\u0400-\u04ff]|[\u0400-\u04ff][^\nA-Za-z]*+[A-Za-z])"
    r"[^\n]*"
)


def _majority_script(word: str) -> str:
    """A word that mixes scripts in look-alikes only, in its majority script:
    "Kaзaхcтан" → "Казахстан", "Рresident" → "President"; "iPhoneом" stays (м has none)."""
    cyrillic = len(_CYRILLIC.findall(word))
    latin = len(_ASCII_LETTER.findall(word))
    if cyrillic == latin:
        return word
    table, strays = (_TO_CYRILLIC, _ASCII_LETTER) if cyrillic > latin else (_TO_LATIN, _CYRILLIC)
    if all(ord(c) in table for c in strays.findall(word)):
        return word.translate(table)
    return word


def _read_by_majority(match: re.Match[str]) -> str:
    return _majority_script(match.group())


def read_lines(words: str) -> str:
    """Words, one a line, as the analysis reads them: composed (NFC: й, ё, ў typed as
    a letter and a mark are the letter), stress marks dropped ("Ташке́нт" →
    "Ташкент"), and look-alike letters of the other script in the word's majority
    script.

    For the words `analysis.WORD` finds, each at most MAX_TOKEN_LENGTH long (NFC
    orders a run of marks in quadratic time). Most words have neither: all of them
    are checked at once, in C.
    """
    if words.isascii():
        return words
    if _MARKED.search(words):
        words = unicodedata.normalize("NFC", words).translate(_UNSTRESSED)
    return _MIXED_LINE.sub(_read_by_majority, words)


def readings(words: list[str]) -> list[str]:
    """Each word as `read_lines` reads it."""
    return read_lines("\n".join(words)).split("\n") if words else []


# Kazakh has had three Latin alphabets, and readers also type it in plain ASCII. `fold`
# follows the 2021 one (ä ğ ñ ö ū ü ı ş ç; its й is i); the others spell some letters
# in ways that fold elsewhere, or that mean other letters in Uzbek and English (the
# 2017 s' is the Uzbek "mas'ul"'s hard sign; "ng" is English). So they are not folded
# in the index: a query word that shows one is searched in the Cyrillic's fold as well.
_KK_VOWEL = "aáäeéioóöuúüūyýı"
_KK_2018 = re.compile("[áǵńóúýı]")
_KK_2017 = re.compile("[ysci]ʻ")
_KK_2021 = re.compile("[äğñöūüış]")
_KK_INFORMAL = re.compile("q|zh")
# й: the 2018 ı, the 2017 i' and the 2021 i beside a vowel (и elsewhere).
_KK_I_BY_VOWEL = re.compile(f"(?<=[{_KK_VOWEL}])[iı]ʻ?|[iı]ʻ?(?=[{_KK_VOWEL}])")


def kazakh_latin_folds(word: str) -> list[str]:
    """The folds of the Cyrillic a Latin word stands for in Kazakh's 2018 (acute) or
    2017 (apostrophe) alphabet, in the 2021 one's й, or in ASCII's ng and gh, where
    they differ from its own: "aýyl" → "auyl" (ауыл), "S'ymkent" → "shymkent",
    "Baiqoñyr" → "baykonyr", "zhangalyqtar" → "janalyktar"."""
    if has_cyrillic(word):
        return []
    lower = fold_okina(word.lower())
    forms = []
    if _KK_2018.search(lower) or _KK_2017.search(lower) or _KK_2021.search(lower):
        spelled = _KK_I_BY_VOWEL.sub("y", lower)
        for latin, cyrillic in (("ý", "у"), ("yʻ", "у"), ("sʻ", "ш"), ("cʻ", "ч")):
            spelled = spelled.replace(latin, cyrillic)
        forms.append(fold(spelled))
    if _KK_INFORMAL.search(lower) and ("ng" in lower or "gh" in lower):
        forms.append(fold(lower.replace("ng", "ң").replace("gh", "ғ")))
    own = fold(word)
    return [f for f in dict.fromkeys(forms) if f != own]
