"""Cross-dataset experiment: a cross head pre-trained on generated pairs, then on labels.

The recipe of ``bench/default_head.py``'s ``no-fever-generated`` head (the
train halves of climate_fever and halueval_qa, never a fever_sf item), but
its cross head first reads ``--pairs`` pairs generated from those sets'
passages (one epoch, all three labels balanced), then continues on the
labelled pairs (two epochs, minus the feature head's calibration rows, on
which the mix is then fitted). ``../shared/notes/verifier-findings.md``
found that order lifting a fully fine-tuned MiniLM on fever_sf; this checks
it for the adapters. Needs the feature head and feature cache that
``bench/default_head.py --results DIR`` writes (``DIR/heads/no-fever-generated``,
``DIR/cache``). Writes ``OUT/head`` (feature head + cross head, for
``claimsieve eval --head``) and ``OUT/stage1`` (the cross head after the
generated pairs alone).

    python bench/cross_pretrain.py --results bench/results --out bench/results/pretrained
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from default_head import GENERATED_WEIGHT, SETS, cited_passages  # noqa: E402

from claims import cross  # noqa: E402
from claims.extraction import ParseExtractor  # noqa: E402
from claims.head import held_out_rows  # noqa: E402
from claims.head import load as load_head  # noqa: E402
from claims.nlp import load_spacy  # noqa: E402
from retrieval.embedders import MiniLMEmbedder  # noqa: E402
from service import training  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "pretrained")
    parser.add_argument("--pairs", type=int, default=10_000, help="generated pairs asked for")
    args = parser.parse_args()
    feature_head, cache = args.results / "heads" / "no-fever-generated", args.results / "cache"
    embedder, nlp = MiniLMEmbedder(), load_spacy()
    extractor = ParseExtractor(nlp)
    groups = {
        n: training.labelled_examples(
            args.eval / n / "claims.jsonl", args.eval / n / "corpus.jsonl", extractor, part="train"
        )
        for n in SETS[1:]
    }
    fever_free = [p for n in SETS[1:] for p in cited_passages(args.eval / n)]
    # The feature head's own generated rows (as default_head.py makes them), for its row order.
    groups["generated_no_fever"] = training.generated_examples(
        fever_free, embedder, nlp, 3000, seed=1
    )
    started = time.perf_counter()
    pretraining = training.generated_examples(fever_free, embedder, nlp, args.pairs, seed=2)
    counts = {c: sum(e.label == c for e in pretraining) for c in cross.CLASSES}
    print(f"generated {len(pretraining)} pairs {counts} in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    stage1 = cross.train(
        training.cross_pairs(pretraining, embedder), epochs=1, card={"stage": "generated"}
    )
    print(f"stage 1 in {time.perf_counter() - started:.0f} s", flush=True)
    stage1.save(args.out / "stage1")

    names = ["climate_fever", "halueval_qa", "generated_no_fever"]
    examples = [
        replace(e, weight=GENERATED_WEIGHT) if n.startswith("generated") else e
        for n in names
        for e in groups[n]
    ]
    for n in names:
        if list(np.load(cache / f"{n}.npz")["labels"]) != [e.label for e in groups[n]]:
            sys.exit(f"{cache}/{n}.npz does not match: run bench/default_head.py first")
    x = np.concatenate([np.load(cache / f"{n}.npz")["x"] for n in names])
    labelled = [p for n in names[:2] for p in training.cross_pairs(groups[n], embedder)]
    held = held_out_rows(len(examples))[: len(labelled)]
    train_pairs = [p for p, h in zip(labelled, held, strict=True) if not h]
    started = time.perf_counter()
    mate = cross.train(
        train_pairs,
        epochs=2,
        init=stage1,
        card={"version": "1-no-fever-pretrained", "recipe": names[:2]},
    )
    print(f"stage 2 in {time.perf_counter() - started:.0f} s", flush=True)
    head = load_head(feature_head)
    rows = np.flatnonzero(held)
    gold = [labelled[i].label for i in rows]
    fitted = cross.fit_mix(head.scores(x[rows]), mate.scores([labelled[i] for i in rows]), gold)
    mate.card["mix"] = {**fitted, "fitted_on": len(rows)}
    print(f"mix {mate.card['mix']}")
    shutil.copytree(feature_head, args.out / "head", dirs_exist_ok=True)
    mate.save(args.out / "head")
    print(f"wrote {args.out / 'head'}: claimsieve eval --head {args.out / 'head'} …")


if __name__ == "__main__":
    main()
