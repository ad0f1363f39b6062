"""Domain types of the retrieval package."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Document:
    """A source document as ingested; ``id`` is unique within its corpus."""

    id: str
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Passage:
    """A chunk of a document; ``start``/``end`` index the document text.

    ``sentences`` are ``(start, end)`` offsets into the passage text.
    """

    id: str
    document_id: str
    title: str
    text: str
    start: int
    end: int
    sentences: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Hit:
    """A search result; ``sentence_vectors`` holds one embedding per passage sentence."""

    passage: Passage
    score: float
    sentence_vectors: NDArray[np.float32] | None = field(default=None, compare=False, repr=False)
