"""Scoring an extractor against hand-written response → expected-claims cases.

A case is one JSON object a line: ``id``, ``construction`` (what it exercises),
``response``, optional ``prompt``, ``claims`` (the check-worthy claims expected)
and optional ``not_checkworthy`` (the reason codes of the pieces expected to be
kept out of checking). Claims match on normalised text: case, punctuation and
spacing are ignored.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from claims.extraction import Extractor

_NOT_WORD = re.compile(r"[^\w\s]")


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    return " ".join(_NOT_WORD.sub(" ", text.replace("'s ", "s ")).split())


def read_cases(path: Path) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


@dataclass
class Tally:
    cases: int = 0
    expected: int = 0
    produced: int = 0
    matched: int = 0

    @property
    def recall(self) -> float:
        return self.matched / self.expected if self.expected else 1.0

    @property
    def extra(self) -> float:
        return (self.produced - self.matched) / self.produced if self.produced else 0.0

    def add(self, other: Tally) -> None:
        self.cases += other.cases
        self.expected += other.expected
        self.produced += other.produced
        self.matched += other.matched


@dataclass
class CaseResult:
    id: str
    construction: str
    tally: Tally
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


def score_case(extractor: Extractor, case: dict[str, object]) -> CaseResult:
    response, prompt = str(case["response"]), case.get("prompt")
    claims = extractor.extract(response, prompt=str(prompt) if prompt else None).claims
    expected = Counter(normalise(str(c)) for c in case.get("claims", []))  # type: ignore[attr-defined]
    expected_reasons = Counter(str(r) for r in case.get("not_checkworthy", []))  # type: ignore[attr-defined]
    produced = Counter(normalise(c.text) for c in claims if c.checkworthy)
    produced_reasons = Counter(str(c.reason) for c in claims if not c.checkworthy)
    matched = sum((expected & produced).values()) + sum(
        (expected_reasons & produced_reasons).values()
    )
    tally = Tally(
        1,
        sum(expected.values()) + sum(expected_reasons.values()),
        sum(produced.values()) + sum(produced_reasons.values()),
        matched,
    )
    missing = [
        *(expected - produced).elements(),
        *(f"<{r}>" for r in (expected_reasons - produced_reasons).elements()),
    ]
    unexpected = [
        *(produced - expected).elements(),
        *(f"<{r}>" for r in (produced_reasons - expected_reasons).elements()),
    ]
    return CaseResult(str(case["id"]), str(case["construction"]), tally, missing, unexpected)


def score(extractor: Extractor, cases: Iterable[dict[str, object]]) -> dict[str, object]:
    """Per-construction and overall recall of expected claims and share of extra claims."""
    results = [score_case(extractor, case) for case in cases]
    by_construction: dict[str, Tally] = {}
    total = Tally()
    for result in results:
        by_construction.setdefault(result.construction, Tally()).add(result.tally)
        total.add(result.tally)

    def row(tally: Tally) -> dict[str, object]:
        return {**asdict(tally), "recall": round(tally.recall, 3), "extra": round(tally.extra, 3)}

    return {
        "total": row(total),
        "by_construction": {name: row(t) for name, t in by_construction.items()},
        "failures": [
            {"id": r.id, "missing": r.missing, "unexpected": r.unexpected}
            for r in results
            if r.missing or r.unexpected
        ],
    }


def table(report: dict[str, object]) -> str:
    """A plain-text table of a :func:`score` report."""
    lines = [
        f"{'construction':<26}{'cases':>6}{'expected':>9}{'found':>7}{'recall':>8}{'extra':>7}"
    ]
    rows = dict(report["by_construction"])  # type: ignore[call-overload]
    rows["TOTAL"] = report["total"]
    for name, r in rows.items():
        lines.append(
            f"{name:<26}{r['cases']:>6}{r['expected']:>9}{r['matched']:>7}"
            f"{r['recall']:>8.3f}{r['extra']:>7.3f}"
        )
    return "\n".join(lines)
