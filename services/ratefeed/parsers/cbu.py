"""Central Bank of Uzbekistan (`arkhiv-kursov-valyut/json/`): UZS per `Nominal` units.

A JSON array of objects, every number a string, point decimals:

    [{"Ccy": "USD", "Nominal": "1", "Rate": "11344.69", "Date": "11.04.2022", ...}, ...]

Each entry carries its own `Date`; the document's as-of date is the one they
share, and entries dated otherwise, or not dated at all, are left out.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from services.ratefeed.parsers.parsing import commonest_date, parse_json, per_unit_values
from services.ratefeed.providers import OfficialRates, RatesError, WrongFormat
from shared.decimals import shown

PROVIDER = "cbu"
WHAT = "Central Bank of Uzbekistan rates document"


def parse_cbu(content: bytes) -> OfficialRates:
    entries = _entries(content)
    dated = [(day, entry) for entry in entries if (day := _date(entry.get("Date"))) is not None]
    if not dated:
        msg = f"no valid Date in the {WHAT}: {shown(entries[0].get('Date'))}"
        raise RatesError(msg)
    as_of, current = commonest_date(dated)
    per_unit, problems = per_unit_values(
        (
            (
                str(entry.get("Ccy", "")).strip(),
                _text(entry.get("Rate")),
                _text(entry.get("Nominal")),
            )
            for entry in current
        ),
        ".",
    )
    if len(dated) < len(entries):
        problems.append(f"{len(entries) - len(dated)} entries without a valid Date left out")
    if len(current) < len(dated):
        problems.append(f"{len(dated) - len(current)} entries dated other than {as_of} left out")
    if not per_unit:
        msg = f"no usable rate in the {WHAT} of {as_of}"
        raise RatesError(msg)
    return OfficialRates(PROVIDER, "UZS", as_of, per_unit, problems)


def _entries(content: bytes) -> list[dict[str, Any]]:
    try:
        data = parse_json(content)
    # RecursionError: a document nested deeper than the parser recurses ("[" * 200_000).
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WrongFormat(f"not a {WHAT}: not JSON ({exc})") from exc
    if (
        not isinstance(data, list)
        or not data
        or not all(isinstance(e, dict) and "Ccy" in e and "Rate" in e for e in data)
    ):
        raise WrongFormat(f"not a {WHAT}: not an array of Ccy/Rate objects")
    return data


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _date(text: object) -> date | None:
    try:
        return datetime.strptime(str(text).strip(), "%d.%m.%Y").date()
    except ValueError:
        return None
