"""Article extraction quality and speed: ingest's extraction against `trafilatura.extract`.

    python -m bench.extraction [--rounds 3] [--worst 10] [--off-kit DIR] [--trafilatura-eval DIR]

Pages:
- the public article extraction benchmark's pages in the team kit
  (../shared/extraction-benchmark, or $CARAVAN_EXTRACTION_BENCHMARK), scored with the
  benchmark's own metric (bench/extraction_metric.py). The pages are split for good
  by a hash of their key: about two thirds "dev" (look at these while changing the
  extraction), the rest "held-out" (only ever read as a score, to see whether a
  change generalises). Both parts are reported, and all pages together.
- the real article pages in samples/realdata/ with an expected text (lsm.lv, Herald
  Sun; same metric) and the DW page's contains / does-not-contain rules (SOURCES.md).
- with --off-kit, pages of the same benchmark that the kit leaves out (a directory laid
  out like the kit: ground-truth.json and html/), never used to tune the extraction,
  scored and timed as the kit's pages are;
- with --trafilatura-eval, trafilatura's own evaluation set (its repository's tests/
  directory: evaldata.json, eval/ and cache/), scored by its rule: the snippets of the
  article each page lists should be in the text, the others not.

"caravan" is what ingest publishes as the body (charset detection, then
extract_article); "trafilatura" is `trafilatura.extract` with its defaults on the same
bytes. Speed is pages per second over the same pages in the same run, the two
taking turns page by page (each first on every other page), in the fastest of a few
rounds, counted in CPU time of this process (a shared machine is noisy: wall time
counts other processes' turns).

Prints a table and writes JSON to bench/results/extraction-<time>.json.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import lxml.html
import trafilatura

from bench.extraction_metric import (
    Counts,
    Score,
    page_counts,
    score,
    snippet_counts,
    snippet_score,
)
from services.ingest.charset import decode
from services.ingest.extract import extract_article

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO / "samples" / "realdata"
BENCHMARK = Path(
    os.environ.get("CARAVAN_EXTRACTION_BENCHMARK", REPO.parent / "shared" / "extraction-benchmark")
)
PARTS = ("dev", "held-out")


@dataclass(frozen=True)
class Page:
    name: str
    url: str
    content: bytes
    expected: str | None = None
    contains: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    part: str = "realdata"


Extractor = Callable[[Page], str]


def part_of(key: str) -> str:
    """dev or held-out, fixed by the key alone so the split never moves."""
    return "held-out" if int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 3 == 0 else "dev"


def benchmark_pages(root: Path = BENCHMARK, part: str | None = None) -> list[Page]:
    """The benchmark's pages under `root`, each in `part`, or else in its dev/held-out part."""
    truth = json.loads((root / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for path in sorted((root / "html").glob("*.html.gz")):
        key = path.name.removesuffix(".html.gz")
        pages.append(
            Page(
                key,
                truth[key]["url"],
                gzip.decompress(path.read_bytes()),
                expected=truth[key]["articleBody"],
                part=part or part_of(key),
            )
        )
    return pages


def trafilatura_eval_pages(tests: Path) -> list[Page]:
    """trafilatura's evaluation set: each page with the snippets its text should and
    should not hold (the page file is in eval/ or, for the older ones, cache/)."""
    listed = json.loads((tests / "evaldata.json").read_text(encoding="utf-8"))
    pages = []
    for url, entry in listed.items():
        path = tests / "eval" / entry["file"]
        if not path.exists():
            path = tests / "cache" / entry["file"]
        pages.append(
            Page(
                url,
                url,
                path.read_bytes(),
                contains=tuple(entry["with"]),
                not_contains=tuple(entry["without"]),
                part="trafilatura-eval",
            )
        )
    return pages


def realdata_pages() -> list[Page]:
    herald_expected = lxml.html.fromstring(
        (REALDATA / "article-heraldsun.expected.html").read_text(encoding="utf-8")
    )
    return [
        Page(
            "lsm-lv",
            "https://www.lsm.lv/raksts/zinas/arzemes/a387519/",
            (REALDATA / "article-lsm-lv.html").read_bytes(),
            expected=(REALDATA / "article-lsm-lv.expected.txt").read_text(encoding="utf-8"),
        ),
        Page(
            "heraldsun",
            "http://www.heraldsun.com.au/news/opinion/story-1227261886014",
            (REALDATA / "article-heraldsun.html").read_bytes(),
            expected=herald_expected.text_content(),
        ),
        Page(
            "dw",
            "https://www.dw.com/en/a-16863843",
            (REALDATA / "article-dw-fruehburgunder.html").read_bytes(),
            contains=("No grape variety invites as much intrigue", "With just 0.9 hectares"),
            not_contains=(
                "Related Subjects",
                "Audios and videos on the topic",
                "But boozers in Berlin",
            ),
        ),
    ]


def caravan(page: Page) -> str:
    html, _ = decode(page.content, "text/html")
    extracted = extract_article(html, page.url)
    return extracted.text if extracted else ""


def trafilatura_alone(page: Page) -> str:
    return trafilatura.extract(page.content, url=page.url) or ""


EXTRACTORS: dict[str, Extractor] = {"caravan": caravan, "trafilatura": trafilatura_alone}


def rules_passed(page: Page, text: str) -> int:
    return sum(s in text for s in page.contains) + sum(s not in text for s in page.not_contains)


def pages_per_second(
    corpus: list[Page], extractors: dict[str, Extractor], rounds: int
) -> dict[str, float]:
    """Each extractor's pages per second in its fastest round. Within a round the
    extractors take turns page by page, so a burst of load from elsewhere on the
    machine slows them alike; the fastest round is the one least disturbed. Which one
    goes first rotates from page to page: the first to read a page pays for bringing it
    into the processor's caches (about a millisecond a page here)."""
    best = dict.fromkeys(extractors, float("inf"))
    turns = list(extractors.items())
    for _ in range(rounds):
        spent = dict.fromkeys(extractors, 0.0)
        for number, page in enumerate(corpus):
            first = number % len(turns)
            for name, extract in turns[first:] + turns[:first]:
                started = time.process_time()
                extract(page)
                spent[name] += time.process_time() - started
        best = {name: min(best[name], spent[name]) for name in extractors}
    return {name: len(corpus) / seconds for name, seconds in best.items()}


def _row(label: str, scored: Score, speed: float | None) -> dict[str, object]:
    row: dict[str, object] = {
        "set": label,
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(scored).items()},
    }
    if speed is not None:
        row["pages_per_second"] = round(speed, 1)
    return row


def _scores(corpus: Iterable[Page], counts: dict[str, Counts]) -> Score:
    return score(counts[page.name] for page in corpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over the pages")
    parser.add_argument(
        "--worst", type=int, default=0, help="list the N dev pages where caravan scores lowest"
    )
    parser.add_argument(
        "--off-kit", type=Path, help="benchmark pages outside the kit (ground-truth.json, html/)"
    )
    parser.add_argument(
        "--trafilatura-eval", type=Path, help="trafilatura's tests/ (evaldata.json, eval/, cache/)"
    )
    args = parser.parse_args()
    bench, real = benchmark_pages(), realdata_pages()
    off_kit = benchmark_pages(args.off_kit, part="off-kit") if args.off_kit else []
    evaluation = trafilatura_eval_pages(args.trafilatura_eval) if args.trafilatura_eval else []
    scored = [page for page in real if page.expected is not None]
    rows: list[dict[str, object]] = []
    worst: list[dict[str, object]] = []
    rules: dict[str, str] = {}
    bench_speed = pages_per_second(bench, EXTRACTORS, args.rounds)
    real_speed = pages_per_second(real * 20, EXTRACTORS, args.rounds)
    off_speed = pages_per_second(off_kit, EXTRACTORS, args.rounds) if off_kit else {}
    for name, extract in EXTRACTORS.items():
        texts = {page.name: extract(page) for page in [*bench, *off_kit, *real]}
        counts = {
            page.name: page_counts(page.expected or "", texts[page.name])
            for page in [*bench, *off_kit, *scored]
        }
        for part in PARTS:
            rows.append(
                {
                    "extractor": name,
                    **_row(part, _scores((p for p in bench if p.part == part), counts), None),
                }
            )
        rows.append({"extractor": name, **_row("all", _scores(bench, counts), bench_speed[name])})
        rows.append(
            {"extractor": name, **_row("realdata", _scores(scored, counts), real_speed[name])}
        )
        if off_kit:
            rows.append(
                {"extractor": name, **_row("off-kit", _scores(off_kit, counts), off_speed[name])}
            )
        if evaluation:
            snippets = (
                snippet_counts(extract(page), page.contains, page.not_contains)
                for page in evaluation
            )
            rows.append({"extractor": name, **_row("traf-eval", snippet_score(snippets), None)})
        rules[name] = "{}/{}".format(
            *map(
                sum,
                zip(
                    *(
                        (
                            rules_passed(page, texts[page.name]),
                            len(page.contains) + len(page.not_contains),
                        )
                        for page in real
                    ),
                    strict=True,
                ),
            )
        )
        if name == "caravan":
            low = sorted(
                (p for p in bench if p.part == "dev"),
                key=lambda p: counts[p.name].precision + counts[p.name].recall,
            )
            worst = [
                {
                    "page": p.name,
                    "url": p.url,
                    "precision": round(counts[p.name].precision, 3),
                    "recall": round(counts[p.name].recall, 3),
                }
                for p in low[: args.worst]
            ]
    print(f"{'extractor':12} {'set':9} {'pages':>5} {'F1':>6} {'P':>6} {'R':>6} {'pages/s':>8}")
    for row in rows:
        print(
            f"{row['extractor']:12} {row['set']:9} {row['pages']:>5} {row['f1']:>6.4f} "
            f"{row['precision']:>6.4f} {row['recall']:>6.4f} "
            f"{row.get('pages_per_second', ''):>8}"
        )
    ratio = bench_speed["caravan"] / bench_speed["trafilatura"]
    off_ratio = off_speed["caravan"] / off_speed["trafilatura"] if off_speed else None
    print(
        f"speed caravan/trafilatura on the benchmark pages: {ratio:.2f}x"
        + (f" (off the kit: {off_ratio:.2f}x)" if off_ratio else "")
        + f"; realdata rules (DW) passed: {rules}"
    )
    for entry in worst:
        print(json.dumps(entry))
    result = {
        "rows": rows,
        "speed_ratio": round(ratio, 3),
        "off_kit_speed_ratio": round(off_ratio, 3) if off_ratio else None,
        "realdata_rules": rules,
        "worst_dev": worst,
        "rounds": args.rounds,
        "trafilatura_version": trafilatura.__version__,
    }
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (out / f"extraction-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
