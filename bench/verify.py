"""Verification throughput of the ``features`` verifier: claims/s with 5 evidence passages each.

climate_fever claims with their five candidate sentences as five passages
(from ../shared/eval), and fever_sf claims with five passages each (their gold
passages topped up with the passages that follow in the corpus), verified in
batches of 32 as the service does for one check, with the shipped head and its
cross-encoder head. Time inside model forward passes (MiniLM for sentence and
word-piece vectors, spaCy, the cross-encoder) is measured by wrapping each,
and printed as a share.

    python bench/verify.py [--eval ../shared/eval] [--claims 320]
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

from claims import cross  # noqa: E402
from claims import head as heads  # noqa: E402
from claims.datasets import gold_evidence, read_corpus, read_items  # noqa: E402
from claims.features import FEATURES, FeatureExtractor  # noqa: E402
from claims.nlp import load_spacy  # noqa: E402
from claims.types import Claim, Span  # noqa: E402
from claims.verification import FeaturesVerifier  # noqa: E402
from retrieval.embedders import MiniLMEmbedder  # noqa: E402
from service.components import default_head_path  # noqa: E402


class Timed:
    """Wraps an object; time spent in the named methods is added to ``seconds``."""

    def __init__(self, inner: Any, methods: tuple[str, ...]) -> None:
        self._inner, self.seconds = inner, 0.0
        for name in methods:
            setattr(self, name, self._timed(getattr(inner, name)))

    def _timed(self, method: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                out = method(*args, **kwargs)
                # spaCy's pipe is lazy: the work happens while it is read.
                return list(out) if hasattr(out, "__next__") else out
            finally:
                self.seconds += time.perf_counter() - started

        return call

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def workload(eval_dir: Path, n: int) -> list[tuple[str, list[Any]]]:
    climate = read_corpus(eval_dir / "climate_fever" / "corpus.jsonl")
    rows = [
        (i.claim or "", gold_evidence(i, climate))
        for i in read_items(eval_dir / "climate_fever" / "claims.jsonl")
        if len(i.gold_ids) == 5
    ][: n // 2]
    fever = read_corpus(eval_dir / "fever_sf" / "corpus.jsonl")
    ids = list(fever)
    for item in list(read_items(eval_dir / "fever_sf" / "claims.jsonl"))[: n - len(rows)]:
        passages = gold_evidence(item, fever)[:5]
        start = ids.index(passages[-1].passage_id) + 1
        passages += [fever[pid] for pid in ids[start : start + 5 - len(passages)]]
        rows.append((item.claim or "", passages))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--claims", type=int, default=320)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "verify.json")
    args = parser.parse_args()
    encoder = Timed(MiniLMEmbedder(), ("encode", "encode_tokens"))
    nlp = Timed(load_spacy(), ("pipe",))
    found = cross.load(default_head_path())
    mate = Timed(found, ("scores",)) if found is not None else None
    verifier = FeaturesVerifier(
        FeatureExtractor(encoder, nlp),  # type: ignore[arg-type]
        heads.load(default_head_path(), FEATURES),
        mate,  # type: ignore[arg-type]
    )
    rows = workload(args.eval, args.claims)
    verifier.verify(*zip(*[(Claim(c, c, (Span(0, len(c)),)), p) for c, p in rows[:8]], strict=True))
    encoder.seconds = nlp.seconds = 0.0
    if mate is not None:
        mate.seconds = 0.0

    started = time.perf_counter()
    for start in range(0, len(rows), args.batch):
        chunk = rows[start : start + args.batch]
        verifier.verify([Claim(c, c, (Span(0, len(c)),)) for c, _ in chunk], [p for _, p in chunk])
    total = time.perf_counter() - started
    crossed = mate.seconds if mate is not None else 0.0
    result = {
        "machine": platform.platform(),
        "verifier": f"{verifier.name}/{verifier.version}",
        "claims": len(rows),
        "passages_per_claim": 5,
        "batch": args.batch,
        "seconds": round(total, 2),
        "claims_per_s": round(len(rows) / total, 1),
        "share_minilm": round(encoder.seconds / total, 3),
        "share_spacy": round(nlp.seconds / total, 3),
        "share_cross_encoder": round(crossed / total, 3),
        "share_model_forward": round((encoder.seconds + nlp.seconds + crossed) / total, 3),
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
