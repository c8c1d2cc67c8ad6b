"""Reading the numbers, codes and XML of official rate documents, strictly.

Each provider writes decimals with one separator (the Bank of Russia and the
National Bank of the Kyrgyz Republic a comma, the others a point). A number with
the other separator is refused rather than guessed: `334,41` in a point-decimal
document may be a typo for 334.41 or a grouped 33441, and a wrong guess is a
rate off by a factor of a hundred. Spaces and no-break spaces (thousands
grouping) are dropped. Values and nominals must lie within the bounds of
shared/decimals.py: `1E+999999` is a number, but no rate can be computed from it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from lxml import etree

from services.ratefeed.providers import RatesError, WrongFormat
from shared.decimals import PROVIDER_VALUE, BadDecimal, shown, within

T = TypeVar("T")


def commonest_date(dated: Sequence[tuple[date, T]]) -> tuple[date, list[T]]:
    """The date most entries carry, and those entries: a document mixing days (a currency
    last quoted years ago among today's) is read as of its majority. `dated` is not empty."""
    as_of = Counter(day for day, _ in dated).most_common(1)[0][0]
    return as_of, [item for day, item in dated if day == as_of]


def parse_xml(content: bytes, what: str) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        return etree.fromstring(content, parser)
    except etree.XMLSyntaxError as exc:
        raise WrongFormat(f"not a {what}: not well-formed XML ({exc})") from exc


class Conflict:
    """A key one JSON object writes twice, with two values: which is meant is a guess, and
    the last one won before. Read as a number, it is refused with this."""

    def __str__(self) -> str:
        return "<written_twice_differently>"


def _without_guesses(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        earlier = found.get(key, value)
        found[key] = value if earlier == value else Conflict()
    return found


class Unheld:
    """A JSON number no Decimal holds (an exponent past its limits, `1e99999999999999999999`):
    Decimal raised for it, an ArithmeticError no parser expected, and the whole document
    was lost for one value. Read as a number, it is refused with this."""

    def __str__(self) -> str:
        return "<a_number_past_any_decimal>"


def _number(text: str) -> Decimal | Unheld:
    try:
        return Decimal(text)
    except InvalidOperation:
        return Unheld()


def parse_json(content: bytes) -> Any:
    """A rates document's JSON: numbers as Decimal (443.9 stays 443.9, and an integer of
    5,000 digits is one value refused, where int() refused the whole document), a key
    written twice with two values a Conflict, a number no Decimal holds Unheld.
    ValueError or RecursionError if not JSON."""
    return json.loads(
        content, parse_float=_number, parse_int=_number, object_pairs_hook=_without_guesses
    )


def child_text(parent: etree._Element, tag: str) -> str | None:
    """The text of `parent`'s first child `tag` as written, None without one. Markup
    inside it (an entity left unresolved, a comment, an element) is shown as `<…>`, which
    no number has: findtext read only the text before it, `1&nbsp;020,3042` as 1, a rate
    a thousand times off."""
    child = parent.find(tag)
    if child is None:
        return None
    return "".join([child.text or "", *(f"<…>{inner.tail or ''}" for inner in child)])


# Decimal() also reads `1_000`, Arabic-Indic and full-width digits; an official
# document writes none of them, so they are refused, not guessed. One way to match
# each number: `[0-9]*\.?[0-9]*` tried every split of a run of digits, and 40,000 ones
# and a `_1` held the rate feed's event loop for 34 s, each poll.
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]*(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?")
# A rate, grouped, signed and with its exponent, is some twenty characters.
NUMBER_CHARS = 64


def official_decimal(text: str | None, separator: str) -> Decimal:
    raw = (text or "").strip().replace("\u00a0", "").replace(" ", "")
    if not raw:
        msg = "missing number"
        raise RatesError(msg)
    if len(raw) > NUMBER_CHARS:
        msg = f"a number of {len(raw)} characters, longer than any rate: {shown(raw)}"
        raise RatesError(msg)
    other = "." if separator == "," else ","
    if other in raw:
        msg = f"{shown(raw)} uses {other!r}, but this provider writes decimals with {separator!r}"
        raise RatesError(msg)
    if raw.count(separator) > 1:
        msg = f"ambiguous number {shown(raw)}"
        raise RatesError(msg)
    number = raw.replace(separator, ".")
    try:
        value = Decimal(number)
    except InvalidOperation as exc:
        raise RatesError(f"not a number: {shown(raw)}") from exc
    if not value.is_finite():
        msg = f"not a finite number: {shown(raw)}"
        raise RatesError(msg)
    if not _PLAIN_NUMBER.fullmatch(number):
        msg = f"not a number in plain digits: {shown(raw)}"
        raise RatesError(msg)
    return value


def unit_value(value: Decimal, nominal: Decimal) -> Decimal:
    """The value of one unit, from the value of `nominal` units; RatesError if unusable."""
    if value <= 0 or nominal <= 0:
        msg = f"value {shown(value)} per {shown(nominal)} is not positive"
        raise RatesError(msg)
    try:
        return within(value, PROVIDER_VALUE) / within(nominal, PROVIDER_VALUE)
    except BadDecimal as exc:
        raise RatesError(str(exc)) from exc


def is_currency_code(code: str) -> bool:
    return len(code) == 3 and code.isascii() and code.isalpha() and code.isupper()


Entry = tuple[str, str | None, str | None]
"""(currency code, value text, nominal text) as the document writes them. A format
without nominals passes "1"; None or an empty nominal is refused, not read as 1."""


def per_unit_values(
    entries: Iterable[Entry], separator: str
) -> tuple[dict[str, Decimal], list[str]]:
    """Value of one unit of each currency, and the entries left out with the reason."""
    per_unit: dict[str, Decimal] = {}
    problems: list[str] = []
    disagreeing: set[str] = set()
    for code, value_text, nominal_text in entries:
        if not is_currency_code(code):
            problems.append(f"bad currency code {shown(code)}")
            continue
        try:
            value = official_decimal(value_text, separator)
            if not (nominal_text or "").strip():
                # Read as 1, a value written for 100 units was a rate 100 times off.
                msg = "no nominal: the units the value is for are not written"
                raise RatesError(msg)
            # Nominals are whole numbers of units; no separator question there.
            nominal = official_decimal(nominal_text, separator)
            unit = unit_value(value, nominal)
        except RatesError as exc:
            problems.append(f"{code}: {exc}")
            continue
        if per_unit.get(code, unit) != unit:
            disagreeing.add(code)
        per_unit[code] = unit
    # A currency listed twice with two values: which one is the rate is a guess.
    for code in sorted(disagreeing):
        del per_unit[code]
        problems.append(f"{code}: listed more than once, with different values")
    return per_unit, problems
