"""Dense inner-product search over normalised vectors (inner product = cosine), with FAISS.

Four kinds: ``flat`` (exact, for small corpora), ``hnsw`` (a graph, fast and
accurate, slower to build), ``ivf`` (inverted lists over k-means cells, quick
to build) and ``ivfpq`` (the same lists holding product-quantised codes, a
quarter of a byte per dimension instead of four). ``hnsw`` and ``ivf`` keep
every vector in memory; ``ivfpq`` keeps only the codes and re-scores its
candidates exactly from the vectors, which the snapshot memory-maps from its
file, so its memory is a sixteenth of theirs. Rows are addressed by position
(0..n-1); the snapshot keeps the id map beside the index. Deleted rows are
excluded at search time with a FAISS id selector, so an approximate index
never has to be rebuilt to delete.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

Kind = Literal["flat", "hnsw", "ivf", "ivfpq"]
TRAINING_ROWS = 131_072  # ivfpq: rows its cells are trained on at most
PQ_TRAINING_ROWS = 65_536  # ivfpq: rows its codes are trained on at most


class Rows(Protocol):
    """Vectors that can be read a slice at a time: an array, or a file (``NpyRows``)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __len__(self) -> int: ...

    def __getitem__(self, key: Any) -> Any: ...


class NpyRows:
    """The rows of a ``.npy`` file, mapped only while a slice is read.

    A mapping kept open for a whole build leaves every page it touched resident
    (and counted in the process's memory) beside the index's own copy.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.shape: tuple[int, ...] = tuple(np.load(path, mmap_mode="r").shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> NDArray[Any]:
        mapped = np.load(self.path, mmap_mode="r")
        try:
            return np.array(mapped[key])
        finally:
            del mapped


@dataclass(frozen=True)
class DenseConfig:
    """How the dense index is chosen and tuned.

    Attributes:
        kind: ``auto`` picks ``flat`` below ``ann_threshold`` rows and ``ann`` above.
        ann: The approximate kind used above the threshold.
        ann_threshold: Rows from which ``auto`` uses the approximate kind.
        hnsw_m: Graph degree of HNSW.
        hnsw_ef_construction: Candidate list while building HNSW.
        hnsw_ef_search: Candidate list while searching HNSW.
        ivf_lists: Cells of IVF; 0 means about 4·√n.
        ivf_probe: Cells visited per IVF query.
        pq_refine: ``ivfpq`` re-scores ``pq_refine × k`` candidates exactly for ``k`` results.
    """

    kind: Literal["auto", "flat", "hnsw", "ivf", "ivfpq"] = "auto"
    ann: Literal["hnsw", "ivf", "ivfpq"] = "ivfpq"
    ann_threshold: int = 200_000
    hnsw_m: int = 32
    hnsw_ef_construction: int = 64
    hnsw_ef_search: int = 128
    ivf_lists: int = 0
    ivf_probe: int = 32
    pq_refine: int = 20

    def kind_for(self, rows: int) -> Kind:
        if self.kind != "auto":
            return self.kind
        return self.ann if rows >= self.ann_threshold else "flat"


def _sample(vectors: Rows, size: int, window: int = 65_536) -> NDArray[Any]:
    """``size`` rows drawn at random, read a window at a time.

    Gathering scattered rows of a mapped file in one go touches nearly every
    page of it, and each touched page counts in memory while the file is mapped.
    """
    if len(vectors) <= size:
        return np.asarray(vectors[:])
    chosen = np.sort(np.random.default_rng(0).choice(len(vectors), size, replace=False))
    bounds = np.searchsorted(chosen, np.arange(0, len(vectors) + window, window))
    out = np.empty((size, vectors.shape[1]), dtype=np.float32)
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if b > a:
            out[a:b] = vectors[chosen[a:b]]
    return out


def _subquantizers(dim: int) -> int:
    """Product-quantiser parts of about four dimensions each (a divisor of ``dim``)."""
    return max(m for m in range(1, dim // 4 + 1) if dim % m == 0) if dim >= 4 else 1


class DenseIndex:
    """A FAISS index of one of the four kinds, searched with optional excluded rows.

    ``exact`` (the vectors themselves, usually a memory map) lets ``ivfpq``
    re-score its candidates; without it ``ivfpq`` returns its approximate scores.
    """

    def __init__(
        self, kind: Kind, index: Any, config: DenseConfig, exact: Rows | None = None
    ) -> None:
        self.kind = kind
        self._index = index
        self._config = config
        self._exact = exact
        self.dim = int(index.d)

    @classmethod
    def build(
        cls, vectors: Rows, dim: int, config: DenseConfig, exact: Rows | None = None
    ) -> DenseIndex:
        """Build the kind ``config`` picks for ``len(vectors)`` rows (read in slices)."""
        import faiss

        kind = config.kind_for(len(vectors))
        index: Any
        if kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = config.hnsw_ef_construction
        else:
            lists = config.ivf_lists or max(
                1, min(len(vectors) // 39, int(4 * len(vectors) ** 0.5))
            )
            # ivfpq bounds its training rows too, so its build's memory stays flat.
            cap = 64 * lists if kind == "ivf" else min(64 * lists, TRAINING_ROWS)
            sample = np.ascontiguousarray(_sample(vectors, cap), dtype=np.float32)
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_INNER_PRODUCT)
            index.train(sample)  # the cells
            if kind == "ivfpq":  # then the codes, on fewer rows: their residuals are copies
                sample = np.ascontiguousarray(sample[:: max(1, len(sample) // PQ_TRAINING_ROWS)])
                # 256 centroids per part, fewer when the sample cannot train that many
                bits = max(1, min(8, int(np.log2(len(sample)))))
                if len(sample) < 2**bits:  # a single row: repeated, so training can run
                    sample = np.resize(sample, (2**bits, dim))
                index = faiss.IndexIVFPQ(
                    quantizer, dim, lists, _subquantizers(dim), bits, faiss.METRIC_INNER_PRODUCT
                )
                index.train(sample)  # the cells are trained already: only the codes
        dense = cls(kind, index, config, exact)
        dense.add(vectors)
        return dense

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, vectors: Rows, batch: int = 65_536) -> None:
        if len(vectors.shape) != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected vectors of shape (n, {self.dim}), got {vectors.shape}")
        for start in range(0, len(vectors), batch):
            self._index.add(np.ascontiguousarray(vectors[start : start + batch], np.float32))

    def search(
        self, queries: NDArray[np.float32], k: int, excluded: NDArray[np.int64] | None = None
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Top-``k`` rows per query, never an ``excluded`` row; missing results are -1."""
        import faiss as faiss_module

        faiss: Any = faiss_module  # its stubs lack the search-parameter classes
        selector = batch = None  # both kept referenced until the search returns
        if excluded is not None and len(excluded):
            batch = faiss.IDSelectorBatch(np.ascontiguousarray(excluded, dtype=np.int64))
            selector = faiss.IDSelectorNot(batch)
        if self.kind == "hnsw":
            params: Any = faiss.SearchParametersHNSW(efSearch=max(self._config.hnsw_ef_search, k))
        elif self.kind in ("ivf", "ivfpq"):
            params = faiss.SearchParametersIVF(nprobe=self._config.ivf_probe)
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        # A few queries at a time (a check's claims) are scored by FAISS one by one, each a
        # pass over every vector, unless its matrix-product threshold lets one pass do them
        # all: the same results, twice as fast on 100,000 passages (bench/latency.py).
        faiss.cvar.distance_compute_blas_threshold = 1
        refine = self.kind == "ivfpq" and self._exact is not None
        fetch = min(max(len(self), 1), k * self._config.pq_refine) if refine else k
        scores, rows = self._index.search(queries, fetch, params=params)
        del selector, batch
        if refine:
            return self._refine(queries, rows, k)
        return scores, rows

    def _refine(
        self, queries: NDArray[np.float32], candidates: NDArray[np.int64], k: int
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """The ``k`` candidates of each query with the highest exact inner product."""
        assert self._exact is not None
        scores = np.full((len(queries), k), np.finfo(np.float32).min, dtype=np.float32)
        rows = np.full((len(queries), k), -1, dtype=np.int64)
        for i, (query, found) in enumerate(zip(queries, candidates, strict=True)):
            found = np.sort(found[found >= 0])  # in file order: fewer, longer reads
            if not len(found):
                continue
            exact = np.asarray(self._exact[found], dtype=np.float32) @ query
            best = np.argsort(-exact, kind="stable")[:k]
            scores[i, : len(best)] = exact[best]
            rows[i, : len(best)] = found[best]
        return scores, rows

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(path))

    @classmethod
    def load(
        cls, path: Path, kind: Kind, config: DenseConfig, exact: Rows | None = None
    ) -> DenseIndex:
        import faiss

        return cls(kind, faiss.read_index(str(path)), config, exact)
