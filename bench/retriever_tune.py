"""Does a bi-encoder tuned on a set's train half find its test half's evidence better?

MiniLM is trained on the train half of one set in ../shared/eval (the fixed
split ``claims.datasets.split``): each claim with each of its gold evidence
passages, or with ``--positives candidates`` each of the sentences the set's
annotators judged for it (read with their titles, as the index reads them), against the
other passages in the batch (in-batch negatives, contrastive loss at scale
20). Then the whole corpus is indexed with the packaged and with the tuned
model, and recall of the **test half's** claims is printed side by side
(``bench/recall.py``'s figures: dense, BM25, hybrid). Writes the tuned model
(a sentence-transformers folder, usable as ``CLAIMSIEVE_EMBEDDER_PATH``) and
``OUT/recall.json``.

Measured on climate_fever's test half, hybrid recall@5: packaged 0.410, tuned
on gold evidence 0.431, tuned on candidates 0.443.

    python bench/retriever_tune.py --dataset climate_fever --out bench/results/retriever
        [--positives gold|candidates]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from recall import MODES, evaluate  # noqa: E402

from claims.datasets import read_corpus, read_items, split  # noqa: E402
from retrieval.embedders import MiniLMEmbedder, default_model_path  # noqa: E402
from retrieval.text import titled  # noqa: E402


def training_pairs(folder: Path, positives: str = "gold") -> list[tuple[str, str, str]]:
    """(claim, passage id, titled passage) for the train half's claims.

    ``positives``: ``gold``, each claim's gold evidence (DISPUTED claims left out);
    ``candidates``, every sentence the set's annotators judged for a claim
    (climate_fever's ``candidate_evidence``: the gold ones and those the set's
    own retrieval picked but annotators found no evidence in), for every claim.
    """
    corpus = read_corpus(folder / "corpus.jsonl")
    pairs = []
    for item in read_items(folder / "claims.jsonl"):
        if item.claim is None or split(item) != "train":
            continue
        if positives == "gold" and item.label == "DISPUTED":
            continue
        for pid in item.evidence_ids if positives == "gold" else item.gold_ids:
            if pid in corpus:
                p = corpus[pid]
                pairs.append((item.claim, pid, titled(p.title, p.text)))
    return pairs


def tune(
    pairs: list[tuple[str, str, str]], out: Path, epochs: int, batch: int, lr: float, seed: int
) -> dict[str, Any]:
    import torch
    from sentence_transformers import SentenceTransformer
    from tqdm import tqdm

    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = SentenceTransformer(str(default_model_path()), device="cpu")
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * -(-len(pairs) // batch)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: 1 - s / steps)

    def embed(texts: list[str]) -> Any:
        features = model.tokenize(texts)
        vectors = model(dict(features))["sentence_embedding"]
        return torch.nn.functional.normalize(vectors, dim=-1)

    model.train()
    started = time.perf_counter()
    with tqdm(total=epochs * len(pairs), unit="pair", file=sys.stderr) as bar:
        for _ in range(epochs):
            order = pairs[:]
            rng.shuffle(order)
            for start in range(0, len(order), batch):
                rows = order[start : start + batch]
                scores = embed([r[0] for r in rows]) @ embed([r[2] for r in rows]).T * 20.0
                # Another claim's copy of the same passage, or the same claim's other gold
                # passage, is not a negative.
                same = torch.tensor(
                    [[a[1] == b[1] or a[0] == b[0] for b in rows] for a in rows]
                ) & ~torch.eye(len(rows), dtype=torch.bool)
                scores = scores.masked_fill(same, -1e4)
                loss = torch.nn.functional.cross_entropy(scores, torch.arange(len(rows)))
                optimiser.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                optimiser.step()
                schedule.step()
                bar.update(len(rows))
    model.eval()
    model.save(str(out))
    return {
        "pairs": len(pairs),
        "epochs": epochs,
        "batch": batch,
        "lr": lr,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--dataset", default="climate_fever")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "retriever")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--positives", choices=("gold", "candidates"), default="gold")
    args = parser.parse_args()
    folder = args.eval / args.dataset
    if not folder.exists():
        sys.exit(f"{folder} not found: this benchmark reads ../shared/eval")
    model_dir = args.out / "model"
    training = tune(
        training_pairs(folder, args.positives),
        model_dir,
        args.epochs,
        args.batch,
        args.lr,
        args.seed,
    )
    print(f"tuned on {training['pairs']} train-half pairs in {training['seconds']} s")
    results: dict[str, Any] = {
        "dataset": args.dataset,
        "training": {**training, "positives": args.positives},
    }
    with tempfile.TemporaryDirectory() as work:
        for name, embedder in (
            ("packaged", MiniLMEmbedder()),
            ("tuned", MiniLMEmbedder(model_path=model_dir)),
        ):
            results[name] = evaluate(args.dataset, folder, embedder, Path(work) / name, "test")
    print(f"{args.dataset}, test half ({results['tuned']['claims']} claims with gold evidence)")
    print(
        f"{'model':<10}{'mode':<8}"
        + "".join(f"{m:>9}" for m in ("R@1", "R@5", "R@10", "hit@5", "MRR"))
    )
    for name in ("packaged", "tuned"):
        for mode in MODES:
            r = results[name][mode]
            print(
                f"{name:<10}{mode:<8}{r['recall@1']:>9.3f}{r['recall@5']:>9.3f}"
                f"{r['recall@10']:>9.3f}{r['hit@5']:>9.3f}{r['mrr']:>9.3f}"
            )
    (args.out / "recall.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {args.out / 'recall.json'}")


if __name__ == "__main__":
    main()
