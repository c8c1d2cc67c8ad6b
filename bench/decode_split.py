"""Where the indexer's decoding of an article goes, and what the derived fields weigh.

    python -m bench.decode_split [--events 6000] [--rounds 3]

In one process, no server: `--events` articles of `bench/corpus.py` as stream entries,
decoded as the indexer does (`decode_entries`, batches of 1,000), then the two parts
timed apart on the same events: validating each event (`ArticleDocument`) and analysing
each batch's texts (`analysis.analyse`). CPU time per article, each round in turn (the
first is the cold one: no word known yet). Then the mean bytes of an event and of the
document indexed from it, whose `stem.*`/`fold.*` fields are the difference: what an
event carrying them would weigh (bench/README.md, "Session 25").
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from bench.corpus import generate, sample_articles
from services.indexer.decode import decode_entries
from services.indexer.documents import BulkAction
from shared.consumer import Entry
from shared.index import ArticleDocument, IndexNames
from shared.language import analysis
from shared.settings import CommonSettings
from shared.streams import DATA_FIELD, Streams

BATCH = 1000
SOURCES = Path(__file__).resolve().parents[1] / "samples" / "sources.toml"


def per_article(work: Callable[[], object], count: int) -> float:
    """CPU microseconds of `work` per article."""
    started = time.process_time()
    work()
    return (time.process_time() - started) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    events = list(generate(sample_articles(SOURCES), args.events))
    streams, names = Streams(CommonSettings()), IndexNames("")
    payloads = [event.model_dump_json().encode() for event in events]
    entries = [Entry(streams.articles, f"{n}-0", {DATA_FIELD: p}) for n, p in enumerate(payloads)]
    batches = [entries[i : i + BATCH] for i in range(0, len(entries), BATCH)]
    texts = [
        [
            text
            for event in events[i : i + BATCH]
            for text in (event.title, event.summary, event.body)
        ]
        for i in range(0, len(events), BATCH)
    ]
    print("µs of CPU an article: decode_entries · validation · analysis")
    for number in range(1, args.rounds + 1):
        whole = per_article(
            lambda: [decode_entries(b, streams, names) for b in batches], len(events)
        )
        valid = per_article(
            lambda: [ArticleDocument.model_validate_json(p) for p in payloads], len(events)
        )
        analysed = per_article(lambda: [analysis.analyse(t) for t in texts], len(events))
        print(f"  round {number}: {whole:.1f} · {valid:.1f} · {analysed:.1f}")
    actions = [a for b in batches for a in decode_entries(b, streams, names)]
    documents = sum(len(a.document) for a in actions if isinstance(a, BulkAction))
    sent = sum(map(len, payloads))
    print(
        f"bytes: event {sent / len(events):,.0f}, document {documents / len(events):,.0f} "
        f"({documents / sent:.2f}×)"
    )


if __name__ == "__main__":
    main()
