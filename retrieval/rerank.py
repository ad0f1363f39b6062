"""An optional reranker: a sentence-transformers CrossEncoder loaded from a local folder only."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from retrieval.errors import EmbedderError
from retrieval.text import titled
from retrieval.types import Passage


class CrossEncoderReranker:
    """Scores (query, passage) pairs; higher is more relevant.

    Args:
        path: Folder of a saved ``CrossEncoder`` (never a hub id: nothing is downloaded).
        batch_size: Pairs per forward pass.
    """

    def __init__(self, path: Path, batch_size: int = 32) -> None:
        if not path.is_dir():
            raise EmbedderError(f"reranker folder {path} does not exist")
        os.environ["HF_HUB_OFFLINE"] = "1"
        from sentence_transformers import CrossEncoder

        self._model: Any = CrossEncoder(str(path), device="cpu")
        self._batch_size = batch_size
        self._lock = threading.Lock()

    def __call__(self, query: str, passages: Sequence[Passage]) -> list[float]:
        if not passages:
            return []
        pairs = [(query, titled(p.title, p.text)) for p in passages]
        with self._lock:
            scores = self._model.predict(
                pairs, batch_size=self._batch_size, show_progress_bar=False
            )
        flat = [float(s if getattr(s, "ndim", 0) == 0 else s[-1]) for s in scores]
        return flat


def load_reranker(path: Path) -> CrossEncoderReranker:
    return CrossEncoderReranker(path)
