"""Article extraction quality and speed: ingest's page pipeline against trafilatura alone.

    python -m bench.extraction [--rounds 20]

Pages: the real article pages in samples/realdata/ that come with expected text.

- quality: token-level F1 (bag of lower-cased word tokens) of the extracted
  text against the expected text (article-lsm-lv.expected.txt; the text of
  article-heraldsun.expected.html), and the contains / does-not-contain rules
  of the DW page (SOURCES.md). "ours" is what ingest publishes as the body;
  "trafilatura" is `trafilatura.extract` called directly on the same bytes.
- speed: pages per second of each over the same pages, and their ratio
  (ingest's overhead: charset detection, metadata, normalisation).

Prints JSON and writes it to bench/results/extraction-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import lxml.html
import trafilatura

from services.ingest.charset import decode
from services.ingest.extract import extract_article

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO / "samples" / "realdata"
_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True)
class Page:
    name: str
    url: str
    content: bytes
    expected: str | None = None
    contains: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()


def pages() -> list[Page]:
    herald_expected = lxml.html.fromstring(
        (REALDATA / "article-heraldsun.expected.html").read_text(encoding="utf-8"))
    return [
        Page("lsm-lv", "https://www.lsm.lv/raksts/zinas/arzemes/a387519/",
             (REALDATA / "article-lsm-lv.html").read_bytes(),
             expected=(REALDATA / "article-lsm-lv.expected.txt").read_text(encoding="utf-8")),
        Page("heraldsun", "http://www.heraldsun.com.au/news/opinion/story-1227261886014",
             (REALDATA / "article-heraldsun.html").read_bytes(),
             expected=herald_expected.text_content()),
        Page("dw", "https://www.dw.com/en/a-16863843",
             (REALDATA / "article-dw-fruehburgunder.html").read_bytes(),
             contains=("No grape variety invites as much intrigue", "With just 0.9 hectares"),
             not_contains=("Related Subjects", "Audios and videos on the topic",
                           "But boozers in Berlin")),
    ]


def ours(page: Page) -> str:
    html, _ = decode(page.content, "text/html")
    extracted = extract_article(html, page.url)
    return extracted.text if extracted else ""


def trafilatura_alone(page: Page) -> str:
    return trafilatura.extract(page.content, url=page.url) or ""


def token_f1(got: str, expected: str) -> float:
    got_tokens = Counter(_TOKEN.findall(got.lower()))
    expected_tokens = Counter(_TOKEN.findall(expected.lower()))
    common = sum((got_tokens & expected_tokens).values())
    if not common:
        return 0.0
    precision = common / sum(got_tokens.values())
    recall = common / sum(expected_tokens.values())
    return 2 * precision * recall / (precision + recall)


def quality(page: Page, extract: Callable[[Page], str]) -> dict[str, object]:
    text = extract(page)
    result: dict[str, object] = {"chars": len(text)}
    if page.expected is not None:
        result["token_f1"] = round(token_f1(text, page.expected), 4)
    if page.contains or page.not_contains:
        result["rules_passed"] = (sum(s in text for s in page.contains)
                                  + sum(s not in text for s in page.not_contains))
        result["rules_total"] = len(page.contains) + len(page.not_contains)
    return result


def pages_per_second(corpus: list[Page], extract: Callable[[Page], str], rounds: int) -> float:
    for page in corpus:  # warm-up: imports, caches, lazily compiled patterns
        extract(page)
    started = time.perf_counter()
    for _ in range(rounds):
        for page in corpus:
            extract(page)
    return rounds * len(corpus) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="passes over the pages, timed")
    args = parser.parse_args()
    corpus = pages()
    by_page = {page.name: {"ours": quality(page, ours),
                           "trafilatura": quality(page, trafilatura_alone)} for page in corpus}
    ours_speed = pages_per_second(corpus, ours, args.rounds)
    alone_speed = pages_per_second(corpus, trafilatura_alone, args.rounds)
    result = {
        "pages": by_page,
        "pages_per_second": {"ours": round(ours_speed, 2), "trafilatura": round(alone_speed, 2)},
        "overhead_ratio": round(alone_speed / ours_speed, 3),
        "rounds": args.rounds,
        "trafilatura_version": trafilatura.__version__,
    }
    print(json.dumps(result, indent=2))
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (out / f"extraction-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
