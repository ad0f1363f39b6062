from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrieval import snapshots
from retrieval.errors import SnapshotError
from retrieval.snapshots import SnapshotStore
from retrieval.types import Document
from tests.factories import FakeEmbedder, documents


def test_write_load_round_trip_and_search(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    store = SnapshotStore(tmp_path)
    snapshot = snapshots.build("c", 1, embedder, documents())
    folder = store.write(snapshot)
    assert folder.name.startswith("v1-")
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".tmp")]
    loaded = store.load(folder)
    assert loaded.passages == snapshot.passages
    assert loaded.manifest == snapshot.manifest
    query = embedder.encode(["Where was Marie Curie born?"])
    hits = loaded.search(query, 2)[0]
    assert hits[0].passage.document_id == "curie"
    assert np.allclose(loaded.index.vectors(), snapshot.index.vectors())


def test_next_version_embeds_only_new_passages_and_drops_replaced(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    first = snapshots.build("c", 1, embedder, documents())
    embedded = embedder.texts
    replacement = Document("python", "Python", "Python is a genus of snakes.")
    second = snapshots.build(
        "c", 2, embedder, [replacement], previous=first, removed_ids=frozenset({"python"})
    )
    assert embedder.texts - embedded == 2  # the one new passage and its one sentence
    assert {p.document_id for p in second.passages} == {"eiffel", "curie", "python"}
    assert all("Guido" not in p.text for p in second.passages)
    assert len(second.passages) == len(second.index)
    for row, passage in enumerate(second.passages):  # sentence vectors still line up
        text = passage.text[slice(*passage.sentences[0])]
        expected = embedder.encode([f"{passage.title}: {text}"])[0]
        assert np.allclose(second.sentences_of(row)[0], expected)


def test_a_failed_write_leaves_no_folder(tmp_path: Path, monkeypatch) -> None:
    store = SnapshotStore(tmp_path)
    snapshot = snapshots.build("c", 1, FakeEmbedder(), documents())

    def broken_rename(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "rename", broken_rename)
    with pytest.raises(OSError):
        store.write(snapshot)
    assert list((tmp_path / "c").iterdir()) == []


def test_an_inconsistent_snapshot_is_refused(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    folder = store.write(snapshots.build("c", 1, FakeEmbedder(), documents()))
    with (folder / "passages.jsonl").open("a") as extra:
        extra.write(
            '{"id": "x", "document_id": "x", "title": "x", "text": "x", "start": 0, "end": 1}\n'
        )
    with pytest.raises(SnapshotError, match="passages"):
        store.load(folder)
    with pytest.raises(SnapshotError):
        store.load(tmp_path / "missing")


words = st.sampled_from("tower paris curie warsaw python snake moon river year prize".split())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(words, min_size=1, max_size=8).map(" ".join), min_size=1, max_size=20),
    st.lists(words, min_size=1, max_size=4).map(" ".join),
    st.integers(min_value=1, max_value=30),
)
def test_search_returns_at_most_k_known_ids_best_first(texts, query, k) -> None:
    embedder = FakeEmbedder(dim=32)
    docs = [Document(f"d{i}", f"D{i}", text) for i, text in enumerate(texts)]
    snapshot = snapshots.build("c", 1, embedder, docs)
    hits = snapshot.search(embedder.encode([query]), k)[0]
    known = {p.id for p in snapshot.passages}
    assert len(hits) <= k and len(hits) == min(k, len(snapshot.passages))
    assert all(hit.passage.id in known for hit in hits)
    assert len({hit.passage.id for hit in hits}) == len(hits)
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)


def test_memo_embedder_encodes_each_text_once_and_forgets_the_oldest() -> None:
    from retrieval.embedders import MemoEmbedder

    inner = FakeEmbedder()
    memo = MemoEmbedder(inner, capacity=3)
    first = memo.encode(["a b", "c d", "a b"])
    assert inner.texts == 2 and first.shape == (3, inner.dim)
    assert np.allclose(first, inner.encode(["a b", "c d", "a b"]))
    inner.texts = 0
    assert np.allclose(memo.encode(["c d"]), first[1:2]) and inner.texts == 0
    memo.encode(["e", "f"])  # capacity 3: "a b", the least recently used, goes
    memo.encode(["a b"])
    assert inner.texts == 3
    assert memo.encode([]).shape == (0, inner.dim)
