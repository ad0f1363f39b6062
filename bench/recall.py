"""Recall of the gold evidence: dense, BM25 and hybrid side by side, whole corpus indexed.

For fever_sf and climate_fever (../shared/eval), every corpus passage is
ingested as a document into a fresh snapshot with the real MiniLM, then each
claim that has gold evidence (DISPUTED left out) is searched in the three
modes. Prints and saves (bench/results/recall.json):

- recall@k: the share of a claim's gold passages found in the top k, averaged
  over claims (k = 1, 5, 10; 50 and 100 bound what a reranker of that many
  fused candidates could reach);
- hit@k: the share of claims with at least one gold passage in the top k;
- MRR: the mean reciprocal rank of the first gold passage (0 beyond rank 100).

Nothing is tuned here: fusion uses its defaults (RRF k=60, equal weights).
With ``--reranker FOLDER`` (a local CrossEncoder, as ``CLAIMSIEVE_RERANKER_PATH``)
a fourth row reranks the top 100 hybrid candidates. With ``--embedder FOLDER``
(as ``CLAIMSIEVE_EMBEDDER_PATH``) another sentence-transformers model embeds.

    python bench/recall.py [--eval ../shared/eval] [--datasets fever_sf climate_fever]
        [--part all|train|test] [--reranker FOLDER] [--embedder FOLDER] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from claims.datasets import read_items, split  # noqa: E402
from retrieval import snapshots  # noqa: E402
from retrieval.embedders import MiniLMEmbedder  # noqa: E402
from retrieval.rerank import CrossEncoderReranker  # noqa: E402
from retrieval.snapshots import Builder, Fusion, Reranker  # noqa: E402
from retrieval.types import Document  # noqa: E402

MODES = ("dense", "sparse", "hybrid")
RERANKED = "hybrid+rerank"
DEPTH = 100


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def metrics(gold: list[set[str]], ranked: list[list[str]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in (1, 5, 10, 50, 100):
        out[f"recall@{k}"] = sum(
            len(g & set(r[:k])) / len(g) for g, r in zip(gold, ranked, strict=True)
        ) / len(gold)
    for k in (1, 5, 10):
        out[f"hit@{k}"] = sum(
            bool(g & set(r[:k])) for g, r in zip(gold, ranked, strict=True)
        ) / len(gold)
    out["mrr"] = sum(
        next((1 / (i + 1) for i, doc in enumerate(r) if doc in g), 0.0)
        for g, r in zip(gold, ranked, strict=True)
    ) / len(gold)
    return {name: round(value, 4) for name, value in out.items()}


def build(name: str, folder: Path, embedder: MiniLMEmbedder, work: Path) -> tuple[Any, float]:
    """A snapshot of the whole corpus (every passage a document) and its build seconds."""
    corpus = read_jsonl(folder / "corpus.jsonl")
    started = time.perf_counter()
    with Builder(work, name, 1, embedder, progress=True) as builder:
        builder.add(Document(p["id"], p["title"] or p["id"], p["text"]) for p in corpus)
        snapshot = snapshots.load(builder.finish())
    return snapshot, time.perf_counter() - started


def evaluate(
    name: str,
    folder: Path,
    embedder: MiniLMEmbedder,
    work: Path,
    part: str = "all",
    rerank: Reranker | None = None,
) -> dict[str, Any]:
    """Recall figures of the claims in ``part`` (all, or one half of the fixed split).

    With ``rerank``, a fourth row: the top ``DEPTH`` hybrid candidates reordered by it.
    """
    wanted = {
        item.id
        for item in read_items(folder / "claims.jsonl")
        if part == "all" or split(item) == part
    }
    claims = [
        c
        for c in read_jsonl(folder / "claims.jsonl")
        if c.get("evidence_ids")
        and c["label"] != "DISPUTED"
        and c.get("claim")
        and str(c["id"]) in wanted
    ]
    snapshot, build_s = build(name, folder, embedder, work)
    texts = [c["claim"] for c in claims]
    vectors = embedder.encode(texts)
    gold = [set(c["evidence_ids"]) for c in claims]
    result: dict[str, Any] = {
        "part": part,
        "passages": len(snapshot),
        "claims": len(claims),
        "build_s": round(build_s, 1),
    }
    runs: list[tuple[str, str, Reranker | None]] = [(mode, mode, None) for mode in MODES]
    if rerank is not None:
        runs.append((RERANKED, "hybrid", rerank))
    fusion = Fusion(depth=DEPTH, rerank_depth=DEPTH)
    for label, mode, reranker in runs:
        started = time.perf_counter()
        hits = snapshot.search(vectors, texts, DEPTH, mode, fusion, reranker)  # type: ignore[arg-type]
        seconds = time.perf_counter() - started
        # A passage is scored by the corpus row it came from (its document here).
        ranked = [list(dict.fromkeys(h.passage.document_id for h in row)) for row in hits]
        result[label] = {**metrics(gold, ranked), "queries_per_s": round(len(texts) / seconds, 1)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--datasets", nargs="+", default=["fever_sf", "climate_fever"])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "recall.json")
    parser.add_argument("--part", choices=("all", "train", "test"), default="all")
    parser.add_argument("--reranker", type=Path, help="a local CrossEncoder folder")
    parser.add_argument(
        "--embedder", type=Path, help="a local sentence-transformers folder (default: MiniLM)"
    )
    args = parser.parse_args()
    embedder = MiniLMEmbedder(args.embedder)
    reranker = CrossEncoderReranker(args.reranker, batch_size=64) if args.reranker else None
    modes = (*MODES, RERANKED) if reranker else MODES
    results: dict[str, Any] = {
        "machine": platform.platform(),
        "embedder": embedder.name,
        "fusion": "RRF k=60, weights 1:1",
    }
    with tempfile.TemporaryDirectory() as work:
        for name in args.datasets:
            folder = args.eval / name
            if not folder.exists():
                print(f"skipping {name}: {folder} not found", file=sys.stderr)
                continue
            results[name] = evaluate(name, folder, embedder, Path(work) / name, args.part, reranker)
    header = f"{'dataset':<15}{'mode':<15}" + "".join(
        f"{m:>10}" for m in ("R@1", "R@5", "R@10", "R@50", "hit@5", "MRR", "q/s")
    )
    print(f"embedder {embedder.name}")
    print(header)
    for name in args.datasets:
        if name not in results:
            continue
        for mode in modes:
            r = results[name][mode]
            print(
                f"{name:<15}{mode:<15}{r['recall@1']:>10.3f}{r['recall@5']:>10.3f}"
                f"{r['recall@10']:>10.3f}{r['recall@50']:>10.3f}{r['hit@5']:>10.3f}{r['mrr']:>10.3f}"
                f"{r['queries_per_s']:>10.1f}"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
