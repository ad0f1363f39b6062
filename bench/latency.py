"""Latency of checking a 150-word response against the built-in corpus, and where it goes.

Serves the app in this process on a loopback port (uvicorn in a thread) and
posts the response over real HTTP, warm, ``--runs`` times; ``--no-http`` calls
the pipeline directly instead. Prints and saves p50/p95/p99, the median time
of each stage (``options.timings``: extraction, embedding, search,
verification and its parts, aggregation, store), the time spent in model
forward passes (MiniLM, spaCy, the cross head), measured in the same runs,
and the overhead ratio: wall time ÷ forward-pass time. spaCy runs on a thread
of its own beside MiniLM, so the ratio can fall below one. Also the claims a
check verifies and claims/s at the median. The query memo is
emptied before every run, and so are the remembered verdicts, so each run pays
for its claims as a new response would.
Measured twice in one run: with the evidence sentences remembered from earlier
checks (a warm service, whose passages come back check after check), and as
``evidence_new``, the verifier's evidence memo emptied before every run too.
``CLAIMSIEVE_RUNTIME=torch`` measures the torch runtime instead of ONNX Runtime.
``--passages N`` checks against a corpus of N passages instead: the built-in
reference and, as distractors, the unique sentences of ``../shared/nli`` and
the passages of ``../shared/eval`` (then pairs of those sentences, up to N),
built once into the data folder as ``python-reference-N``.
Uses the data folder of the settings (default ./data), building the built-in
corpus there on first use.

    python bench/latency.py [--runs 30] [--no-http] [--passages 100000]
        [--out bench/results/latency.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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
        self._lock = threading.Lock()

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                result = function(*args, **kwargs)
                # spaCy's pipe is lazy: consume it inside the timed region.
                return list(result) if hasattr(result, "__next__") else result
            finally:
                with self._lock:
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(settings: Any) -> tuple[Any, str, Callable[[], None]]:
    """The app (no auth) on a loopback port in a thread: the app, its URL, a stop function."""
    import uvicorn

    from service.app import create_app

    app = create_app(settings.model_copy(update={"auth": False}))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return app, f"http://127.0.0.1:{port}", stop


def _served(settings: Any) -> tuple[Any, Callable[[], dict[str, Any]], Callable[[], None]]:
    """The app on a loopback port; a function that posts the response; one that stops it."""
    import httpx

    app, url, stop_server = serve(settings)
    client = httpx.Client(base_url=url, timeout=120)
    body = {"text": RESPONSE, "options": {"timings": True}}

    def post() -> dict[str, Any]:
        answer = client.post("/v1/checks", json=body)
        answer.raise_for_status()
        return answer.json()  # type: ignore[no-any-return]

    def stop() -> None:
        client.close()
        stop_server()

    return app.state.checker, post, stop


def distractors(count: int) -> list[Any]:
    """``count`` one- or two-sentence documents of real text from ``../shared``."""
    from retrieval.types import Document

    shared = ROOT.parent / "shared"
    sentences: dict[str, None] = {}
    for path in sorted((shared / "nli").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            sentences.update(dict.fromkeys([row["premise"], row["hypothesis"]]))
    for path in sorted((shared / "eval").glob("*/corpus.jsonl")):
        for line in path.read_text().splitlines():
            sentences[json.loads(line)["text"]] = None
    texts = list(sentences)
    if not texts:
        raise SystemExit(f"--passages needs {shared}/nli or {shared}/eval")
    pairs = (f"{a} {b}" for a, b in zip(texts, texts[1:] + texts[:1], strict=True))
    chosen = (texts + list(pairs))[:count]
    return [Document(f"distractor-{i}", "", text) for i, text in enumerate(chosen)]


def with_distractors(settings: Any, passages: int) -> Any:
    """Settings whose default corpus is the built-in reference plus distractors, built once."""
    from retrieval.builtin import python_reference
    from service import components

    name = f"python-reference-{passages}"
    settings = settings.model_copy(update={"default_corpus": name})
    built = components.build(settings)
    try:
        began = time.perf_counter()

        def documents() -> list[Any]:
            reference = python_reference()
            return reference + distractors(passages - len(reference))

        snapshot = built.checker.corpora.ensure(name, documents)
        print(f"{name}: {len(snapshot)} passages ({time.perf_counter() - began:.0f} s)")
    finally:
        built.engine.dispose()
    return settings


def _figures(
    totals: list[float], stages: list[dict[str, float]], forward: list[tuple[float, float, float]]
) -> dict[str, Any]:
    """Quantiles, the median of each stage, and the forward passes' share of the wall time."""
    quantiles = statistics.quantiles(totals, n=100)
    total = sum(totals)
    minilm, spacy, cross = (sum(f[k] for f in forward) for k in range(3))
    names = sorted({name for s in stages for name in s})
    return {
        "p50_ms": round(statistics.median(totals) * 1000, 1),
        "p95_ms": round(quantiles[94] * 1000, 1),
        "p99_ms": round(quantiles[98] * 1000, 1),
        "mean_ms": round(total / len(totals) * 1000, 1),
        "stages_median_ms": {
            name: round(statistics.median(s.get(name, 0.0) for s in stages), 1) for name in names
        },
        "forward_ms_per_check": {
            "minilm": round(minilm / len(totals) * 1000, 1),
            "spacy": round(spacy / len(totals) * 1000, 1),
            "cross_head": round(cross / len(totals) * 1000, 1),
        },
        "share_model_forward": round((minilm + spacy + cross) / total, 3),
        "overhead_ratio": round(total / max(minilm + spacy + cross, 1e-9), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-http", action="store_true", help="call the pipeline directly")
    parser.add_argument("--passages", type=int, default=0, help="a corpus this large instead")
    parser.add_argument("--out", type=Path, default=Path("bench/results/latency.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from claims.nlp import load_spacy
    from retrieval.embedders import MemoEmbedder
    from service import components
    from service.settings import get_settings

    settings = get_settings()
    if args.passages:
        settings = with_distractors(settings, args.passages)
    began = time.perf_counter()
    if args.no_http:
        checker = components.build(settings).checker

        def run_once() -> dict[str, float]:
            timings = checker.check(RESPONSE).timings
            return {name: seconds * 1000 for name, seconds in timings.items()}

        def stop() -> None:
            pass

    else:
        checker, post, stop = _served(settings)

        def run_once() -> dict[str, float]:
            return post()["timings"]  # type: ignore[no-any-return]

    startup = time.perf_counter() - began

    embed_watch, spacy_watch = Stopwatch(), Stopwatch()
    # Time MiniLM itself, behind the query memo.
    memo = checker.embedder
    assert isinstance(memo, MemoEmbedder)
    memo.inner = TimedEmbedder(memo.inner, embed_watch)
    nlp = load_spacy(settings.spacy_model)
    nlp.pipe = spacy_watch.wrap(nlp.pipe)  # type: ignore[method-assign]
    evidence = getattr(checker.verifier, "extractor", None)

    def measure(new_evidence: bool) -> dict[str, Any]:
        def forget() -> None:
            memo.clear()
            checker.forget()  # remembered verdicts: each run is a new response
            if new_evidence and evidence is not None:
                evidence.forget()

        for _ in range(args.warmup):
            forget()
            run_once()
        totals, stages, forward = [], [], []
        for _ in range(args.runs):
            forget()
            embed_watch.seconds = spacy_watch.seconds = 0.0
            began = time.perf_counter()
            stage_ms = run_once()
            totals.append(time.perf_counter() - began)
            stages.append(stage_ms)
            cross_s = stage_ms.get("verification.cross_head", 0.0) / 1000
            forward.append((embed_watch.seconds, spacy_watch.seconds, cross_s))
        return _figures(totals, stages, forward)

    try:
        remembered = measure(new_evidence=False)
        new = measure(new_evidence=True)
    finally:
        stop()
    # What each check verifies: the extractor decides it, and a better split costs time.
    claims = sum(c.checkworthy for c in checker.extractor.extract(RESPONSE).claims)
    result = {
        "benchmark": "check latency, 150-word response, built-in corpus, "
        + ("pipeline only" if args.no_http else "over HTTP on loopback"),
        "words": len(RESPONSE.split()),
        "claims": claims,
        "claims_per_s_at_p50": round(claims / remembered["p50_ms"] * 1000, 1),
        "runs": args.runs,
        "warmup": args.warmup,
        "runtime": settings.runtime,
        "corpus": settings.default_corpus,
        **remembered,
        "evidence_new": new,
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
