"""Learning curve: the shipped head, retrained as simulated trainer reviews come in.

For each data set, the test half of the fixed split (never seen by the
shipped heads) is shuffled (seeds 0..``--shuffles``-1) and cut in two: the
first 400 items are the review pool, the rest stay untouched and are the only
items scored. Reviews are simulated from gold labels (the claim with its gold
evidence, as a trainer would confirm or correct it). After 0, 50, 100, 200 and
400 reviews both heads are refitted as ``claimsieve train --from-reviews
--base default`` refits them: the feature head on its own training rows plus
the reviews, weighted ``--weight`` (``claims.training.fit``, calibration
refitted on its held-out rows), and the cross-encoder head's classifier on the
reviews (``claims.cross.adapt``, its strength chosen by cross-validation on
the reviews alone). Scores are the two mixed as the service mixes them; the
same with the cross head left as shipped is printed beside them
(``--no-cross``: the feature head alone). Figures per shuffle and their mean
are saved.

    python bench/learning_curve.py [--eval ../shared/eval] [--datasets fever_sf climate_fever]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from claims import cross, training  # noqa: E402
from claims import head as heads  # noqa: E402
from claims.datasets import gold_evidence, read_corpus, read_items, split  # noqa: E402
from claims.features import FEATURES, FeatureExtractor  # noqa: E402
from claims.nlp import load_spacy  # noqa: E402
from retrieval.embedders import MiniLMEmbedder  # noqa: E402
from service.components import default_head_path  # noqa: E402

STEPS = (0, 50, 100, 200, 400)


def score(
    head: heads.Head,
    x: np.ndarray,
    gold: list[str],
    mate: tuple[np.ndarray, float, float] | None,
) -> dict[str, Any]:
    return {k: round(v or 0.0, 4) for k, v in training.score(head, x, gold, mate).items()}


def curve(
    name: str,
    folder: Path,
    extractor: FeatureExtractor,
    encoder: MiniLMEmbedder,
    weight: float,
    mate: cross.CrossHead | None,
    shuffles: int,
) -> dict[str, Any]:
    corpus = read_corpus(folder / "corpus.jsonl")
    items = [
        i
        for i in read_items(folder / "claims.jsonl")
        if i.claim is not None and i.label != "DISPUTED" and split(i) == "test"
    ]
    examples = [
        training.Example(i.claim or "", tuple(gold_evidence(i, corpus)), i.label, "review", weight)
        for i in items
    ]
    x = cached(
        f"curve-{name}-features", len(examples), lambda: training.featurize(examples, extractor)
    )
    pairs = training.cross_pairs(examples, encoder) if mate is not None else []
    pooled = (
        cached(f"curve-{name}-pooled-{mate.version}", len(examples), lambda: mate.pooled(pairs))
        if mate is not None
        else None
    )
    base = heads.load(default_head_path(), FEATURES)
    runs = []
    for seed in range(shuffles):
        order = list(range(len(items)))
        random.Random(seed).shuffle(order)
        pool, untouched = order[: STEPS[-1]], order[STEPS[-1] :]
        gold = [items[i].label for i in untouched]
        shipped = (
            mate.classify(pooled[untouched]) if mate is not None and pooled is not None else None
        )
        rows = []
        for n in STEPS:
            started = time.perf_counter()
            reviewed = pool[:n]
            head = (
                base
                if n == 0
                else training.fit([examples[i] for i in reviewed], x[reviewed], base=base)[0]
            )
            row: dict[str, Any] = {"reviews": n}
            if mate is None or pooled is None:
                row.update(score(head, x[untouched], gold, None))
            else:
                adapted = (
                    mate if n == 0 else mate.adapted(pooled[reviewed], [pairs[i] for i in reviewed])
                )
                row.update(
                    score(
                        head, x[untouched], gold, (adapted.classify(pooled[untouched]), *mate.mix)
                    )
                )
                row["strength"] = (adapted.card.get("adapted") or [{}])[-1].get("strength")
                row["cross_as_shipped"] = score(head, x[untouched], gold, (shipped, *mate.mix))
            row["fit_s"] = round(time.perf_counter() - started, 1)
            rows.append(row)
            print(
                f"{name:<15}shuffle {seed}  {n:>4} reviews  acc {row['accuracy']:.4f}  "
                f"macro-F1 {row['macro_f1']:.4f}  ECE {row['ece']:.4f}",
                flush=True,
            )
        runs.append(rows)
    mean = [
        {
            "reviews": n,
            **{
                k: round(float(np.mean([run[j][k] for run in runs])), 4)
                for k in ("accuracy", "macro_f1", "ece")
            },
            **(
                {
                    f"cross_as_shipped_{k}": round(
                        float(np.mean([run[j]["cross_as_shipped"][k] for run in runs])), 4
                    )
                    for k in ("accuracy", "macro_f1")
                }
                if mate is not None
                else {}
            ),
        }
        for j, n in enumerate(STEPS)
    ]
    for row in mean:
        print(
            f"{name:<15}mean of {shuffles}  {row['reviews']:>4} reviews  "
            f"acc {row['accuracy']:.4f}  "
            f"macro-F1 {row['macro_f1']:.4f}  ECE {row['ece']:.4f}",
            flush=True,
        )
    return {
        "pool": STEPS[-1],
        "untouched": len(items) - STEPS[-1],
        "weight": weight,
        "cross": mate.version if mate is not None else None,
        "mean": mean,
        "shuffles": runs,
    }


def cached(key: str, rows: int, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """An array kept in bench/results/cache between runs.

    Recomputed when its row count or the feature list changes.
    """
    path = ROOT / "bench" / "results" / "cache" / f"{key}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            if len(z["a"]) == rows and list(z["names"]) == list(FEATURES):
                return np.asarray(z["a"])
    found = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, a=found, names=np.array(FEATURES))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--datasets", nargs="+", default=["fever_sf", "climate_fever"])
    parser.add_argument("--weight", type=float, default=5.0, help="weight of a review row")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "learning_curve.json"
    )
    parser.add_argument("--no-cross", action="store_true", help="the feature head alone")
    parser.add_argument("--shuffles", type=int, default=5, help="review orders, averaged")
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
        results[name] = curve(name, folder, extractor, encoder, args.weight, mate, args.shuffles)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
