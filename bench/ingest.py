"""Ingestion throughput against the raw embedder on the same passages, in the same run.

The documents are the built-in corpus (the Python language reference shipped
with the interpreter). Their passages are cut once to know them; then, in
alternating rounds, the raw MiniLM embedder encodes those passage texts
(batches of 512) and a full ingestion (streamed build of a new snapshot:
chunking, sentence embedding, writing, BM25, dense index, fsync and rename)
runs over the documents. Prints and saves passages/s of both and their ratio
(bench/results/ingest.json), and the peak memory of a large streamed ingestion
with a cheap hashing embedder, to show that memory follows the index, not the
input.

    python bench/ingest.py [--rounds 2] [--large-docs 100000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from retrieval.builtin import python_reference  # noqa: E402
from retrieval.embedders import MiniLMEmbedder  # noqa: E402
from retrieval.snapshots import Builder, Chunking, passages_of  # noqa: E402

LARGE = """
import hashlib, json, sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[3])
from retrieval.ingest import read_jsonl
from retrieval.snapshots import Builder

class Hashing:
    name, dim = "hashing", 384
    def encode(self, texts):
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, int(hashlib.md5(w.encode()).hexdigest()[:6], 16) % self.dim] += 1
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
        return out

started = time.perf_counter()
with Builder(Path(sys.argv[2]), "large", 1, Hashing()) as builder:
    builder.add(read_jsonl(Path(sys.argv[1])))
    builder.finish()
# VmHWM: this process's own peak (ru_maxrss would count the parent's memory at fork).
status = Path("/proc/self/status").read_text()
peak = int(next(l for l in status.splitlines() if l.startswith("VmHWM")).split()[1]) / 1024
print(json.dumps({"seconds": time.perf_counter() - started, "peak_rss_mb": peak}))
"""


def raw_round(embedder: MiniLMEmbedder, texts: list[str]) -> float:
    started = time.perf_counter()
    for start in range(0, len(texts), 512):
        embedder.encode(texts[start : start + 512])
    return len(texts) / (time.perf_counter() - started)


def ingest_round(embedder: MiniLMEmbedder, documents: list[Any], passages: int) -> float:
    with tempfile.TemporaryDirectory() as root:
        started = time.perf_counter()
        with Builder(Path(root), "bench", 1, embedder) as builder:
            builder.add(documents)
            builder.finish()
        return passages / (time.perf_counter() - started)


def large_file(path: Path, documents: int) -> int:
    rng = np.random.default_rng(0)
    words = np.array([hashlib.sha1(str(i).encode()).hexdigest()[:7] for i in range(20_000)])
    with path.open("w") as out:
        for i in range(documents):
            sentences = [
                " ".join(rng.choice(words, size=12)) + "." for _ in range(int(rng.integers(3, 12)))
            ]
            out.write(json.dumps({"id": f"d{i}", "title": f"T{i}", "text": " ".join(sentences)}))
            out.write("\n")
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--large-docs", type=int, nargs="*", default=[25_000, 100_000])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ingest.json")
    args = parser.parse_args()

    documents = python_reference()
    embedder = MiniLMEmbedder() if args.rounds else None
    texts = (
        [p.text for d in documents for p in passages_of(d, Chunking(), embedder)]
        if embedder
        else []
    )
    raw, ingest = [], []
    for number in range(args.rounds):
        assert embedder is not None
        if number == 0:
            embedder.encode(texts[:64])  # warm-up
        raw.append(raw_round(embedder, texts))
        ingest.append(ingest_round(embedder, documents, len(texts)))
        print(f"raw {raw[-1]:.1f} passages/s, ingestion {ingest[-1]:.1f} passages/s", flush=True)
    results: dict[str, Any] = {
        "machine": platform.platform(),
        "documents": len(documents),
        "passages": len(texts),
        "raw_passages_per_s": [round(x, 1) for x in raw],
        "ingest_passages_per_s": [round(x, 1) for x in ingest],
        "ratio_per_round": [round(i / r, 3) for i, r in zip(ingest, raw, strict=True)],
    }
    if raw:
        results["ratio_median"] = round(statistics.median(ingest) / statistics.median(raw), 3)
        print(f"ingestion / raw embedder: {results['ratio_median']} (median of {len(raw)} rounds)")

    results["large"] = []
    with tempfile.TemporaryDirectory() as work:
        for count in args.large_docs:
            path = Path(work) / f"large-{count}.jsonl"
            size = large_file(path, count)
            done = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    LARGE,
                    str(path),
                    str(Path(work) / f"idx-{count}"),
                    str(ROOT),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            row = {"documents": count, "input_mb": round(size / 2**20, 1), **figures}
            results["large"].append(row)
            print(
                f"streamed {row['input_mb']} MB ({count:,} documents): peak RSS "
                f"{figures['peak_rss_mb']:.0f} MB in {figures['seconds']:.0f} s",
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
