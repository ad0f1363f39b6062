"""Does a cross-encoder reranker trained on a set's train half find its test half's evidence?

A reranker for ``CLAIMSIEVE_RERANKER_PATH`` (``retrieval.rerank``), trained on
the train half of one set in ../shared/eval (the fixed split
``claims.datasets.split``) and measured on the other half:

- model: the packaged MiniLM's transformer with a fresh one-logit head reading
  ``claim [SEP] title: passage`` (a sentence-transformers ``CrossEncoder``
  folder);
- examples: for every train-half claim, its gold evidence (target 1), the
  other sentences the set's annotators judged for it (``candidate_evidence``,
  target 0.5: picked as relevant by the set's own pipeline, not evidence),
  and ``--negatives`` passages from the top 30 of the packaged hybrid search
  that are neither (target 0);
- loss: binary cross-entropy on those targets, AdamW, linear decay.

Then the whole corpus is indexed with the packaged MiniLM and the test half's
recall is printed: dense, BM25, hybrid, and hybrid with its top 100 fused
candidates reranked (``bench/recall.py``'s figures). Writes the model to
``OUT/model`` and the figures to ``OUT/recall.json``.

Measured on climate_fever (2 cores, 23 min of training on 12,630 pairs): the
reranked hybrid's recall@5 fell from 0.410 to 0.184. 768 claims are too few
to turn a bi-encoder's weights into a cross-encoder; a reranker pays only
when it starts from one already trained for relevance.

    python bench/reranker_train.py --dataset climate_fever --out bench/results/reranker
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

from recall import MODES, RERANKED, build, evaluate  # noqa: E402

from claims.datasets import read_corpus, read_items, split  # noqa: E402
from retrieval.embedders import MiniLMEmbedder, default_model_path  # noqa: E402
from retrieval.rerank import CrossEncoderReranker  # noqa: E402
from retrieval.text import titled  # noqa: E402

POOL = 30  # hybrid candidates hard negatives are drawn from


def examples(
    folder: Path, embedder: MiniLMEmbedder, work: Path, negatives: int, seed: int
) -> list[tuple[str, str, float]]:
    """(claim, titled passage, target) for the train half's claims."""
    rng = random.Random(seed)
    corpus = read_corpus(folder / "corpus.jsonl")
    items = [
        item
        for item in read_items(folder / "claims.jsonl")
        if item.claim is not None and split(item) == "train"
    ]
    snapshot, _ = build(folder.name, folder, embedder, work)
    texts = [str(item.claim) for item in items]
    hits = snapshot.search(embedder.encode(texts), texts, POOL, "hybrid")
    rows: list[tuple[str, str, float]] = []
    for item, found in zip(items, hits, strict=True):
        claim = str(item.claim)
        targets = dict.fromkeys(item.gold_ids, 0.5)
        targets.update(dict.fromkeys(item.evidence_ids, 1.0))
        others = [h.passage.document_id for h in found if h.passage.document_id not in targets]
        for pid in rng.sample(others, min(negatives, len(others))):
            targets[pid] = 0.0
        for pid, target in targets.items():
            if pid in corpus:
                rows.append((claim, titled(corpus[pid].title, corpus[pid].text), target))
    return rows


def train(
    rows: list[tuple[str, str, float]],
    out: Path,
    epochs: int,
    batch: int,
    lr: float,
    seed: int,
    max_length: int,
) -> dict[str, Any]:
    import torch
    from tqdm import tqdm
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    rng = random.Random(seed)
    source = str(default_model_path())
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * -(-len(rows) // batch)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / (steps - warmup)))
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    started = time.perf_counter()
    with tqdm(total=epochs * len(rows), unit="pair", file=sys.stderr) as bar:
        for _ in range(epochs):
            order = rows[:]
            rng.shuffle(order)
            for start in range(0, len(order), batch):
                part = order[start : start + batch]
                inputs = tokenizer(
                    [r[0] for r in part],
                    [r[1] for r in part],
                    truncation=True,
                    max_length=max_length,
                    padding=True,
                    return_tensors="pt",
                )
                logits = model(**inputs).logits.squeeze(-1)
                loss = loss_fn(logits, torch.tensor([r[2] for r in part]))
                optimiser.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                optimiser.step()
                schedule.step()
                bar.update(len(part))
                bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {
        "pairs": len(rows),
        "positives": sum(r[2] == 1.0 for r in rows),
        "candidates": sum(r[2] == 0.5 for r in rows),
        "negatives": sum(r[2] == 0.0 for r in rows),
        "epochs": epochs,
        "batch": batch,
        "lr": lr,
        "max_length": max_length,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--dataset", default="climate_fever")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "reranker")
    parser.add_argument("--negatives", type=int, default=12, help="hard negatives per claim")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=4e-5)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folder = (args.eval / args.dataset).resolve()
    out = args.out.resolve()
    if not folder.exists():
        sys.exit(f"{folder} not found: this benchmark reads ../shared/eval")
    embedder = MiniLMEmbedder()
    model_dir = out / "model"
    with tempfile.TemporaryDirectory() as work:
        rows = examples(folder, embedder, Path(work) / "train", args.negatives, args.seed)
        training = train(
            rows, model_dir, args.epochs, args.batch, args.lr, args.seed, args.max_length
        )
        print(f"trained on {training['pairs']} train-half pairs in {training['seconds']} s")
        reranker = CrossEncoderReranker(model_dir, batch_size=64)
        result = evaluate(args.dataset, folder, embedder, Path(work) / "test", "test", reranker)
    results: dict[str, Any] = {"dataset": args.dataset, "training": training, "test": result}
    print(f"{args.dataset}, test half ({result['claims']} claims with gold evidence)")
    print(f"{'mode':<15}" + "".join(f"{m:>9}" for m in ("R@1", "R@5", "R@10", "hit@5", "MRR")))
    for mode in (*MODES, RERANKED):
        r = result[mode]
        print(
            f"{mode:<15}{r['recall@1']:>9.3f}{r['recall@5']:>9.3f}"
            f"{r['recall@10']:>9.3f}{r['hit@5']:>9.3f}{r['mrr']:>9.3f}"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "recall.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {out / 'recall.json'}")


if __name__ == "__main__":
    main()
