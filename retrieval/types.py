"""Domain types of the retrieval package."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """A source document as ingested; ``id`` is unique within its corpus."""

    id: str
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Passage:
    """A chunk of a document; ``start``/``end`` index the document text."""

    id: str
    document_id: str
    title: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float
