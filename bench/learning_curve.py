"""Learning curve: the shipped head, retrained as simulated trainer reviews come in.

For each data set, the test half of the fixed split (never seen by the
shipped head) is shuffled once (seed 0) and cut in two: the first 400 items
are the review pool, the rest stay untouched and are the only items scored.
Reviews are simulated from gold labels (the claim with its gold evidence, as a
trainer would confirm or correct it). After 0, 50, 100, 200 and 400 reviews the
head is refitted (``service.training.fit``: the shipped head's own training
rows plus the reviews, weighted ``--weight``; calibration refitted on its
held-out rows) and scored on the untouched items, mixed with the shipped
cross-encoder head's scores as the service mixes them (``--no-cross``: the
feature head alone).

    python bench/learning_curve.py [--eval ../shared/eval] [--datasets climate_fever fever_sf]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from claims import cross, metrics  # noqa: E402
from claims import head as heads  # noqa: E402
from claims.datasets import gold_evidence, read_corpus, read_items, split  # noqa: E402
from claims.features import FEATURES, FeatureExtractor  # noqa: E402
from claims.nlp import load_spacy  # noqa: E402
from retrieval.embedders import MiniLMEmbedder  # noqa: E402
from service import training  # noqa: E402
from service.components import default_head_path  # noqa: E402

STEPS = (0, 50, 100, 200, 400)


def score(
    head: heads.Head,
    x: np.ndarray,
    gold: list[str],
    mate: tuple[np.ndarray, float, float] | None,
) -> dict[str, Any]:
    scores = head.scores(x)
    if mate is not None:
        scores = cross.combine(scores, *mate)
    pred = [max(s, key=lambda k: s[k]) for s in scores]
    summary = metrics.summary(metrics.confusion(gold, pred))
    return {
        "accuracy": round(summary["accuracy"], 4),
        "macro_f1": round(summary["macro_f1"], 4),
        "ece": round(
            metrics.expected_calibration_error(
                [max(s.values()) for s in scores], [p == g for p, g in zip(pred, gold, strict=True)]
            )
            or 0.0,
            4,
        ),
    }


def curve(
    name: str,
    folder: Path,
    extractor: FeatureExtractor,
    encoder: MiniLMEmbedder,
    weight: float,
    mate: cross.CrossHead | None,
) -> dict[str, Any]:
    corpus = read_corpus(folder / "corpus.jsonl")
    items = [
        i
        for i in read_items(folder / "claims.jsonl")
        if i.claim is not None and i.label != "DISPUTED" and split(i) == "test"
    ]
    random.Random(0).shuffle(items)
    pool, untouched = items[: STEPS[-1]], items[STEPS[-1] :]
    examples = [
        training.Example(i.claim or "", tuple(gold_evidence(i, corpus)), i.label, "review", weight)
        for i in items
    ]
    cache = ROOT / "bench" / "results" / "cache" / f"curve-{name}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            x = (
                z["x"]
                if list(z["names"]) == list(FEATURES) and len(z["x"]) == len(examples)
                else None
            )
    else:
        x = None
    if x is None:
        x = training.featurize(examples, extractor)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, x=x, names=np.array(FEATURES))
    x_pool, x_test = x[: len(pool)], x[len(pool) :]
    # The cross-encoder head is not refitted by reviews; its scores are mixed in as served.
    mate_scores = (
        (mate.scores(training.cross_pairs(examples[len(pool) :], encoder)), *mate.mix)
        if mate is not None
        else None
    )
    gold = [i.label for i in untouched]
    base = heads.load(default_head_path(), FEATURES)
    rows = []
    for n in STEPS:
        started = time.perf_counter()
        head = base if n == 0 else training.fit(examples[:n], x_pool[:n], base=base)[0]
        rows.append(
            {
                "reviews": n,
                **score(head, x_test, gold, mate_scores),
                "fit_s": round(time.perf_counter() - started, 1),
            }
        )
        print(
            f"{name:<15}{n:>6}  acc {rows[-1]['accuracy']:.4f}  "
            f"macro-F1 {rows[-1]['macro_f1']:.4f}  ECE {rows[-1]['ece']:.4f}",
            flush=True,
        )
    return {
        "pool": len(pool),
        "untouched": len(untouched),
        "weight": weight,
        "cross": mate.version if mate is not None else None,
        "steps": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--datasets", nargs="+", default=["climate_fever", "fever_sf"])
    parser.add_argument("--weight", type=float, default=5.0, help="weight of a review row")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "learning_curve.json"
    )
    parser.add_argument("--no-cross", action="store_true", help="the feature head alone")
    args = parser.parse_args()
    encoder = MiniLMEmbedder()
    extractor = FeatureExtractor(encoder, load_spacy())
    mate = None if args.no_cross else cross.load(default_head_path())
    results: dict[str, Any] = {"steps": STEPS}
    for name in args.datasets:
        folder = args.eval / name
        if not folder.exists():
            print(f"skipping {name}: {folder} not found", file=sys.stderr)
            continue
        results[name] = curve(name, folder, extractor, encoder, args.weight, mate)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
