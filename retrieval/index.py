"""Dense index over normalised vectors (inner product = cosine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray


class DenseIndex:
    """Exact inner-product search with FAISS ``IndexFlatIP``.

    Rows are addressed by position (0..n-1); the caller keeps the id map beside it.
    """

    def __init__(self, dim: int, index: Any | None = None) -> None:
        import faiss

        self.dim = dim
        self._index: Any = index if index is not None else faiss.IndexFlatIP(dim)

    @classmethod
    def build(cls, vectors: NDArray[np.float32]) -> DenseIndex:
        index = cls(vectors.shape[1])
        index.add(vectors)
        return index

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, vectors: NDArray[np.float32]) -> None:
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected vectors of shape (n, {self.dim}), got {vectors.shape}")
        self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def vectors(self) -> NDArray[np.float32]:
        """All stored vectors in row order (so a new version can reuse them)."""
        if len(self) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self._index.reconstruct_n(0, len(self)), dtype=np.float32)

    def search(
        self, queries: NDArray[np.float32], k: int
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Top-``k`` rows per query; rows beyond the index size come back as -1."""
        scores, rows = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, rows

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> DenseIndex:
        import faiss

        index = faiss.read_index(str(path))
        return cls(index.d, index)
