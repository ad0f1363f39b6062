"""A loaded snapshot: passages read on demand, dense and sparse search, fused."""

from __future__ import annotations

import json
import mmap
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from retrieval.errors import SnapshotError
from retrieval.index import DenseConfig, DenseIndex
from retrieval.snapshots.format import (
    Manifest,
    StoredDocument,
    find_stored,
    read_documents,
    read_manifest,
)
from retrieval.sparse import SparseIndex
from retrieval.types import Hit, Passage

Mode = Literal["hybrid", "dense", "sparse"]
Reranker = Callable[[str, Sequence[Passage]], Sequence[float]]


@dataclass(frozen=True)
class Fusion:
    """Reciprocal rank fusion: ``score = Σ weight / (k + rank)`` over the dense and sparse lists."""

    k: int = 60
    dense_weight: float = 1.0
    sparse_weight: float = 1.0
    depth: int = 50  # candidates taken from each list
    rerank_depth: int = 20  # fused candidates a reranker sees


class Snapshot:
    """A loaded snapshot, searched dense, sparse or hybrid; passages are read on demand."""

    def __init__(
        self,
        manifest: Manifest,
        folder: Path | None,
        passage_lines: Callable[[int], bytes],
        vectors: NDArray[np.float32],
        sentence_vectors: NDArray[np.float32],
        sentence_offsets: NDArray[np.int64],
        tombstones: NDArray[np.int64],
        owners: dict[int, list[tuple[str, int, int]]],
        dense: DenseIndex | None,
        sparse: SparseIndex,
    ) -> None:
        self.manifest = manifest
        self.folder = folder
        self._line = passage_lines
        self.vectors = vectors
        self.sentence_vectors = sentence_vectors
        self.sentence_offsets = sentence_offsets
        self.tombstones = tombstones
        self.live = np.ones(manifest.rows, dtype=bool)
        self.live[tombstones] = False
        self.owners = owners
        self.dense = dense
        self.sparse = sparse

    @classmethod
    def empty(cls, corpus: str, embedder: str, dim: int) -> Snapshot:
        manifest = Manifest(
            corpus, 0, 0, 0, 0, embedder, dim, "flat", datetime.now(UTC).isoformat()
        )
        none = np.zeros(0, dtype=np.int64)
        return cls(
            manifest,
            None,
            lambda row: b"",
            np.zeros((0, dim), np.float32),
            np.zeros((0, dim), np.float32),
            np.zeros(1, dtype=np.int64),
            none,
            {},
            None,
            SparseIndex.empty(),
        )

    @property
    def version(self) -> int:
        return self.manifest.version

    def __len__(self) -> int:
        """Live passages."""
        return self.manifest.passages

    def row(self, row: int) -> dict[str, Any]:
        """The stored JSON of passage row ``row``."""
        value: dict[str, Any] = json.loads(self._line(row))
        return value

    def passage(self, row: int) -> Passage:
        """Passage ``row`` as its first live owner sees it."""
        data = self.row(row)
        owner = self.owners.get(row)
        document_id, start, end = (
            owner[0] if owner else (data["document_id"], data["start"], data["end"])
        )
        return Passage(
            data["id"] if not owner else f"{document_id}@{start}",
            document_id,
            data["title"],
            data["text"],
            start,
            end,
            tuple((int(s), int(e)) for s, e in data["sentences"]),
        )

    def sentences_of(self, row: int) -> NDArray[np.float32]:
        """The sentence vectors of passage ``row``."""
        return self.sentence_vectors[self.sentence_offsets[row] : self.sentence_offsets[row + 1]]

    def search(
        self,
        vectors: NDArray[np.float32],
        texts: Sequence[str],
        k: int,
        mode: Mode = "hybrid",
        fusion: Fusion | None = None,
        rerank: Reranker | None = None,
    ) -> list[list[Hit]]:
        """Top-``k`` live passages for each query (its vector and its text), best first.

        Args:
            vectors: Query vectors (used by dense and hybrid search).
            texts: Query texts (used by sparse and hybrid search, and by ``rerank``).
            k: Passages per query.
            mode: ``hybrid`` fuses dense and sparse ranks; ``dense`` or ``sparse`` alone.
            fusion: Fusion weights and depths.
            rerank: Scores (query, passages) pairs; reorders the top fused candidates.
        """
        fusion = fusion or Fusion()
        count = max(len(vectors), len(texts))
        if len(self) == 0 or count == 0:
            return [[] for _ in range(count)]
        depth = max(k, fusion.depth if mode == "hybrid" or rerank else k)
        dense_lists: list[list[tuple[int, float]]] = [[] for _ in range(count)]
        sparse_lists: list[list[tuple[int, float]]] = [[] for _ in range(count)]
        if mode in ("hybrid", "dense"):
            assert self.dense is not None
            scores, rows = self.dense.search(
                vectors, min(depth, self.manifest.rows), self.tombstones
            )
            dense_lists = [
                [(int(r), float(s)) for r, s in zip(row, score, strict=True) if r >= 0]
                for row, score in zip(rows, scores, strict=True)
            ]
        if mode in ("hybrid", "sparse"):
            sparse_lists = self.sparse.search(
                texts, depth, self.live if len(self.tombstones) else None
            )
        out = []
        for number in range(count):
            if mode == "dense":
                ranked = dense_lists[number]
            elif mode == "sparse":
                ranked = sparse_lists[number]
            else:
                ranked = rrf(
                    [dense_lists[number], sparse_lists[number]],
                    [fusion.dense_weight, fusion.sparse_weight],
                    fusion.k,
                )
            if rerank is not None and ranked:
                head = ranked[: fusion.rerank_depth]
                scores_ = rerank(texts[number], [self.passage(r) for r, _ in head])
                ranked = sorted(
                    ((r, float(s)) for (r, _), s in zip(head, scores_, strict=True)),
                    key=lambda pair: -pair[1],
                )
            out.append([Hit(self.passage(r), s, self.sentences_of(r)) for r, s in ranked[:k]])
        return out


