"""Plain factory functions and fakes for the tests."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from retrieval.embedders import TokenVectors
from retrieval.types import Document

WORD = re.compile(r"[a-z0-9]+")


class FakeEmbedder:
    """Deterministic bag-of-words hashing embedder that counts what it encodes."""

    name = "fake-hashing"

    def __init__(self, dim: int = 128) -> None:
        self.dim = dim
        self.calls = 0
        self.texts = 0
        self.token_calls = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts += len(texts)
        return self._vectors(texts)

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in WORD.findall(text.lower()):
                bucket = int(hashlib.md5(word.encode()).hexdigest()[:8], 16) % self.dim
                vectors[row, bucket] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return vectors / norms

    def encode_tokens(self, texts: Sequence[str]) -> list[TokenVectors]:
        """Each word a piece, its vector the hashing vector of the word alone."""
        self.token_calls += 1
        out = []
        for text, sentence in zip(texts, self._vectors(texts), strict=True):
            words = WORD.findall(text.lower()) or ["."]
            out.append(TokenVectors(tuple(words), self._vectors(words), sentence))
        return out


def documents() -> list[Document]:
    return [
        Document(
            "eiffel",
            "Eiffel Tower",
            "The Eiffel Tower is a wrought-iron lattice tower in Paris, France. "
            "It was completed in 1889 and is 330 metres tall.",
        ),
        Document(
            "curie",
            "Marie Curie",
            "Marie Curie was a physicist and chemist. She was born in Warsaw in 1867. "
            "She won two Nobel Prizes.",
        ),
        Document(
            "python",
            "Python",
            "Python is a programming language created by Guido van Rossum. "
            "It was first released in 1991.",
        ),
    ]


def document_rows() -> list[dict[str, str]]:
    return [{"id": d.id, "title": d.title, "text": d.text} for d in documents()]
