"""What matching the saved searches costs per batch, against writing that batch.

    python -m bench.matching [--saved-searches 250,1000,4000] [--batch 500] [--batches 8]
                             [--background 20000] [--cores separate|shared]

In a namespace of its own (`bench-matching-<time>-`, removed at the end) it indexes a
background of articles generated from the sample feeds (bench/corpus.py), then stores
saved searches made from the corpus's reader query mix (words, phrases, OR, exclusions,
a source filter on 30%, a date filter on 20%), as the query service stores them. For
each count of saved searches in turn (the store grows to it), `--batches` times:

- the baseline: one batch of new articles written with one bulk request, the NDJSON the
  indexer sends made before the clock starts (`bulk`);
- then the indexer's own Matcher on that batch's ids (`match`): listing the saved
  searches, the refresh, the `_msearch`, publishing the matches to a stream and
  remembering them in Redis. Its CPU time in this process is measured too.

Each batch's ratio is match ÷ bulk, reported as the median over the batches (the first
batch of each count apart: it reads and compiles the saved searches new to it) and per
1,000 saved searches. Also written to bench/results/matching-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_bulk
from redis.asyncio import Redis

from bench import cores
from bench.corpus import generate, query_mix, sample_articles
from bench.namespace import drop_namespace
from services.indexer.documents import article_action
from services.indexer.mappings import ensure_indices
from services.indexer.matcher import Matcher
from shared.clients import make_elasticsearch, make_redis
from shared.events import ArticleEvent, SavedSearchMatch
from shared.index import IndexNames
from shared.logging import configure_logging
from shared.saved_searches import SavedSearch, SavedSearchFields
from shared.settings import CommonSettings, IndexerSettings, Settings
from shared.streams import Streams, add_events

REPO = Path(__file__).resolve().parents[1]
NOW_ID = time.strftime("%Y%m%dt%H%M%S")


@dataclass(frozen=True)
class Batch:
    saved_searches: int
    first: bool
    bulk_ms: float
    match_ms: float
    find_ms: float
    """Listing the saved searches, the refresh, the _msearch and reading it."""
    announce_ms: float
    """What was announced before (Redis), publishing the matches, remembering them."""
    cpu_ms: float
    searches: int
    matches: int

    @property
    def ratio(self) -> float:
        return self.match_ms / self.bulk_ms

    @property
    def find_ratio(self) -> float:
        return self.find_ms / self.bulk_ms


def reader_mix(samples: list[ArticleEvent], count: int, seed: int) -> list[SavedSearchFields]:
    """The searches of the query bench (bench/corpus.py) as saved searches: single words,
    OR and exclusions among them, so broad that in this corpus, rebuilt from few stories,
    each matches a good share of every batch."""
    mix: list[SavedSearchFields] = []
    for params in query_mix(samples, count * 2, seed=seed):
        source = [str(params["source"])] if "source" in params else []
        if str(params["q"]).strip() or source:
            day = params.get("date_from")
            mix.append(
                SavedSearchFields(
                    q=str(params["q"]),
                    source=source,
                    date_from=date.fromisoformat(str(day)) if day else None,
                )
            )
    return mix[:count]


def alert_mix(samples: list[ArticleEvent], count: int, seed: int) -> list[SavedSearchFields]:
    """What people save as alerts: two or three words that must all be there (from the
    corpus's own sentences, so each does occur), or a phrase of a title; a source filter on
    30%. Selective, as alerts are, though still far broader than on real news."""
    rng = random.Random(seed)  # noqa: S311 — reproducible test data, no secrets
    sentences = [s.split() for a in samples for s in f"{a.summary} {a.body}".split(". ")]
    words = [w.strip("«»\"'“”:;,.!?()") for sentence in sentences for w in sentence]
    words = [w for w in words if len(w) > 4 and w.isalpha()]
    titles = [[w for w in a.title.split() if w.isalpha()] for a in samples]
    titles = [t for t in titles if len(t) >= 2]
    sources = sorted({a.source for a in samples})
    mix = []
    for _ in range(count):
        if rng.random() < 0.2:
            title = rng.choice(titles)
            at = rng.randrange(len(title) - 1)
            q = f'"{title[at]} {title[at + 1]}"'
        else:
            q = " ".join(rng.sample(words, rng.choice([2, 2, 3])))
        source = [rng.choice(sources)] if rng.random() < 0.3 else []
        mix.append(SavedSearchFields(q=q, source=source))
    return mix


MIXES = {"alerts": alert_mix, "reader": reader_mix}


def saved_searches(
    samples: list[ArticleEvent], count: int, mix: str, seed: int = 13
) -> list[SavedSearch]:
    """`count` saved searches of the mix, each valid as the API takes it, with their ids."""
    rng = random.Random(seed)  # noqa: S311 — reproducible test data, no secrets
    fields = MIXES[mix](samples, count, seed)
    if len(fields) < count:
        msg = f"the {mix} mix gave only {len(fields)} usable saved searches"
        raise SystemExit(msg)
    now = datetime.now(UTC)
    return [
        SavedSearch.made(one, f"{n:06d}{rng.getrandbits(96):024x}"[:22], now)
        for n, one in enumerate(fields)
    ]


async def _store(es: AsyncElasticsearch, index: str, searches: list[SavedSearch]) -> None:
    actions = (
        {"_op_type": "create", "_index": index, "_id": s.id, "_source": s.model_dump(mode="json")}
        for s in searches
    )
    await async_bulk(es, actions, chunk_size=1000, refresh="wait_for")


async def _fill(es: AsyncElasticsearch, alias: str, events: list[ArticleEvent]) -> None:
    def actions() -> Any:
        for event in events:
            header, source = article_action(event, alias).operations()
            yield {**header["index"], "_op_type": "index", "_source": source}

    await async_bulk(es.options(request_timeout=120), actions(), chunk_size=1000)
    await es.indices.refresh(index=alias)


async def measure(
    args: argparse.Namespace, es: AsyncElasticsearch, redis: Redis, settings: Settings
) -> list[Batch]:
    names = IndexNames(settings.common.index_prefix)
    await ensure_indices(es, names, settings.common)
    samples = sample_articles(REPO / "samples" / "sources.toml")
    needed = args.background + args.batch * args.batches * len(args.saved_searches)
    articles = list(generate(samples, needed))
    print(f"indexing a background of {args.background} articles")
    await _fill(es, names.articles, articles[: args.background])
    fresh = iter(articles[args.background :])
    every = saved_searches(samples, max(args.saved_searches), args.mix)

    streams = Streams(settings.common)

    async def publish(matches: list[SavedSearchMatch]) -> None:
        await add_events(redis, streams.matches, matches)

    indexer = IndexerSettings(consumer="bench")
    matcher = Matcher(es, redis, names, streams, indexer, publish)
    bulk_es = es.options(max_retries=0)
    batches: list[Batch] = []
    stored = 0
    for count in sorted(args.saved_searches):
        await _store(es, names.saved_searches, every[stored:count])
        stored = count
        for n in range(args.batches):
            events = [next(fresh) for _ in range(args.batch)]
            actions = [article_action(event, names.articles) for event in events]
            body = b"".join(action.ndjson() for action in actions)
            started = time.perf_counter()
            answer = await bulk_es.bulk(body=body, filter_path="errors")  # type: ignore[arg-type]
            bulk_ms = (time.perf_counter() - started) * 1000
            if answer.get("errors"):
                raise SystemExit("the bulk request refused documents")
            cpu = time.process_time()
            started = time.perf_counter()
            done = await matcher.match([action.doc_id for action in actions])
            match_ms = (time.perf_counter() - started) * 1000
            if done.saved_searches != count:
                raise SystemExit(f"matched {done.saved_searches} saved searches, not {count}")
            batch = Batch(
                count,
                n == 0,
                bulk_ms,
                match_ms,
                done.find_seconds * 1000,
                done.announce_seconds * 1000,
                (time.process_time() - cpu) * 1000,
                done.searches,
                len(done.published),
            )
            print(
                f"{count:6} saved searches, batch {n}: bulk {bulk_ms:7.1f} ms, match "
                f"{match_ms:7.1f} ms ({batch.ratio:5.2f}x): finding {batch.find_ms:7.1f} ms "
                f"in {done.searches} searches, announcing {len(done.published)} matches "
                f"{batch.announce_ms:6.1f} ms; CPU {batch.cpu_ms:6.1f} ms"
            )
            batches.append(batch)
    return batches


def summary(batches: list[Batch]) -> list[dict[str, Any]]:
    rows = []
    for count in sorted({b.saved_searches for b in batches}):
        warm = [b for b in batches if b.saved_searches == count and not b.first]
        first = next(b for b in batches if b.saved_searches == count and b.first)
        ratio = statistics.median(b.ratio for b in warm)
        find_ratio = statistics.median(b.find_ratio for b in warm)
        rows.append(
            {
                "saved_searches": count,
                "bulk_ms": statistics.median(b.bulk_ms for b in warm),
                "match_ms": statistics.median(b.match_ms for b in warm),
                "find_ms": statistics.median(b.find_ms for b in warm),
                "announce_ms": statistics.median(b.announce_ms for b in warm),
                "cpu_ms": statistics.median(b.cpu_ms for b in warm),
                "searches": statistics.median(b.searches for b in warm),
                "matches_per_batch": statistics.median(b.matches for b in warm),
                "ratio": ratio,
                "ratio_per_1000": ratio * 1000 / count,
                "find_ratio": find_ratio,
                "find_ratio_per_1000": find_ratio * 1000 / count,
                "first_batch_ratio": first.ratio,
            }
        )
    return rows


def report(batches: list[Batch], args: argparse.Namespace, placement: dict[str, object]) -> None:
    rows = summary(batches)
    print(
        f"\n{args.mix} mix, batches of {args.batch} articles over a background of "
        f"{args.background}, "
        f"{args.batches} per count (medians; the first batch apart), {placement}"
    )
    print(
        f"{'saved':>6} {'bulk ms':>8} {'match ms':>9} {'find ms':>8} {'announce':>9} "
        f"{'CPU ms':>7} {'searches':>8} {'matches':>8} {'ratio':>6} {'per 1k':>7} "
        f"{'find':>6} {'per 1k':>7} {'first':>6}"
    )
    for row in rows:
        print(
            f"{row['saved_searches']:6} {row['bulk_ms']:8.1f} {row['match_ms']:9.1f} "
            f"{row['find_ms']:8.1f} {row['announce_ms']:9.1f} {row['cpu_ms']:7.1f} "
            f"{row['searches']:8.0f} {row['matches_per_batch']:8.0f} {row['ratio']:6.2f} "
            f"{row['ratio_per_1000']:7.2f} {row['find_ratio']:6.2f} "
            f"{row['find_ratio_per_1000']:7.2f} {row['first_batch_ratio']:6.2f}"
        )
    results = REPO / "bench" / "results"
    results.mkdir(exist_ok=True)
    path = results / f"matching-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(
        json.dumps(
            {
                "mix": args.mix,
                "batch": args.batch,
                "batches": args.batches,
                "background": args.background,
                **placement,
                "summary": rows,
                "batches_measured": [asdict(b) | {"ratio": b.ratio} for b in batches],
            },
            indent=2,
        )
    )
    print(f"written to {path.relative_to(REPO)}")


async def main(args: argparse.Namespace) -> None:
    configure_logging("bench", "WARNING", "console")
    prefix = f"bench-matching-{NOW_ID}-"
    settings = replace(
        Settings.from_env(),
        common=CommonSettings(index_prefix=prefix, stream_prefix=f"{prefix}:"),
    )
    es = make_elasticsearch(settings.elasticsearch)
    redis = make_redis(settings.redis)
    try:
        async with cores.placed(args.cores, es, redis) as placement:
            batches = await measure(args, es, redis, settings)
        report(batches, args, placement)
    finally:
        await drop_namespace(es, redis, f"{prefix}*", f"{prefix}*")
        templates = await es.options(ignore_status=404).indices.get_index_template(
            name=f"{prefix}*"
        )
        for template in templates.get("index_templates", []):
            await es.indices.delete_index_template(name=template["name"])
        await es.close()
        await redis.aclose()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--saved-searches",
        default=[250, 1000, 4000],
        type=lambda text: [int(part) for part in text.split(",")],
        help="comma-separated counts, measured in turn (default 250,1000,4000)",
    )
    parser.add_argument(
        "--mix",
        choices=sorted(MIXES),
        default="alerts",
        help="the saved searches: selective alerts (default) or the query bench's reader "
        "searches, far broader",
    )
    parser.add_argument("--batch", type=int, default=500, help="articles per batch")
    parser.add_argument("--batches", type=int, default=8, help="batches per count")
    parser.add_argument("--background", type=int, default=20_000, help="articles indexed first")
    cores.add_argument(parser)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
