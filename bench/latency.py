"""Latency of checking a 150-word response against the built-in corpus.

Prints and saves p50/p95 over warm runs, and the share of each run spent in
model forward passes (MiniLM encode calls and spaCy pipes), measured in the
same runs. Uses the data folder of the settings (default ./data), building
the built-in corpus there on first use.

    python bench/latency.py [--runs 30] [--out bench/results/latency.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

RESPONSE = (
    "Python's for statement iterates over the items of any sequence, such as a list or a "
    "string, in the order that they appear. The break statement terminates the nearest "
    "enclosing loop and skips the optional else clause of that loop. The continue statement "
    "moves on to the next iteration of the loop. Tuples are immutable sequences, while lists "
    "are mutable, so a list can be changed in place. The len function returns the number of "
    "items of an object. The with statement wraps the execution of a block with methods "
    "defined by a context manager. A lambda expression creates an anonymous function that "
    "can contain several statements. The global statement declares that the listed "
    "identifiers are to be interpreted as globals. The pass statement is a null operation "
    "that does nothing when it is executed. Dictionaries were made unordered in Python 3.7. "
    "The assert statement is a convenient way to insert debugging assertions into a program."
)


class Stopwatch:
    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                result = function(*args, **kwargs)
                # spaCy's pipe is lazy: consume it inside the timed region.
                return list(result) if hasattr(result, "__next__") else result
            finally:
                self.seconds += time.perf_counter() - began

        return timed


class TimedEmbedder:
    def __init__(self, inner: Any, watch: Stopwatch) -> None:
        self.name, self.dim = inner.name, inner.dim
        self._encode = watch.wrap(inner.encode)
        self._encode_tokens = watch.wrap(inner.encode_tokens)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)  # type: ignore[no-any-return]

    def encode_tokens(self, texts: Sequence[str]) -> Any:
        return self._encode_tokens(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/latency.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from claims.nlp import load_spacy
    from retrieval.embedders import MemoEmbedder
    from service import components
    from service.settings import get_settings

    settings = get_settings()
    began = time.perf_counter()
    built = components.build(settings)
    startup = time.perf_counter() - began
    checker = built.checker

    embed_watch, spacy_watch = Stopwatch(), Stopwatch()
    # Time MiniLM itself, behind the query memo; the memo is emptied before every run,
    # so each run pays for its claims as a new response would.
    memo = checker.embedder
    assert isinstance(memo, MemoEmbedder)
    memo.inner = TimedEmbedder(memo.inner, embed_watch)
    nlp = load_spacy(settings.spacy_model)
    nlp.pipe = spacy_watch.wrap(nlp.pipe)  # type: ignore[method-assign]

    words = len(RESPONSE.split())
    for _ in range(args.warmup):
        memo.clear()
        checker.check(RESPONSE)
    totals, forward = [], []
    for _ in range(args.runs):
        memo.clear()
        embed_watch.seconds = spacy_watch.seconds = 0.0
        began = time.perf_counter()
        outcome = checker.check(RESPONSE)
        totals.append(time.perf_counter() - began)
        forward.append((embed_watch.seconds, spacy_watch.seconds))

    total = sum(totals)
    embed = sum(f[0] for f in forward)
    spacy_time = sum(f[1] for f in forward)
    quantiles = statistics.quantiles(totals, n=100)
    result = {
        "benchmark": "check latency, 150-word response, built-in corpus, pipeline only (no HTTP)",
        "words": words,
        "claims": len(outcome.results),
        "checkworthy": outcome.summary.checkworthy,
        "corpus": {
            "name": outcome.corpus,
            "version": outcome.corpus_version,
            "passages": len(checker.corpora.current(outcome.corpus)),  # type: ignore[arg-type]
        },  # type: ignore[union-attr]
        "runs": args.runs,
        "warmup": args.warmup,
        "p50_ms": round(statistics.median(totals) * 1000, 1),
        "p95_ms": round(quantiles[94] * 1000, 1),
        "mean_ms": round(total / len(totals) * 1000, 1),
        "share_model_forward": round((embed + spacy_time) / total, 3),
        "share_minilm": round(embed / total, 3),
        "share_spacy": round(spacy_time / total, 3),
        "startup_s": round(startup, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"saved to {args.out}")


if __name__ == "__main__":
    main()
