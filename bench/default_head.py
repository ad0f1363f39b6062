"""Trains the shipped verifier head, and the two comparison heads, from data it names.

Data (../shared/eval; only the *train* half of each set's fixed split,
``claims.datasets.split``, so the test halves stay unseen):

- fever_sf: claims with their gold evidence; SufficientFacts variants whose
  evidence was cut down, as NOT_ENOUGH_INFO;
- climate_fever: claims with all five candidate sentences (DISPUTED left
  out), and each candidate sentence on its own with its annotated label;
- halueval_qa: answers split into claims, the question as the prompt;
- generated pairs (``claims.generate``) from the passages the train halves cite.

Heads written:

- ``claims/heads/default`` (shipped): the three labelled train halves, plus the
  generated pairs at weight 0.3 (they teach plain typed contradictions; alone
  they transfer badly, as ``../shared/notes/verifier-findings.md`` found);
- ``bench/results/heads/no-fever``: climate_fever and halueval_qa only — the
  cross-dataset figure on fever_sf; ``no-fever-generated`` adds pairs generated
  from their passages (never from fever passages);
- ``bench/results/heads/generated-only``: generated pairs only, no labels;
- ``bench/results/heads/labelled-only``: the shipped recipe without generated pairs.

The shipped head and ``no-fever-generated`` get a cross-encoder head
(``claims.cross``: MiniLM adapters, the claim read with its best sentences)
trained on the same recipe's labelled examples, minus the rows the feature
head keeps out for its calibration; on those rows, which neither head saw, the
weight and temperature of the mix are fitted; the shipped head's cross head
is then refitted on every labelled row, keeping that mix. ``--no-cross`` skips
this (it takes about three quarters of an hour on two cores).

Features of every example are computed once (cached under bench/results/cache).

    python bench/default_head.py [--eval ../shared/eval] [--pairs 3000] [--no-cross]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from claims import cross  # noqa: E402
from claims.datasets import read_corpus, read_items, split  # noqa: E402
from claims.extraction import ParseExtractor  # noqa: E402
from claims.features import FEATURES, FeatureExtractor  # noqa: E402
from claims.head import held_out_rows  # noqa: E402
from claims.nlp import load_spacy  # noqa: E402
from retrieval.embedders import MiniLMEmbedder  # noqa: E402
from service import training  # noqa: E402

SETS = ("fever_sf", "climate_fever", "halueval_qa")
# Generated pairs teach the plain typed contradictions (a year or a name changed in an
# otherwise identical sentence) that the labelled sets rarely show; weighted low, since
# they are easier than real claims and otherwise pull real paraphrases towards REFUTED.
GENERATED_WEIGHT = 0.3
VERSION = "1"


def cited_passages(folder: Path) -> list:
    """Passages cited by the train half of a set (generation never reads the test half)."""
    corpus = read_corpus(folder / "corpus.jsonl")
    wanted: dict[str, None] = {}
    for item in read_items(folder / "claims.jsonl"):
        if split(item) == "train":
            wanted.update(dict.fromkeys(item.gold_ids))
    return [corpus[pid] for pid in wanted if pid in corpus]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--pairs", type=int, default=3000, help="generated pairs per recipe")
    parser.add_argument("--out", type=Path, default=ROOT / "claims" / "heads" / "default")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--no-cross", action="store_true", help="feature heads only")
    parser.add_argument("--cross-epochs", type=int, default=2)
    args = parser.parse_args()
    args.out, args.results = args.out.resolve(), args.results.resolve()
    for name in SETS:
        if not (args.eval / name).exists():
            sys.exit(f"{args.eval / name} not found: the head is trained from ../shared/eval")
    started = time.perf_counter()
    embedder, nlp = MiniLMEmbedder(), load_spacy()
    extractor = ParseExtractor(nlp)
    features = FeatureExtractor(embedder, nlp)
    cache = args.results / "cache"
    cache.mkdir(parents=True, exist_ok=True)

    groups: dict[str, list[training.Example]] = {}
    for name in SETS:
        folder = args.eval / name
        groups[name] = training.labelled_examples(
            folder / "claims.jsonl", folder / "corpus.jsonl", extractor, part="train"
        )
    fever_free = [p for name in SETS[1:] for p in cited_passages(args.eval / name)]
    everything = cited_passages(args.eval / "fever_sf") + fever_free
    groups["generated"] = training.generated_examples(everything, embedder, nlp, args.pairs)
    groups["generated_no_fever"] = training.generated_examples(
        fever_free, embedder, nlp, args.pairs, seed=1
    )
    matrices = {}
    for name, examples in groups.items():
        path = cache / f"{name}.npz"
        labels = np.array([e.label for e in examples])
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                if list(z["names"]) == list(FEATURES) and list(z["labels"]) == list(labels):
                    matrices[name] = z["x"]
        if name not in matrices:
            print(f"features: {name} ({len(examples)} examples)", file=sys.stderr)
            matrices[name] = training.featurize(examples, features)
            np.savez_compressed(path, x=matrices[name], labels=labels, names=np.array(FEATURES))

    recipes = {
        args.out: ["fever_sf", "climate_fever", "halueval_qa", "generated"],
        args.results / "heads" / "no-fever": ["climate_fever", "halueval_qa"],
        args.results / "heads" / "no-fever-generated": [
            "climate_fever",
            "halueval_qa",
            "generated_no_fever",
        ],
        args.results / "heads" / "generated-only": ["generated"],
        args.results / "heads" / "labelled-only": ["fever_sf", "climate_fever", "halueval_qa"],
    }
    with_cross = {args.out, args.results / "heads" / "no-fever-generated"}
    # The cross-dataset head: its two labelled sets lean to different labels, so each set's
    # labels are balanced within it (training.balanced_by_source).
    by_source = {args.results / "heads" / "no-fever-generated"}
    pairs: dict[str, list[cross.Pair]] = {}
    summary: dict[str, Any] = {}
    for out, names in recipes.items():
        alone = names == ["generated"]
        examples = [
            replace(e, weight=GENERATED_WEIGHT) if n.startswith("generated") and not alone else e
            for n in names
            for e in groups[n]
        ]
        if out in by_source:
            examples = training.balanced_by_source(examples)
        x = np.concatenate([matrices[n] for n in names])
        card = {
            "name": "features",
            "version": VERSION if out == args.out else f"{VERSION}-{out.name}",
            "recipe": names,
            "split": "claims.datasets.split, seed claimsieve-eval-1: train halves only",
            "generated_pairs_from": "passages cited by the train halves",
            "features": list(FEATURES),
            "balance": "labels within each data set" if out in by_source else "labels",
            "model": "HistGradientBoostingClassifier(max_iter=250, learning_rate=0.06, "
            "max_leaf_nodes=15, min_samples_leaf=20, l2_regularization=1.0), classes balanced",
        }
        head, report = training.fit(examples, x, card=card)
        head.save(out)
        key = str(out.relative_to(ROOT) if out.is_relative_to(ROOT) else out)
        summary[key] = {
            "rows": len(examples),
            "label_counts": report.label_counts,
            "calibration": report.calibration,
            "ece_held_out": [report.ece_before, report.ece_after],
        }
        print(
            f"{out}: {len(examples)} rows {report.label_counts}, calibration {report.calibration}"
        )
        if args.no_cross or out not in with_cross:
            continue
        for name in names:
            if not name.startswith("generated") and name not in pairs:
                pairs[name] = training.cross_pairs(groups[name], embedder)
        labelled = [p for n in names if not n.startswith("generated") for p in pairs[n]]
        # Labelled groups come first in the recipe, so their rows lead the head's rows
        # (and take those rows' weights).
        labelled = [replace(p, weight=e.weight) for p, e in zip(labelled, examples, strict=False)]
        held = held_out_rows(len(examples))[: len(labelled)]
        train_pairs = [p for p, h in zip(labelled, held, strict=True) if not h]
        started_cross = time.perf_counter()
        mate = cross.train(
            train_pairs,
            epochs=args.cross_epochs,
            card={
                "version": card["version"],
                "recipe": [n for n in names if not n.startswith("generated")],
                "split": card["split"] + "; minus the feature head's calibration rows",
            },
        )
        seconds = time.perf_counter() - started_cross
        rows = np.flatnonzero(held)
        fitted = cross.fit_mix(
            head.scores(x[rows]),
            mate.scores([labelled[i] for i in rows]),
            [labelled[i].label for i in rows],
        )
        mix = {**fitted, "fitted_on": len(rows)}
        if out == args.out:
            # The shipped head: with the mix fitted, refit on every labelled row (the usual
            # last step once a setting is chosen on held-out rows).
            mate = cross.train(
                labelled,
                epochs=args.cross_epochs,
                card={
                    **{k: mate.card[k] for k in ("version", "recipe")},
                    "split": card["split"],
                    "mix_fitted_with": f"the same recipe without those rows ({len(train_pairs)} "
                    "pairs), on the feature head's calibration rows",
                },
            )
        mate.card["mix"] = mix
        mate.save(out)
        summary[key]["cross"] = {
            "pairs": len(train_pairs),
            "seconds": round(seconds, 1),
            "pairs_per_s": round(args.cross_epochs * len(train_pairs) / seconds, 2),
            "mix": mate.card["mix"],
            "bytes": (out / "cross.npz").stat().st_size,
        }
        print(f"{out}: cross head on {len(train_pairs)} pairs, mix {mate.card['mix']}")
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (args.results / "default_head.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
