"""Cross-dataset experiment: a cross head pre-trained on generated pairs, then on labels.

The recipe of ``bench/default_head.py``'s ``no-fever-generated`` head (the
train halves of climate_fever and halueval_qa, never a fever_sf item, labels
balanced within each set), but its cross head first reads ``--pairs`` pairs
generated from those sets' passages (one epoch, all three labels balanced),
then continues on the labelled pairs (two epochs, minus the feature head's
calibration rows, on which the mix is then fitted), the order
``../shared/notes/verifier-findings.md`` found lifting a fully fine-tuned
MiniLM on fever_sf. With ``--tune layers`` this is the head that reaches
0.76 on fever_sf (see ``claims/heads/default/MODEL_CARD.md``).

Three steps, so that the training step can also run on a machine with a GPU
and only torch and transformers (no spaCy, no ../shared):

- ``pairs``: generates and aligns the pairs (spaCy, MiniLM) and writes
  ``OUT/pairs/{generated,labelled,calibration}.jsonl`` and the calibration
  rows' features ``OUT/pairs/calibration.npz``. Needs the feature cache that
  ``bench/default_head.py --results DIR`` writes (``DIR/cache``); about 5 minutes.
- ``train``: stage 1 on the generated pairs, stage 2 from there on the
  labelled ones; writes ``OUT/<tune>/stage1`` and ``OUT/<tune>/cross``.
  ``--tune adapters`` (LoRA, as shipped) or ``layers`` (the six transformer
  blocks trained; 12 + 5 minutes on 2 CPU cores, under a minute on a GPU);
  ``--model`` a MiniLM folder (default: the packaged one).
- ``mix``: fits the mix with the feature head ``DIR/heads/no-fever-generated``
  on the calibration rows and writes ``OUT/<tune>/head`` for
  ``claimsieve eval --head``.

    python bench/default_head.py --results bench/results --out bench/results/default --no-cross
    python bench/cross_pretrain.py pairs --results bench/results --out bench/results/pretrained
    python bench/cross_pretrain.py train --out bench/results/pretrained --tune layers
    python bench/cross_pretrain.py mix --results bench/results --out bench/results/pretrained \
        --tune layers
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from claims import cross  # noqa: E402


def write_pairs(path: Path, pairs: Sequence[cross.Pair]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for p in pairs:
            out.write(json.dumps(asdict(p)) + "\n")


def read_pairs(path: Path) -> list[cross.Pair]:
    with path.open(encoding="utf-8") as lines:
        return [cross.Pair(**json.loads(line)) for line in lines if line.strip()]


def make_pairs(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from default_head import GENERATED_WEIGHT, SETS, cited_passages

    from claims import training
    from claims.extraction import ParseExtractor
    from claims.head import held_out_rows
    from claims.nlp import load_spacy
    from retrieval.embedders import MiniLMEmbedder

    cache, folder = args.results / "cache", args.out / "pairs"
    folder.mkdir(parents=True, exist_ok=True)
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
    write_pairs(folder / "generated.jsonl", training.cross_pairs(pretraining, embedder))

    names = ["climate_fever", "halueval_qa", "generated_no_fever"]
    examples = training.balanced_by_source(
        [
            replace(e, weight=GENERATED_WEIGHT) if n.startswith("generated") else e
            for n in names
            for e in groups[n]
        ]
    )
    for n in names:
        if list(np.load(cache / f"{n}.npz")["labels"]) != [e.label for e in groups[n]]:
            sys.exit(f"{cache}/{n}.npz does not match: run bench/default_head.py first")
    x = np.concatenate([np.load(cache / f"{n}.npz")["x"] for n in names])
    labelled = [p for n in names[:2] for p in training.cross_pairs(groups[n], embedder)]
    labelled = [replace(p, weight=e.weight) for p, e in zip(labelled, examples, strict=False)]
    # Labelled groups lead the feature head's rows, so its calibration rows among them are:
    held = held_out_rows(len(examples))[: len(labelled)]
    write_pairs(
        folder / "labelled.jsonl", [p for p, h in zip(labelled, held, strict=True) if not h]
    )
    rows = np.flatnonzero(held)
    write_pairs(folder / "calibration.jsonl", [labelled[i] for i in rows])
    np.savez_compressed(folder / "calibration.npz", x=x[rows])
    print(f"wrote {folder}: {len(pretraining)} generated, {len(labelled)} labelled pairs")


def train(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    folder, out = args.out / "pairs", args.out / args.tune
    generated = read_pairs(folder / "generated.jsonl")
    labelled = read_pairs(folder / "labelled.jsonl")
    timings = {}
    started = time.perf_counter()
    bar = tqdm(total=len(generated) + 2 * len(labelled), unit="pair", file=sys.stderr)
    stage1 = cross.train(
        generated,
        epochs=1,
        progress=bar.update,
        seed=args.seed,
        model_path=args.model,
        tune=args.tune,
        card={"stage": "generated"},
    )
    timings["stage1_s"] = round(time.perf_counter() - started, 1)
    stage1.save(out / "stage1")
    started = time.perf_counter()
    mate = cross.train(
        labelled,
        epochs=2,
        init=stage1,
        progress=bar.update,
        seed=args.seed,
        model_path=args.model,
        tune=args.tune,
        card={
            "version": f"1-no-fever-pretrained-{args.tune}",
            "recipe": ["climate_fever", "halueval_qa"],
        },
    )
    timings["stage2_s"] = round(time.perf_counter() - started, 1)
    bar.close()
    mate.card["timings"] = timings
    mate.save(out / "cross")
    print(f"wrote {out}: stage 1 {timings['stage1_s']} s, stage 2 {timings['stage2_s']} s")


def mix(args: argparse.Namespace) -> None:
    from claims.head import load as load_head

    folder, out = args.out / "pairs", args.out / args.tune
    feature_head = args.results / "heads" / "no-fever-generated"
    calibration = read_pairs(folder / "calibration.jsonl")
    with np.load(folder / "calibration.npz") as z:
        x = z["x"]
    mate = cross.load(out / "cross")
    if mate is None:
        sys.exit(f"{out / 'cross'} holds no cross head: run the train step first")
    fitted = cross.fit_mix(
        load_head(feature_head).scores(x), mate.scores(calibration), [p.label for p in calibration]
    )
    mate.card["mix"] = {**fitted, "fitted_on": len(calibration)}
    print(f"mix {mate.card['mix']}")
    shutil.copytree(feature_head, out / "head", dirs_exist_ok=True)
    mate.save(out / "head")
    print(f"wrote {out / 'head'}: claimsieve eval --head {out / 'head'} …")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["pairs", "train", "mix"])
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "pretrained")
    parser.add_argument("--pairs", type=int, default=10_000, help="generated pairs asked for")
    parser.add_argument("--tune", choices=cross.TUNINGS, default="adapters")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--model", type=Path, help="MiniLM folder (default: the packaged one)")
    args = parser.parse_args()
    {"pairs": make_pairs, "train": train, "mix": mix}[args.step](args)


if __name__ == "__main__":
    main()
