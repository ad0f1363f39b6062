"""Versioned, immutable corpus snapshots: passages, dense and sparse indexes, documents.

A snapshot is a folder ``<root>/<corpus>/v<version>-<token>/``:

``manifest.json``        what the folder holds (written last)
``passages.jsonl``       row ``i`` describes passage ``i``; ``passage_offsets.npy`` gives
                         the byte offset of each row, so passages are read on demand
``vectors.npy``          one vector per passage (memory-mapped)
``sentences.npy``        one vector per passage sentence, passage by passage, with
                         ``sentence_offsets.npy`` (rows + 1 entries); verification only
                         embeds the claims
``index.faiss``          the approximate dense index (none for ``flat``: built from
                         ``vectors.npy`` on load)
``bm25/``                the ``bm25s`` index (memory-mapped)
``tombstones.npy``       passage rows that no live document owns any more
``owners.json``          rows shared by several documents, or whose first owner was
                         deleted: their live owners ``[document, start, end]``
``documents.jsonl``      the live documents: id, title, text, metadata, content hash and
                         the rows they own with their offsets
                         (read back as :class:`StoredDocument`)

A :class:`Builder` writes the next version in a temporary folder, streaming
documents in batches, then fsyncs and renames it into place: a reader sees a
whole snapshot or none. Passages of documents that stay keep their vectors;
identical passages (same title and text) are stored once; deleting marks
tombstones that dense and sparse search both honour, and :meth:`Builder`
with ``compact=True`` rebuilds without them. Nothing is pickled.

``format`` holds what is on disk, ``snapshot`` the loaded, searchable
snapshot, ``builder`` the writer of the next version.
"""

from retrieval.snapshots.builder import Builder, Change, Chunking, check_embedder, passages_of
from retrieval.snapshots.format import FORMAT, Manifest, StoredDocument, read_manifest
from retrieval.snapshots.snapshot import (
    Fusion,
    Mode,
    Reranker,
    Snapshot,
    documents,
    find_document,
    load,
    rrf,
    sweep,
)

__all__ = [
    "FORMAT",
    "Builder",
    "Change",
    "Chunking",
    "Fusion",
    "Manifest",
    "Mode",
    "Reranker",
    "Snapshot",
    "StoredDocument",
    "check_embedder",
    "documents",
    "find_document",
    "load",
    "passages_of",
    "read_manifest",
    "rrf",
    "sweep",
]
