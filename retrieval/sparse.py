"""BM25 over passage texts (``bm25s``), saved beside the dense index and read memory-mapped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

_STEMMER: Any = None


def _stemmer() -> Any:
    global _STEMMER
    if _STEMMER is None:
        import Stemmer

        _STEMMER = Stemmer.Stemmer("english")
    return _STEMMER


def tokenize(texts: Sequence[str]) -> Any:
    """Lower-cased, English stop words dropped, Snowball-stemmed tokens (bm25s ``Tokenized``)."""
    import bm25s

    return bm25s.tokenize(
        list(texts), stopwords="en", stemmer=_stemmer(), show_progress=False, allow_empty=True
    )


class SparseIndex:
    """A BM25 index whose document ``i`` is passage row ``i`` of the snapshot."""

    def __init__(self, retriever: Any, size: int) -> None:
        self._retriever = retriever
        self.size = size

    @classmethod
    def build(cls, texts: Iterable[str], batch: int = 10_000) -> SparseIndex:
        """Index ``texts`` (streamed: tokenised a batch at a time, kept as token-id arrays)."""
        import bm25s
        from bm25s.tokenization import Tokenized

        vocab: dict[str, int] = {"": 0}
        ids: list[NDArray[np.int32]] = []
        pending: list[str] = []

        def flush() -> None:
            words = bm25s.tokenize(
                pending,
                stopwords="en",
                stemmer=_stemmer(),
                return_ids=False,
                show_progress=False,
                allow_empty=True,
            )
            for doc in words:
                ids.append(
                    np.fromiter((vocab.setdefault(w, len(vocab)) for w in doc), dtype=np.int32)
                )
            pending.clear()

        for text in texts:
            pending.append(text)
            if len(pending) >= batch:
                flush()
        if pending:
            flush()
        retriever = bm25s.BM25()
        if not any(len(doc) for doc in ids):
            return cls(retriever, 0)  # no word to index anywhere: every search finds nothing
        retriever.index(Tokenized(ids=ids, vocab=vocab), show_progress=False)
        return cls(retriever, len(ids))

    def save(self, folder: Path) -> None:
        folder.mkdir()
        if self.size:
            self._retriever.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path, size: int) -> SparseIndex:
        import bm25s

        if not size or not any(folder.iterdir()):
            return cls(bm25s.BM25(), 0)  # nothing was indexed (no passages, or no words)
        retriever = bm25s.BM25.load(str(folder), mmap=True, show_progress=False, verbosity=0)
        return cls(retriever, size)

    def search(
        self, queries: Sequence[str], k: int, live: NDArray[np.bool_] | None = None
    ) -> list[list[tuple[int, float]]]:
        """Top-``k`` ``(row, score)`` per query, best first; rows not ``live`` never come back.

        Queries without any indexed word get no results.
        """
        if not self.size or not queries:
            return [[] for _ in queries]
        mask = None if live is None else live.astype(np.float32)
        rows, scores = self._retriever.retrieve(
            tokenize(queries),
            k=min(k, self.size),
            show_progress=False,
            weight_mask=mask,
            n_threads=1,
        )
        return [
            [(int(r), float(s)) for r, s in zip(row, score, strict=True) if s > 0]
            for row, score in zip(rows, scores, strict=True)
        ]
