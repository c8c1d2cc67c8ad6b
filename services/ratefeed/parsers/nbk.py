"""National Bank of Kazakhstan: KZT per `quant` units, point decimals.

Two shapes of the same data. The rates RSS (`rss/rates_all.xml`) dates each
item on its own, with a two-digit year, and keeps defunct currencies with their
last date (LVL 31.12.13):

    <rss><channel><item><title>USD</title><pubDate>18.04.16</pubDate>
      <description>334.41</description><quant>1</quant>...</item>

The by-date service (`rss/get_rates.cfm?fdate=dd.mm.yyyy`) dates the document
once: `<rates><date>18.04.2016</date><item>...same item fields...</item></rates>`.

The as-of date of an RSS document is the date most of its items carry; items
dated otherwise are left out, so a currency NBK stopped quoting years ago never
passes for today's rate.
"""

from __future__ import annotations

from datetime import date, datetime

from lxml import etree

from services.ratefeed.parsers.parsing import child_text, commonest_date, parse_xml, per_unit_values
from services.ratefeed.providers import OfficialRates, RatesError, WrongFormat
from shared.decimals import shown

PROVIDER = "nbk"
WHAT = "National Bank of Kazakhstan rates document"


def parse_nbk(content: bytes) -> OfficialRates:
    root = parse_xml(content, WHAT)
    if root.tag == "rss" and root.find("channel/item/quant") is not None:
        all_items = root.findall("channel/item")
        dated = _dated_items(all_items)
        as_of, items = commonest_date(dated)
        undated, other_days = len(all_items) - len(dated), len(dated) - len(items)
    elif root.tag == "rates" and root.find("item/quant") is not None:
        # One date, the document's.
        items, undated, other_days = root.findall("item"), 0, 0
        as_of = _document_date(root.findtext("date"))
    else:
        raise WrongFormat(f"not a {WHAT}: root element is {shown(root.tag)} without quant items")
    per_unit, problems = per_unit_values(
        (
            (
                (child_text(item, "title") or "").strip(),
                child_text(item, "description"),
                child_text(item, "quant"),
            )
            for item in items
        ),
        ".",
    )
    if undated:
        problems.append(f"{undated} items without a valid date left out")
    if other_days:
        problems.append(f"{other_days} items dated other than {as_of} left out")
    if not per_unit:
        msg = f"no usable rate in the {WHAT} of {as_of}"
        raise RatesError(msg)
    return OfficialRates(PROVIDER, "KZT", as_of, per_unit, problems)


def _dated_items(items: list[etree._Element]) -> list[tuple[date, etree._Element]]:
    """The items with a valid date, each with it; refused if none has one."""
    dated = [
        (day, item)
        for item in items
        if (day := _date(item.findtext("pubDate"), "%d.%m.%y")) is not None
    ]
    if not dated:
        first = items[0].findtext("pubDate") if items else None
        msg = f"no valid date in the {WHAT}: {shown(first)}"
        raise RatesError(msg)
    return dated


def _document_date(text: str | None) -> date:
    day = _date(text, "%d.%m.%Y")
    if day is None:
        raise RatesError(f"no valid date in the {WHAT}: {shown(text)}")
    return day


def _date(text: str | None, pattern: str) -> date | None:
    try:
        return datetime.strptime((text or "").strip(), pattern).date()
    except ValueError:
        return None