def rrf(
    lists: Sequence[Sequence[tuple[int, float]]], weights: Sequence[float], k: int
) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of ranked ``(row, score)`` lists; ties keep first-seen order."""
    fused: dict[int, float] = {}
    for ranked, weight in zip(lists, weights, strict=True):
        for rank, (row, _) in enumerate(ranked, start=1):
            fused[row] = fused.get(row, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda pair: -pair[1])


# Writing ------------------------------------------------------------------------------------


def load(folder: Path, dense_config: DenseConfig | None = None) -> Snapshot:
    """Load the snapshot in ``folder`` and check that its parts agree."""
    dense_config = dense_config or DenseConfig()
    manifest = read_manifest(folder)
    try:
        offsets = np.load(folder / "passage_offsets.npy")
        handle = (folder / "passages.jsonl").open("rb")
        lines = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if manifest.rows else b""
        handle.close()
        vectors = np.load(folder / "vectors.npy", mmap_mode="r")
        sentences = np.load(folder / "sentences.npy", mmap_mode="r")
        sentence_offsets = np.load(folder / "sentence_offsets.npy")
        tombstones = np.load(folder / "tombstones.npy")
        owners = {
            int(row): [tuple(o) for o in found]
            for row, found in json.loads((folder / "owners.json").read_text()).items()
        }
        if manifest.dense == "flat":
            dense = DenseIndex.build(np.asarray(vectors), manifest.dim, DenseConfig(kind="flat"))
        else:
            dense = DenseIndex.load(
                folder / "index.faiss",
                manifest.dense,  # type: ignore[arg-type]
                dense_config,
                exact=vectors,
            )
        sparse = SparseIndex.load(folder / "bm25", manifest.rows)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise SnapshotError(f"cannot load snapshot {folder}: {exc}") from exc
    where = f"snapshot {manifest.corpus} v{manifest.version}"
    sizes = {len(offsets), len(vectors), len(sentence_offsets) - 1, len(dense)}
    if sizes != {manifest.rows} or int(sentence_offsets[-1]) != len(sentences):
        raise SnapshotError(f"{where}: its parts disagree on the number of passages")

    def line(row: int) -> bytes:
        start = int(offsets[row])
        end = int(offsets[row + 1]) if row + 1 < len(offsets) else len(lines)
        return bytes(lines[start:end])

    return Snapshot(
        manifest,
        folder,
        line,
        vectors,
        sentences,
        sentence_offsets,
        tombstones,
        owners,
        dense,
        sparse,
    )


def documents(source: Snapshot | Path, skip: int = 0) -> Iterator[StoredDocument]:
    """The live documents of a snapshot (or its folder), after the first ``skip``.

    Skipped documents are not parsed.
    """
    folder = source if isinstance(source, Path) else source.folder
    if folder is not None:
        yield from read_documents(folder, skip)


def find_document(source: Snapshot | Path, document_id: str) -> StoredDocument | None:
    """One live document of a snapshot (or its folder), or None.

    A scan of ``documents.jsonl`` that parses only the line written for that id.
    """
    folder = source if isinstance(source, Path) else source.folder
    return None if folder is None else find_stored(folder, document_id)


def sweep(corpus_dir: Path, keep: Iterable[Path], older_than_s: float = 3600.0) -> list[Path]:
    """Remove folders left by interrupted writers; return what went.

    A ``.tmp-*`` folder is a build that never finished; a snapshot folder not in
    ``keep`` was finished but never recorded as a version. Only folders older
    than ``older_than_s`` go, so a writer still at work is left alone.
    """
    kept = {p.resolve() for p in keep}
    removed: list[Path] = []
    if not corpus_dir.exists():
        return removed
    now = datetime.now(UTC).timestamp()
    for child in corpus_dir.iterdir():
        if not child.is_dir() or child.resolve() in kept:
            continue
        if now - child.stat().st_mtime >= older_than_s:
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    return removed
