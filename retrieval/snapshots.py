"""Versioned, immutable index snapshots on disk.

A snapshot is a folder ``<root>/<corpus>/v<version>-<token>/`` holding
``index.faiss``, ``passages.jsonl`` (row ``i`` describes vector ``i``),
``sentences.npy`` (one vector per passage sentence, passage by passage, read
memory-mapped) and ``manifest.json``. Sentence vectors are made at index
time so that verification only has to embed the claims. A snapshot is written
in a temporary folder, fsynced and renamed into place, so a reader sees a
whole snapshot or none.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from retrieval.embedders import Embedder, encode_with_progress
from retrieval.errors import SnapshotError
from retrieval.index import DenseIndex
from retrieval.ingest import chunk
from retrieval.text import titled
from retrieval.types import Document, Hit, Passage

FORMAT = 1


@dataclass(frozen=True)
class Manifest:
    corpus: str
    version: int
    passages: int
    documents: int
    embedder: str
    dim: int
    created_at: str
    format: int = FORMAT


class Snapshot:
    """A loaded snapshot: passages, their dense index and their sentence vectors."""

    def __init__(
        self,
        manifest: Manifest,
        passages: list[Passage],
        index: DenseIndex,
        sentence_vectors: NDArray[np.float32],
    ) -> None:
        where = f"snapshot {manifest.corpus} v{manifest.version}"
        if len(passages) != len(index):
            raise SnapshotError(f"{where}: {len(passages)} passages but {len(index)} vectors")
        self.offsets = np.cumsum([0] + [len(p.sentences) for p in passages])
        if int(self.offsets[-1]) != len(sentence_vectors):
            raise SnapshotError(
                f"{where}: {int(self.offsets[-1])} sentences but {len(sentence_vectors)} "
                "sentence vectors"
            )
        self.manifest = manifest
        self.passages = passages
        self.index = index
        self.sentence_vectors = sentence_vectors

    def sentences_of(self, row: int) -> NDArray[np.float32]:
        """The sentence vectors of passage ``row``."""
        return self.sentence_vectors[self.offsets[row] : self.offsets[row + 1]]

    @property
    def version(self) -> int:
        return self.manifest.version

    def search(self, queries: NDArray[np.float32], k: int) -> list[list[Hit]]:
        """Top-``k`` passages for each query vector, best first."""
        if len(self.passages) == 0 or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        scores, rows = self.index.search(queries, min(k, len(self.passages)))
        return [
            [
                Hit(self.passages[int(row)], float(score), self.sentences_of(int(row)))
                for score, row in zip(score_row, row_ids, strict=True)
                if row >= 0
            ]
            for score_row, row_ids in zip(scores, rows, strict=True)
        ]


def build(
    corpus: str,
    version: int,
    embedder: Embedder,
    added: Sequence[Document],
    previous: Snapshot | None = None,
    removed_ids: frozenset[str] = frozenset(),
    max_chars: int = 800,
) -> Snapshot:
    """Make the next snapshot: the previous one's passages, less removed documents, plus new ones.

    Passages kept from ``previous`` reuse their vectors (passage and sentence);
    only new passages and their sentences are embedded.

    Args:
        corpus: Corpus name.
        version: Version number of the new snapshot.
        embedder: Encodes the new passages.
        added: New documents (and new versions of replaced ones).
        previous: The snapshot this one follows, if any.
        removed_ids: Document ids dropped from ``previous`` (deleted or replaced).
        max_chars: Passage size budget.
    """
    kept: list[Passage] = []
    kept_vectors = np.zeros((0, embedder.dim), dtype=np.float32)
    kept_sentences = np.zeros((0, embedder.dim), dtype=np.float32)
    if previous is not None:
        keep_rows = [i for i, p in enumerate(previous.passages) if p.document_id not in removed_ids]
        kept = [previous.passages[i] for i in keep_rows]
        kept_vectors = previous.index.vectors()[keep_rows]
        kept_sentences = np.concatenate(
            [kept_sentences, *(previous.sentences_of(i) for i in keep_rows)]
        )
    new = [passage for document in added for passage in chunk(document, max_chars)]
    new_vectors = encode_with_progress(embedder, [p.text for p in new], f"{corpus}: passages")
    new_sentences = encode_with_progress(
        embedder,
        [titled(p.title, p.text[s:e]) for p in new for s, e in p.sentences],
        f"{corpus}: sentences",
    )
    passages = kept + new
    documents = len({p.document_id for p in passages})
    manifest = Manifest(
        corpus,
        version,
        len(passages),
        documents,
        embedder.name,
        embedder.dim,
        datetime.now(UTC).isoformat(),
    )
    index = DenseIndex(embedder.dim)
    index.add(np.concatenate([kept_vectors, new_vectors]))
    return Snapshot(manifest, passages, index, np.concatenate([kept_sentences, new_sentences]))


def _passage(row: dict[str, object]) -> Passage:
    sentences = row.pop("sentences", [])
    assert isinstance(sentences, list)
    return Passage(**row, sentences=tuple((int(s), int(e)) for s, e in sentences))  # type: ignore[arg-type]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SnapshotStore:
    """Writes and reads snapshots under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, snapshot: Snapshot) -> Path:
        """Write ``snapshot`` atomically and return its folder."""
        corpus_dir = self.root / snapshot.manifest.corpus
        corpus_dir.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex[:8]
        tmp = corpus_dir / f".tmp-v{snapshot.version}-{token}"
        final = corpus_dir / f"v{snapshot.version}-{token}"
        tmp.mkdir()
        try:
            snapshot.index.save(tmp / "index.faiss")
            np.save(tmp / "sentences.npy", np.asarray(snapshot.sentence_vectors, np.float32))
            with (tmp / "passages.jsonl").open("w", encoding="utf-8") as out:
                for passage in snapshot.passages:
                    out.write(json.dumps(asdict(passage), ensure_ascii=False) + "\n")
            (tmp / "manifest.json").write_text(json.dumps(asdict(snapshot.manifest), indent=2))
            for name in ("index.faiss", "sentences.npy", "passages.jsonl", "manifest.json"):
                _fsync(tmp / name)
            _fsync(tmp)
            os.rename(tmp, final)
            _fsync(corpus_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def load(self, folder: Path) -> Snapshot:
        """Load the snapshot in ``folder`` and check that its parts agree."""
        try:
            manifest = Manifest(**json.loads((folder / "manifest.json").read_text()))
            with (folder / "passages.jsonl").open(encoding="utf-8") as lines:
                passages = [_passage(json.loads(line)) for line in lines]
            index = DenseIndex.load(folder / "index.faiss")
            sentences = np.load(folder / "sentences.npy", mmap_mode="r")
        except (OSError, ValueError, TypeError, RuntimeError) as exc:
            raise SnapshotError(f"cannot load snapshot {folder}: {exc}") from exc
        if manifest.format != FORMAT:
            raise SnapshotError(f"snapshot {folder} has format {manifest.format}, want {FORMAT}")
        return Snapshot(manifest, passages, index, sentences)

    def discard(self, folder: Path) -> None:
        """Remove a snapshot folder that was never made current."""
        shutil.rmtree(folder, ignore_errors=True)
