"""Dense inner-product search over normalised vectors (inner product = cosine), with FAISS.

Three kinds: ``flat`` (exact, for small corpora), ``hnsw`` (a graph, fast and
accurate, slower to build) and ``ivf`` (inverted lists over k-means cells,
quick to build). Rows are addressed by position (0..n-1); the snapshot keeps
the id map beside the index. Deleted rows are excluded at search time with a
FAISS id selector, so an approximate index never has to be rebuilt to delete.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

Kind = Literal["flat", "hnsw", "ivf"]


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
    """

    kind: Literal["auto", "flat", "hnsw", "ivf"] = "auto"
    ann: Literal["hnsw", "ivf"] = "ivf"
    ann_threshold: int = 200_000
    hnsw_m: int = 32
    hnsw_ef_construction: int = 64
    hnsw_ef_search: int = 128
    ivf_lists: int = 0
    ivf_probe: int = 32

    def kind_for(self, rows: int) -> Kind:
        if self.kind != "auto":
            return self.kind
        return self.ann if rows >= self.ann_threshold else "flat"


class DenseIndex:
    """A FAISS index of one of the three kinds, searched with optional excluded rows."""

    def __init__(self, kind: Kind, index: Any, config: DenseConfig) -> None:
        self.kind = kind
        self._index = index
        self._config = config
        self.dim = int(index.d)

    @classmethod
    def build(cls, vectors: Rows, dim: int, config: DenseConfig) -> DenseIndex:
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
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_INNER_PRODUCT)
            if len(vectors) > 64 * lists:
                chosen = np.random.default_rng(0).choice(len(vectors), 64 * lists, replace=False)
                sample = vectors[np.sort(chosen)]
            else:
                sample = vectors[:]
            index.train(np.ascontiguousarray(sample, dtype=np.float32))
        dense = cls(kind, index, config)
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
        elif self.kind == "ivf":
            params = faiss.SearchParametersIVF(nprobe=self._config.ivf_probe)
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        scores, rows = self._index.search(queries, k, params=params)
        del selector, batch
        return scores, rows

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, kind: Kind, config: DenseConfig) -> DenseIndex:
        import faiss

        return cls(kind, faiss.read_index(str(path)), config)
