"""Approximate dense search at a million passages: recall and speed against exact search.

Synthetic, but not uniform noise: 1,000,000 unit vectors in 384 dimensions
drawn around 2,000 cluster centres of power-law sizes (as sentence embeddings
of a real corpus bunch by topic), and 1,000 held-out queries from the same
distribution. The exact ``flat`` index gives the true top 10; each approximate
kind (built through ``retrieval.index.DenseIndex`` with the service's
defaults) is scored by recall@10 against it and by its query speed as a
multiple of exact search's, measured in the same run, one query at a time
(as a check's claims arrive) and in one batch. Build time and index memory
are printed and saved (bench/results/ann.json).

``ivfpq`` re-scores its candidates from the vectors themselves; the service
reads them from the snapshot's memory-mapped file, here from memory.

    python bench/ann.py [--n 1000000] [--kinds hnsw ivf ivfpq] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from retrieval.index import DenseConfig, DenseIndex  # noqa: E402

DIM = 384


def clustered(n: int, centres: np.ndarray, rng: np.random.Generator, spread: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, len(centres) + 1) ** 0.8
    weights /= weights.sum()
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        size = min(100_000, n - start)
        which = rng.choice(len(centres), size=size, p=weights)
        noise = rng.standard_normal((size, DIM), dtype=np.float32) * (spread / np.sqrt(DIM))
        block = centres[which] + noise
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + size] = block
    return out


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_search(index: DenseIndex, queries: np.ndarray, k: int, one_by_one: int) -> dict[str, Any]:
    started = time.perf_counter()
    _, batch_rows = index.search(queries, k)
    batch_s = time.perf_counter() - started
    started = time.perf_counter()
    for q in queries[:one_by_one]:
        index.search(q[None, :], k)
    single_s = time.perf_counter() - started
    return {
        "rows": batch_rows,
        "batch_qps": len(queries) / batch_s,
        "single_qps": one_by_one / single_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--kinds", nargs="+", default=["hnsw", "ivf", "ivfpq"])
    parser.add_argument("--threads", type=int, default=0, help="FAISS threads (0: all cores)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ann.json")
    args = parser.parse_args()
    import faiss

    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((2_000, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    started = time.perf_counter()
    base = clustered(args.n, centres, rng, spread=0.9)
    queries = clustered(args.queries, centres, rng, spread=0.9)
    print(f"{args.n:,} vectors generated in {time.perf_counter() - started:.1f} s", flush=True)
    k = 10
    one_by_one = min(200, args.queries)

    results: dict[str, Any] = {
        "machine": platform.platform(),
        "n": args.n,
        "dim": DIM,
        "queries": args.queries,
        "faiss_threads": faiss.omp_get_max_threads(),
    }
    started = time.perf_counter()
    exact = DenseIndex.build(base, DIM, DenseConfig(kind="flat"))
    exact_build = time.perf_counter() - started
    truth = timed_search(exact, queries, k, one_by_one)
    results["flat"] = {
        "build_s": round(exact_build, 1),
        "memory_mb": round(base.nbytes / 2**20),
        "batch_qps": round(truth["batch_qps"], 1),
        "single_qps": round(truth["single_qps"], 1),
    }
    print(
        f"flat: build {exact_build:.1f} s, {truth['batch_qps']:.0f} q/s batched, "
        f"{truth['single_qps']:.1f} q/s one by one",
        flush=True,
    )
    del exact
    sweeps = {
        "hnsw": ("hnsw_ef_search", [64, 128, 256, 512]),
        "ivf": ("ivf_probe", [16, 32, 64]),
        "ivfpq": ("pq_refine", [5, 10, 20, 40]),
    }
    for kind in args.kinds:
        config = DenseConfig(kind=kind)
        before = rss_mb()
        started = time.perf_counter()
        index = DenseIndex.build(base, DIM, config, exact=base)
        build_s = time.perf_counter() - started
        path = args.out.parent / f"ann-{kind}.faiss"
        path.parent.mkdir(parents=True, exist_ok=True)
        index.save(path)
        memory_mb = path.stat().st_size / 2**20
        path.unlink()
        results[kind] = {
            "build_s": round(build_s, 1),
            "memory_mb": round(memory_mb),
            "peak_rss_growth_mb": round(rss_mb() - before),
            "default": vars(config)[sweeps[kind][0]],
            "search": [],
        }
        print(f"{kind}: build {build_s:.1f} s, {memory_mb:.0f} MB", flush=True)
        knob, values = sweeps[kind]
        for value in values:
            tuned = DenseIndex(
                kind,
                index._index,  # noqa: SLF001
                replace(config, **{knob: value}),
                exact=base,
            )
            found = timed_search(tuned, queries, k, one_by_one)
            recall = float(
                np.mean(
                    [
                        len(set(a[a >= 0]) & set(b)) / k
                        for a, b in zip(found["rows"], truth["rows"], strict=True)
                    ]
                )
            )
            row = {
                knob: value,
                "recall@10": round(recall, 4),
                "single_qps": round(found["single_qps"], 1),
                "batch_qps": round(found["batch_qps"], 1),
                "speedup_single": round(found["single_qps"] / truth["single_qps"], 1),
                "speedup_batch": round(found["batch_qps"] / truth["batch_qps"], 1),
            }
            results[kind]["search"].append(row)
            print(
                f"  {knob}={value}: recall@10 {recall:.4f}, {row['speedup_single']}x exact "
                f"one by one, {row['speedup_batch']}x batched",
                flush=True,
            )
        del index
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
