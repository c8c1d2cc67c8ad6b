"""The chaos run's sources, which know their truth: loopback feeds and a loopback bank.

Time goes in epochs. In each, every feed lists a window of its items: new ones
appear at its end and the oldest leave it, and now and then an item is changed (a
new version, its title saying which), never within its last three epochs, so its
latest version is shown long enough for ingest to read it through any fault. The
bank publishes the next day's document, the tenge moving a little, and keeps the
past ones as its history. The workload
also adds poison to the article stream. Every change is written to the history.

Items link to the site's home page with a guid of their own: ingest publishes them
from the feed's fields, fetching no page (tests/cluster/test_pipeline_failover.py).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from tests.loopback import LoopbackServer, static

FEEDS = 6
WINDOW = 12  # items a feed lists at once
STEP = 2  # items that appear (and leave) per epoch
LIFETIME = WINDOW // STEP  # epochs an item is listed
# Kept well in the past: the rate feed refuses dates after the bank's today.
FIRST_DAY = date.today() - timedelta(days=3000)
USD_IN_RUB = Decimal("78.0000")
# Per currency: (nominal, roubles for that nominal on the first day); the tenge moves.
PRICES = {
    "KGS": (10, Decimal("8.9300")),
    "KZT": (100, Decimal("15.0000")),
    "TJS": (10, Decimal("7.2000")),
    "UZS": (10000, Decimal("64.0000")),
    "TMT": (1, Decimal("22.2800")),
}


def _item_range(epoch: int) -> range:
    return range(epoch * STEP, epoch * STEP + WINDOW)


def version(item: int, epoch: int) -> int:
    """The item's version in `epoch`: a new one every second epoch it is listed, but
    none in its last three, so the latest stays listed at least three epochs."""
    first = max(0, (item - WINDOW) // STEP + 1)
    settled = min(epoch, item // STEP - 3)
    return 1 + max(0, settled - first) // 2


def title(feed: int, item: int, epoch: int) -> str:
    return f"Chaos item {feed}-{item} v{version(item, epoch)}"


def feed_document(feed: int, epoch: int, home: str) -> bytes:
    items = "".join(
        f"<item><title>{title(feed, n, epoch)}</title><link>{home}</link>"
        f"<guid>chaos-{feed}-{n}</guid>"
        f"<description>Item {n} of feed {feed}, as of epoch {epoch}.</description></item>"
        for n in _item_range(epoch)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>feed {feed}</title>'
        f"<link>{home}</link><description>chaos</description>{items}</channel></rss>"
    ).encode()


def prices(epoch: int) -> dict[str, tuple[int, Decimal]]:
    nominal, kzt = PRICES["KZT"]
    moved = kzt + Decimal("0.0100") * (epoch % 7)
    return {**PRICES, "KZT": (nominal, moved)}


def bank_document(epoch: int) -> bytes:
    day = FIRST_DAY + timedelta(days=epoch)
    valutes = "".join(
        f"<Valute><CharCode>{code}</CharCode><Nominal>{nominal}</Nominal>"
        f"<Value>{str(value).replace('.', ',')}</Value></Valute>"
        for code, (nominal, value) in {"USD": (1, USD_IN_RUB), **prices(epoch)}.items()
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><ValCurs Date="{day:%d.%m.%Y}" '
        f'name="Foreign Currency Market">{valutes}</ValCurs>'
    ).encode()


def quotes(epoch: int) -> dict[tuple[str, str], Decimal]:
    """X/USD of each currency on the epoch's day, as the rate feed computes it."""
    day = (FIRST_DAY + timedelta(days=epoch)).isoformat()
    return {
        (code, day): (value / nominal) / USD_IN_RUB
        for code, (nominal, value) in prices(epoch).items()
    }


@dataclass
class Workload:
    server: LoopbackServer
    record: Callable[[dict[str, object]], None]
    epoch: int = 0
    shown: dict[str, str] = field(default_factory=dict)
    """guid -> title of the latest version shown."""
    days: dict[tuple[str, str], Decimal] = field(default_factory=dict)

    @property
    def home(self) -> str:
        return self.server.url("/home")

    def feed_paths(self) -> list[str]:
        return [f"/feed/{feed}" for feed in range(FEEDS)]

    def write_config(self, directory: Path) -> tuple[Path, Path]:
        """The services' sources file (ingest) and providers file (the rate feed), naming
        these feeds and this bank, written in `directory`."""
        sources = directory / "sources.toml"
        sources.write_text(
            "".join(
                f'[[sources]]\nname = "feed-{n}"\nurl = "{self.server.url(path)}"\ninterval = 2\n\n'
                for n, path in enumerate(self.feed_paths())
            )
        )
        rates = directory / "rates.toml"
        rates.write_text(
            "[primary]\n"
            + "".join(f'{code} = "cbr"\n' for code in PRICES)
            + f'[[providers]]\nname = "cbr"\nkind = "cbr"\nurl = "{self.server.url("/bank.xml")}"\n'
            + f'history_url = "{self.server.url("/bank/")}{{date:%d.%m.%Y}}"\n'
            'timezone = "Europe/Moscow"\ninterval = 1\n'
        )
        return sources, rates

    def show(self, epoch: int) -> None:
        """Serve the epoch's feeds and bank document from now on."""
        self.epoch = epoch
        for feed in range(FEEDS):
            self.server.routes[f"/feed/{feed}"] = static(
                feed_document(feed, epoch, self.home), "application/rss+xml"
            )
            for n in _item_range(epoch):
                self.shown[f"chaos-{feed}-{n}"] = title(feed, n, epoch)
        document = bank_document(epoch)
        self.server.routes["/bank.xml"] = static(document, "application/xml")
        # Its history, as real banks keep one: what the feed missed, it reads back.
        day = FIRST_DAY + timedelta(days=epoch)
        self.server.routes[f"/bank/{day:%d.%m.%Y}"] = static(document, "application/xml")
        self.days |= quotes(epoch)
        self.record({"event": "epoch", "epoch": epoch, "at": time.monotonic()})


def poison_times(seed: int, seconds: float, count: int) -> list[float]:
    """When poison is added, drawn from the run's seed."""
    rng = random.Random(seed + 1)  # the schedule's seed, another stream of it
    return sorted(round(rng.uniform(5, seconds), 1) for _ in range(count))
