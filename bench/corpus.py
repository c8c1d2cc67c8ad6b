"""A large article corpus made from the real sample feeds, varied, for benchmarks.

Each generated article takes a real item (its source, language, countries and
tags) and rebuilds its text from sentences and title words of the whole sample
set, so 50,000 articles have real multilingual vocabulary and varied lengths
instead of 50,000 copies of 56 items.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.ingest.feeds import parse_feed
from services.ingest.sources import load_sources
from shared.events import ArticleEvent, content_hash

SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
EPOCH = datetime(2023, 1, 1, tzinfo=UTC)


def sample_articles(sources_file: Path) -> list[ArticleEvent]:
    fetched = datetime.now(UTC)
    articles: list[ArticleEvent] = []
    for source in load_sources(sources_file):
        try:
            articles += parse_feed(Path(source.url).read_bytes(), source, fetched).events
        except (OSError, ValueError):
            continue  # the deliberately broken sample
    return articles


def generate(samples: list[ArticleEvent], count: int, seed: int = 7) -> Iterator[ArticleEvent]:
    rng = random.Random(seed)  # noqa: S311 — reproducible test data, no secrets
    sentences = [
        s for a in samples for s in SENTENCE_END.split(f"{a.summary} {a.body}") if len(s) > 20
    ]
    words = [w for a in samples for w in a.title.split() if len(w) > 3]
    for n in range(count):
        base = samples[n % len(samples)]
        title_words = base.title.split()
        for _ in range(rng.randint(1, 3)):
            title_words.insert(rng.randrange(len(title_words) + 1), rng.choice(words))
        title = " ".join(title_words)
        body = " ".join(rng.choices(sentences, k=rng.randint(3, 12)))
        url = f"https://bench.invalid/{base.source}/{n}"
        yield ArticleEvent(
            source=base.source,
            url=url,
            canonical_url=url,
            title=title,
            summary=body.split(". ")[0][:300],
            body=body,
            language=base.language,
            tags=base.tags,
            countries=base.countries,
            published_at=EPOCH + timedelta(minutes=rng.randrange(3 * 365 * 24 * 60)),
            fetched_at=EPOCH + timedelta(days=3 * 365),
            content_hash=content_hash(title, body),
        )


def query_mix(samples: list[ArticleEvent], count: int, seed: int = 11) -> list[dict[str, object]]:
    """Search parameters as readers send them: words, phrases, OR, exclusions, filters, pages."""
    rng = random.Random(seed)  # noqa: S311 — reproducible test data, no secrets
    words = [w.strip("«»\"'“”:,.!?()") for a in samples for w in a.title.split()]
    words = [w for w in words if len(w) > 4]
    sources = sorted({a.source for a in samples})
    mix: list[dict[str, object]] = []
    for _ in range(count):
        first, second = rng.choice(words), rng.choice(words)
        params: dict[str, object] = {
            "q": rng.choice(
                [
                    first,
                    f"{first} {second}",
                    f'"{first} {second}"',
                    f"{first} OR {second}",
                    f"{first} -{second}",
                    "",
                    first[:5],
                ]
            )
        }
        if rng.random() < 0.3:
            params["source"] = rng.choice(sources)
        if rng.random() < 0.2:
            params["sort"] = "newest"
        if rng.random() < 0.2:
            params["date_from"] = f"{rng.choice([2023, 2024, 2025])}-0{rng.randint(1, 9)}-01"
        params["page"] = rng.choice([1, 1, 1, 2, 3, 5])
        mix.append(params)
    return mix
