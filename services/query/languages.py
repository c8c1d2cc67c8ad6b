"""The page's languages: which one a request is answered in, its messages, dates and numbers.

A request's language is the one its address names (`?lang=ru`: the page's switch
links there, and every link and the search form carry it on), else the best one
of its `Accept-Language` that the page speaks (q-values as RFC 9110 has them,
RFC 4647 lookup: `ru-RU` is Russian; `uz` and `uz-UZ` are Uzbek in Latin script,
the official one), else English.

Messages are data: one TOML file per language in messages/, all with the same
keys. A message that depends on a number is a table of the language's CLDR plural
categories (Russian: one, few, many, other). Dates, numbers and plural rules come
from Babel's CLDR data.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from urllib.parse import urlencode

from babel import Locale
from babel.dates import format_date, format_skeleton
from babel.numbers import format_decimal, get_decimal_symbol
from markupsafe import Markup, escape

MESSAGES = Path(__file__).parent / "messages"
LANGUAGES = ("en", "ru", "uz-Latn", "uz-Cyrl", "kk")
DEFAULT = "en"
# Each language's name in itself, for the switch.
NAMES = {
    "en": "English",
    "ru": "Русский",
    "uz-Latn": "Oʻzbekcha",
    "uz-Cyrl": "Ўзбекча",
    "kk": "Қазақша",
}
# English as in Britain: dates as the seed page writes them (29 March 2025).
BABEL_LOCALES = {"en": "en_GB", "ru": "ru", "uz-Latn": "uz_Latn", "uz-Cyrl": "uz_Cyrl", "kk": "kk"}
# A tag without a script: Uzbek is written in Latin script officially.
ALIASES = {"uz": "uz-Latn"}
_BY_LOWER = {tag.lower(): tag for tag in LANGUAGES} | ALIASES
# Subtags past the most any known tag has can never match: a 64 KB header of them
# would otherwise be joined again for each one dropped (seconds, on the event loop).
_MOST_SUBTAGS = max(known.count("-") + 1 for known in _BY_LOWER)
_RANGE = re.compile(r"^(\*|[a-z]{1,8}(-[a-z0-9]{1,8})*)$", re.IGNORECASE)
_MOST_RANGES = 32
_CONTENT_TAG = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$", re.IGNORECASE)
_QUALITY = re.compile(r"^q=(0(\.\d{0,3})?|1(\.0{0,3})?)$", re.IGNORECASE)

Message = str | dict[str, str]
Catalog = dict[str, Message]


def load_catalog(tag: str) -> Catalog:
    with (MESSAGES / f"{tag}.toml").open("rb") as file:
        return tomllib.load(file)


CATALOGS = {tag: load_catalog(tag) for tag in LANGUAGES}


def lookup(tag: str) -> str | None:
    """The page's language for a language tag, dropping subtags from the end until one
    matches (RFC 4647 lookup): `uz-Cyrl-UZ` is `uz-Cyrl`, `ru-KZ` is `ru`."""
    subtags = tag.lower().split("-", _MOST_SUBTAGS)[:_MOST_SUBTAGS]
    while subtags:
        found = _BY_LOWER.get("-".join(subtags))
        if found:
            return found
        subtags.pop()
    return None


def accepted_ranges(header: str) -> list[tuple[str, float]]:
    """The language ranges of an Accept-Language value with their q-values, best first
    (in the order given among equals); malformed entries are left out."""
    ranges = []
    # The first _MOST_RANGES only: a 60 KB header of commas cost a page 128 ms, twice.
    for entry in header.split(",", _MOST_RANGES)[:_MOST_RANGES]:
        name, *parameters = (part.strip() for part in entry.split(";"))
        if not _RANGE.match(name):
            continue
        weight = _QUALITY.match(parameters[0].replace(" ", "")) if len(parameters) == 1 else None
        if parameters and not weight:
            continue
        ranges.append((name.lower(), float(weight.group(1)) if weight else 1.0))
    return sorted(ranges, key=lambda item: -item[1])


def _covers(language_range: str, tag: str) -> bool:
    """Whether a range names `tag` or a language it belongs to (`uz` covers `uz-Cyrl`)."""
    tag = tag.lower()
    return language_range in ("*", tag) or tag.startswith(language_range + "-")


def negotiate(header: str | None) -> str:
    """The page's language best for an Accept-Language value; English when none fits.

    A range with q=0 refuses the languages it covers; `*` is any language not refused.
    """
    ranges = accepted_ranges(header or "")
    refused = {tag for tag in LANGUAGES for name, q in ranges if q == 0 and _covers(name, tag)}
    for name, quality in ranges:
        if quality == 0:
            continue
        if name == "*":
            return next((tag for tag in LANGUAGES if tag not in refused), DEFAULT)
        found = lookup(name)
        if found and found not in refused:
            return found
    return DEFAULT


@cache
def _locale(tag: str) -> Locale:
    return Locale.parse(BABEL_LOCALES[tag])


@dataclass(frozen=True)
class Language:
    """The language a page is written in; `chosen` when the address named it, so that
    every link the page makes names it too."""

    tag: str = DEFAULT
    chosen: bool = False

    @property
    def locale(self) -> Locale:
        return _locale(self.tag)

    @property
    def formats(self) -> str:
        """The locale dates are written in, as a BCP 47 tag for the browser (`en-GB`)."""
        return BABEL_LOCALES[self.tag].replace("_", "-")

    @property
    def carried(self) -> str | None:
        """The `lang` a link from this page carries on: only one the reader chose."""
        return self.tag if self.chosen else None

    def text(self, key: str, /, count: int | None = None, **values: object) -> Markup:
        """The message `key` with `values` filled in (escaped unless Markup); a plural
        message in the form for `count`."""
        message = CATALOGS[self.tag][key]
        if isinstance(message, dict):
            if count is None:
                msg = f"message {key!r} depends on a count"
                raise TypeError(msg)
            message = message[self.locale.plural_form(count)]
        return escape(message).format(**values)

    def number(self, value: int) -> str:
        """`12,345` in English, `12 345` in Russian, Uzbek and Kazakh."""
        return format_decimal(value, locale=self.locale)

    def long_date(self, value: date | str | None) -> str:
        """`29 March 2025`, `29 марта 2025 г.`, `29-mart, 2025`, `2025 ж. 29 наурыз`."""
        if value is None:
            return ""
        try:
            day = value if isinstance(value, date) else datetime.fromisoformat(value).date()
        except ValueError:
            # Not as the indexer writes dates (`2025`, written by another tool): shown as
            # stored, where it failed the whole page.
            return str(value)
        return format_date(day, "long", locale=self.locale)

    def month(self, day: date) -> str:
        """The month of `day` with its year: `March 2025`, `март 2025 г.`."""
        return format_skeleton("yMMMM", day, locale=self.locale)

    @property
    def decimal_sign(self) -> str:
        return get_decimal_symbol(self.locale)

    def ticker(self, line: str) -> str:
        """A ticker line (`KGS/USD = 0.01156 -0%`: its only full stops are decimal
        points) with the language's decimal sign."""
        return line.replace(".", self.decimal_sign)

    def url(self, path: str) -> str:
        """A link to one of the site's pages, in this language if the reader chose it."""
        return f"{path}?{urlencode({'lang': self.tag})}" if self.chosen else path


def content_language(value: str | None) -> str | None:
    """An article's own language, for its `lang` attribute: None when it is unknown or
    not a language tag (a screen reader would read it in a wrong voice)."""
    return value if value and _CONTENT_TAG.match(value) else None


def choose(asked: str | None, accept_language: str | None) -> Language:
    """The language named by `?lang=` if the page speaks it, else the negotiated one."""
    named = lookup(asked) if asked else None
    if named:
        return Language(named, chosen=True)
    return Language(negotiate(accept_language))
