"""Index the judged corpus, run every judged query through Caravan's search and the
baseline, and print nDCG@10 and recall@10 per part of the set and language.

Caravan: the query service's own Backend.search (word forms, scripts, names, near
spellings). Baseline: a plain `multi_match` over title and body, standard analyser,
which is what Elasticsearch gives without any of it. Both on the same index.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tomllib
from collections import defaultdict
from pathlib import Path
from statistics import mean
from typing import Any

from elasticsearch import AsyncElasticsearch

from bench.relevance.corpus import corpus
from bench.relevance.metrics import ndcg, recall
from services.indexer.documents import article_action
from services.indexer.mappings import ensure_indices
from services.query.backend import Backend
from services.query.search import SearchRequest
from shared.clients import make_elasticsearch
from shared.index import IndexNames
from shared.settings import CommonSettings, ElasticsearchSettings

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "results"
PREFIX = "bench-relevance-"
K = 10


async def fill(es: AsyncElasticsearch) -> IndexNames:
    """The corpus in fresh indices (dropped first: the mapping may have changed)."""
    names = IndexNames(PREFIX)
    existing = await es.indices.get(index=f"{PREFIX}*", allow_no_indices=True)
    if existing:
        await es.indices.delete(index=",".join(existing))
    await ensure_indices(es, names, CommonSettings())
    operations: list[Any] = []
    for event in corpus():
        operations.extend(article_action(event, names.articles).operations())
    response = await es.bulk(operations=operations, refresh=True)
    if response["errors"]:
        raise SystemExit("the corpus did not index")
    return names


async def baseline(es: AsyncElasticsearch, index: str, q: str) -> list[str]:
    response = await es.search(
        index=index, size=K, query={"multi_match": {"query": q, "fields": ["title", "body"]}}
    )
    return [hit["_source"]["url"].rsplit("/", 1)[1] for hit in response["hits"]["hits"]]


async def caravan(backend: Backend, q: str) -> list[str]:
    page = await backend.search(SearchRequest(q=q, size=K, facets=False))
    return [hit.url.rsplit("/", 1)[1] for hit in page.results]


def table(rows: list[dict[str, Any]]) -> str:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["split"], row["language"])].append(row)
        groups[(row["split"], "all")].append(row)
    lines = [
        "| part | language | queries | nDCG@10 baseline | nDCG@10 Caravan | Δ | "
        "recall@10 baseline | recall@10 Caravan |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (split, language), members in sorted(
        groups.items(), key=lambda g: (g[0][0], g[0][1] == "all", g[0][1])
    ):
        b, c = (mean(r[f"ndcg_{s}"] for r in members) for s in ("baseline", "caravan"))
        rb, rc = (mean(r[f"recall_{s}"] for r in members) for s in ("baseline", "caravan"))
        lines.append(
            f"| {split} | {language} | {len(members)} | {b:.3f} | {c:.3f} | "
            f"{c - b:+.3f} | {rb:.3f} | {rc:.3f} |"
        )
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    queries = tomllib.loads(args.judgments.read_text(encoding="utf-8"))["query"]
    es = make_elasticsearch(ElasticsearchSettings())
    try:
        names = await fill(es)
        backend = Backend(
            es,
            names.articles,
            names.quotes,
            exact_total_up_to=10_000,
            cache_seconds=0,
            rate_digits=10,
        )
        rows = []
        for query in queries:
            judged: dict[str, int] = query["relevant"]
            ranked = {
                "baseline": await baseline(es, names.articles, query["q"]),
                "caravan": await caravan(backend, query["q"]),
            }
            row = {k: query[k] for k in ("id", "language", "split", "q")}
            for side, found in ranked.items():
                row[f"ndcg_{side}"] = ndcg(found, judged, K)
                row[f"recall_{side}"] = recall(found, judged, K)
                row[f"top_{side}"] = found[:3]
            rows.append(row)
    finally:
        await es.close()
    print(table(rows))
    if args.verbose:
        for row in rows:
            print(
                f"{row['id']:>10} {row['split']:<7} nDCG {row['ndcg_baseline']:.2f} → "
                f"{row['ndcg_caravan']:.2f}  {row['q']}"
            )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "relevance.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1))


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--judgments", type=Path, default=HERE / "judgments.toml")
    parser.add_argument("--verbose", action="store_true", help="one line per query")
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
