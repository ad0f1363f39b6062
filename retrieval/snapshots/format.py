"""What a snapshot folder holds on disk: its manifest, its array files, content hashes,
and the documents it keeps (see ``retrieval.snapshots`` for the layout)."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from retrieval.errors import SnapshotError
from retrieval.types import Document

FORMAT = 2


@dataclass(frozen=True)
class Manifest:
    corpus: str
    version: int
    rows: int  # passages stored, tombstoned ones included
    passages: int  # live passages
    documents: int
    embedder: str
    dim: int
    dense: str  # flat, hnsw, ivf or ivfpq
    created_at: str
    chunk_tokens: int = 200
    chunk_overlap: int = 30
    format: int = FORMAT


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class NpyWriter:
    """Appends float32 or int64 rows to a ``.npy`` file whose length is known only at the end."""

    HEADER = 128

    def __init__(self, path: Path, dtype: Any, width: int | None) -> None:
        self.path, self.dtype, self.width = path, np.dtype(dtype), width
        self.rows = 0
        self._file: IO[bytes] = path.open("wb")
        self._file.write(b"\0" * self.HEADER)

    def append(self, values: NDArray[Any]) -> None:
        values = np.ascontiguousarray(values, dtype=self.dtype)
        self._file.write(values.tobytes())
        self.rows += len(values)

    def discard(self) -> None:
        self._file.close()

    def close(self) -> None:
        shape = (self.rows,) if self.width is None else (self.rows, self.width)
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False}
        text = repr({**header, "shape": shape}).encode("latin1")
        body = b"\x93NUMPY\x01\x00" + (self.HEADER - 10).to_bytes(2, "little")
        padding = self.HEADER - len(body) - len(text) - 1
        self._file.seek(0)
        self._file.write(body + text + b" " * padding + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()


def passage_hash(title: str, text: str) -> str:
    return hashlib.sha1(f"{title}\x00{text}".encode(), usedforsecurity=False).hexdigest()[:20]


def content_hash(document: Document) -> str:
    return hashlib.sha256(f"{document.title}\x00{document.text}".encode()).hexdigest()


def read_manifest(folder: Path) -> Manifest:
    """What the snapshot in ``folder`` holds, without loading its indexes."""
    try:
        raw = json.loads((folder / "manifest.json").read_text())
        if raw.get("format") != FORMAT:
            raise SnapshotError(
                f"snapshot {folder} has format {raw.get('format')}, this version reads "
                f"{FORMAT}; add the corpus's documents again"
            )
        return Manifest(**raw)
    except (OSError, ValueError, TypeError) as exc:
        raise SnapshotError(f"cannot load snapshot {folder}: {exc}") from exc


@dataclass(frozen=True)
class StoredDocument:
    """A live document as a snapshot keeps it.

    ``rows`` are ``(row, start, end)`` of its passages: the passage row and where
    the passage sits in the document's text.
    """

    id: str
    title: str
    text: str
    metadata: dict[str, Any]
    sha256: str
    rows: tuple[tuple[int, int, int], ...]

    @classmethod
    def from_line(cls, line: str) -> StoredDocument:
        raw = json.loads(line)
        return cls(
            raw["id"],
            raw["title"],
            raw["text"],
            raw.get("metadata") or {},
            raw["sha256"],
            tuple((int(r), int(s), int(e)) for r, s, e in raw["rows"]),
        )


def read_documents(folder: Path, skip: int = 0) -> Iterator[StoredDocument]:
    """The live documents kept in a snapshot folder, after the first ``skip`` (not parsed)."""
    with (folder / "documents.jsonl").open(encoding="utf-8") as lines:
        for line in itertools.islice(lines, skip, None):
            yield StoredDocument.from_line(line)


def find_stored(folder: Path, document_id: str) -> StoredDocument | None:
    """One live document of a snapshot folder, or None: a scan that parses only its line."""
    start = '{"id": ' + json.dumps(document_id, ensure_ascii=False) + ","
    with (folder / "documents.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith(start):
                return StoredDocument.from_line(line)
    return None
