"""Extraction: quality on the hand-written cases, throughput on real and long responses.

Prints and saves (bench/results/extraction.json):
- per-construction recall of expected claims and share of extra claims, on the
  dev cases and the held-out cases (tests/claims/cases/);
- throughput in claims/s and responses/s of the parse extractor on the
  halueval_qa answers (their questions as prompts) and on long responses
  (HotpotQA knowledge passages of halueval_qa joined to about 4,000 and
  20,000 characters), with the share of the time spent inside spaCy, measured
  in the same runs.

    python bench/extraction.py [--eval ../shared/eval] [--out bench/results/extraction.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from claims import casebook  # noqa: E402
from claims.extraction import ParseExtractor  # noqa: E402
from claims.nlp import load_spacy  # noqa: E402


class TimedNlp:
    """Wraps a spaCy pipeline and adds up the seconds spent in ``pipe``."""

    def __init__(self, nlp: Any) -> None:
        self.nlp = nlp
        self.seconds = 0.0

    def pipe(self, texts: list[str]) -> list[Any]:
        start = time.perf_counter()
        docs = list(self.nlp.pipe(texts))
        self.seconds += time.perf_counter() - start
        return docs


def throughput(
    extractor: ParseExtractor, timed: TimedNlp, rows: list[tuple[str, str | None]]
) -> dict[str, float]:
    timed.seconds = 0.0
    claims = 0
    start = time.perf_counter()
    for response, prompt in rows:
        claims += len(extractor.extract(response, prompt=prompt).claims)
    seconds = time.perf_counter() - start
    return {
        "responses": len(rows),
        "claims": claims,
        "characters": sum(len(r) for r, _ in rows),
        "seconds": round(seconds, 2),
        "responses_per_s": round(len(rows) / seconds, 1),
        "claims_per_s": round(claims / seconds, 1),
        "spacy_share": round(timed.seconds / seconds, 3),
    }


def long_responses(passages: list[str], size: int, count: int) -> list[tuple[str, None]]:
    out, current = [], ""
    for passage in passages:
        current = f"{current}\n\n{passage}" if current else passage
        if len(current) >= size:
            out.append((current[:size], None))
            current = ""
            if len(out) == count:
                break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "extraction.json")
    args = parser.parse_args()

    timed = TimedNlp(load_spacy())
    extractor = ParseExtractor(timed, max_chars=20_000)  # type: ignore[arg-type]
    extractor.extract("Warm-up: the parser loads its tables on first use.")
    results: dict[str, Any] = {"machine": platform.platform(), "python": platform.python_version()}

    cases = ROOT / "tests" / "claims" / "cases"
    for name in ("extraction_dev", "extraction_heldout"):
        report = casebook.score(extractor, casebook.read_cases(cases / f"{name}.jsonl"))
        print(f"\n{name}\n{casebook.table(report)}")
        results[name] = {k: report[k] for k in ("total", "by_construction")}

    halueval = args.eval / "halueval_qa"
    if not halueval.exists():
        print(f"\nskipping throughput: {halueval} not found", file=sys.stderr)
    else:
        with (halueval / "claims.jsonl").open() as lines:
            rows = [json.loads(line) for line in lines]
        with (halueval / "corpus.jsonl").open() as lines:
            passages = [json.loads(line)["text"] for line in lines]
        sets = {
            "halueval_qa answers with questions": [(r["response"], r["question"]) for r in rows],
            "long responses, 4,000 characters": long_responses(passages, 4_000, 40),
            "long responses, 20,000 characters": long_responses(passages, 20_000, 5),
        }
        results["throughput"] = {}
        print(
            f"\n{'set':<38}{'responses':>10}{'claims':>8}{'resp/s':>9}{'claims/s':>10}{'spaCy':>7}"
        )
        for label, data in sets.items():
            figures = throughput(extractor, timed, data)
            results["throughput"][label] = figures
            print(
                f"{label:<38}{figures['responses']:>10}{figures['claims']:>8}"
                f"{figures['responses_per_s']:>9}{figures['claims_per_s']:>10}"
                f"{figures['spacy_share']:>7.2f}"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nsaved {args.out}")


if __name__ == "__main__":
    main()
