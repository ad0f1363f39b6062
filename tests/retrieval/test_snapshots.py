"""Snapshots: streamed builds, versions, dedup, tombstones, compaction, hybrid search."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrieval import snapshots
from retrieval.errors import EmbedderMismatchError, IngestError, SnapshotError
from retrieval.index import DenseConfig
from retrieval.snapshots import Builder, Fusion, Snapshot, rrf
from retrieval.types import Document
from tests.factories import FakeEmbedder, documents


def build(
    root: Path,
    version: int,
    embedder: FakeEmbedder,
    add: Iterable[Document] = (),
    delete: Iterable[str] = (),
    previous: Snapshot | None = None,
    compact: bool = False,
    dense: DenseConfig | None = None,
) -> Snapshot:
    with Builder(root, "c", version, embedder, previous, dense=dense, compact=compact) as b:
        b.delete(delete)
        b.add(add)
        folder = b.finish()
    return snapshots.load(folder, dense)


def search(snapshot: Snapshot, embedder: FakeEmbedder, query: str, k: int = 3, mode="hybrid"):
    return snapshot.search(embedder.encode([query]), [query], k, mode)[0]


def test_build_load_and_search_every_mode(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    snapshot = build(tmp_path, 1, embedder, documents())
    assert snapshot.folder is not None and snapshot.folder.name.startswith("v1-")
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.startswith(".tmp")]
    assert (snapshot.manifest.documents, len(snapshot), snapshot.manifest.dense) == (3, 3, "flat")
    for mode in ("hybrid", "dense", "sparse"):
        hits = search(snapshot, embedder, "Where was Marie Curie born?", 2, mode)
        assert hits[0].passage.document_id == "curie", mode
    hit = search(snapshot, embedder, "Marie Curie Warsaw")[0]
    # One vector per sentence, for the verifier, and document offsets kept.
    assert len(hit.sentence_vectors) == len(hit.passage.sentences) == 3
    document = next(d for d in documents() if d.id == "curie")
    assert document.text[hit.passage.start : hit.passage.end] == hit.passage.text


def test_a_new_version_embeds_only_new_passages_and_replaces(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    first = build(tmp_path, 1, embedder, documents())
    embedded = embedder.texts
    replacement = Document("python", "Python", "Python is a genus of snakes.")
    second = build(tmp_path, 2, embedder, [replacement, *documents()[:2]], previous=first)
    assert embedder.texts - embedded == 1  # one new sentence; unchanged documents skipped
    assert (second.manifest.documents, len(second), len(second.tombstones)) == (3, 3, 1)
    hits = search(second, embedder, "Python programming language Guido", 3)
    assert all("Guido" not in h.passage.text for h in hits)
    assert first.folder is not None and first.folder.exists()  # old versions stay readable
    kept = search(first, embedder, "Python programming language Guido", 1)
    assert "Guido" in kept[0].passage.text


def test_identical_passages_are_stored_once_and_survive_one_owner(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    notice = "This page is licensed under CC BY-SA."
    docs = [Document("a", "Notice", notice), Document("b", "Notice", notice)]
    first = build(tmp_path, 1, embedder, docs)
    assert (first.manifest.rows, first.manifest.documents) == (1, 2)
    second = build(tmp_path, 2, embedder, delete=["a"], previous=first)
    (hit,) = search(second, embedder, "licensed", 5)
    assert hit.passage.document_id == "b"  # the passage now belongs to its other owner
    third = build(tmp_path, 3, embedder, delete=["b"], previous=second)
    assert search(third, embedder, "licensed", 5) == [] and len(third) == 0


def test_deleted_documents_never_come_back_and_compaction_drops_them(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    first = build(tmp_path, 1, embedder, documents())
    second = build(tmp_path, 2, embedder, delete=["curie", "missing"], previous=first)
    for mode in ("hybrid", "dense", "sparse"):
        hits = search(second, embedder, "Marie Curie Warsaw Nobel", 10, mode)
        assert "curie" not in {h.passage.document_id for h in hits}, mode
    assert second.manifest.rows == 3 and len(second.tombstones) == 1
    third = build(tmp_path, 3, embedder, previous=second, compact=True)
    assert third.manifest.rows == 2 and len(third.tombstones) == 0
    assert {h.passage.document_id for h in search(third, embedder, "tower python", 5)} == {
        "eiffel",
        "python",
    }
    stored = list(snapshots.documents(third))
    assert sorted(d.id for d in stored) == ["eiffel", "python"]
    assert all(third.row(r)["document_id"] == d.id for d in stored for r, _, _ in d.rows)


def test_a_document_is_found_by_its_id_whatever_characters_it_has(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    odd = ['say "hi"', "notes/tides.md", "café, naïve", "a\\b", "x", "x2"]
    added = [Document(i, i.upper(), f"Text of {i} goes here.", {"n": n}) for n, i in enumerate(odd)]
    first = build(tmp_path, 1, embedder, added)
    second = build(tmp_path, 2, embedder, delete=["x"], previous=first)
    for n, doc_id in enumerate(odd[:-2]):
        found = snapshots.find_document(second, doc_id)
        assert found is not None and (found.id, found.metadata) == (doc_id, {"n": n})
    assert snapshots.find_document(second, "x") is None  # deleted; "x2" is no match for it
    assert snapshots.find_document(first, "x") is not None  # the old version still has it
    assert snapshots.find_document(second, "missing") is None
    assert second.folder is not None
    assert [d.id for d in snapshots.documents(second.folder)] == [*odd[:-2], "x2"]
    assert [d.id for d in snapshots.documents(second, skip=3)] == [*odd[3:-2], "x2"]


@pytest.mark.parametrize("kind", ["hnsw", "ivf", "ivfpq"])
def test_approximate_indexes_grow_by_adding_and_honour_tombstones(tmp_path: Path, kind) -> None:
    embedder = FakeEmbedder()
    dense = DenseConfig(kind=kind)
    many = [
        Document(f"d{i}", f"Doc {i}", f"Item {i} has colour {i % 7} and size {i}.")
        for i in range(300)
    ]
    first = build(tmp_path, 1, embedder, many, dense=dense)
    assert first.manifest.dense == kind
    second = build(
        tmp_path, 2, embedder, [Document("x", "X", "A zebra.")], ["d5"], first, dense=dense
    )
    assert len(second.dense) == 301  # type: ignore[arg-type]
    assert search(second, embedder, "X: A zebra.", 1, "dense")[0].passage.document_id == "x"
    hits = search(second, embedder, "Item 5 has colour 5 and size 5", 10, "dense")
    assert "d5" not in {h.passage.document_id for h in hits}


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "ivfpq"])
def test_an_index_built_from_a_vector_file_equals_one_built_from_memory(
    tmp_path: Path, kind
) -> None:
    from retrieval.index import DenseIndex, NpyRows

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    np.save(tmp_path / "v.npy", vectors)
    rows = NpyRows(tmp_path / "v.npy")
    assert len(rows) == 3000 and rows.shape == (3000, 16)
    np.testing.assert_array_equal(rows[10:20], vectors[10:20])
    np.testing.assert_array_equal(rows[np.array([3, 7])], vectors[[3, 7]])
    config = DenseConfig(kind=kind, ivf_lists=16)
    from_file = DenseIndex.build(rows, 16, config)
    from_memory = DenseIndex.build(vectors, 16, config)
    queries = vectors[:20]
    np.testing.assert_array_equal(
        from_file.search(queries, 5)[1], from_memory.search(queries, 5)[1]
    )


def test_auto_picks_the_approximate_kind_above_the_threshold(tmp_path: Path) -> None:
    dense = DenseConfig(kind="auto", ann_threshold=50)
    docs = [Document(f"d{i}", "T", f"Number {i} is here.") for i in range(60)]
    assert build(tmp_path, 1, FakeEmbedder(), docs, dense=dense).manifest.dense == "ivfpq"


@pytest.mark.slow
def test_ivfpq_keeps_codes_and_rescores_its_candidates_exactly(tmp_path: Path) -> None:
    from retrieval.index import DenseIndex

    rng = np.random.default_rng(1)
    centres = rng.normal(size=(40, 64)).astype(np.float32)
    vectors = centres[rng.integers(0, 40, 20_000)] + rng.normal(size=(20_000, 64)).astype(
        np.float32
    ) * np.float32(0.15)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    np.save(tmp_path / "v.npy", vectors)
    mapped = np.load(tmp_path / "v.npy", mmap_mode="r")
    exact = DenseIndex.build(vectors, 64, DenseConfig(kind="flat"))
    sizes = {}
    for kind in ("ivf", "ivfpq"):
        index = DenseIndex.build(vectors, 64, DenseConfig(kind=kind))
        index.save(tmp_path / f"{kind}.faiss")
        sizes[kind] = (tmp_path / f"{kind}.faiss").stat().st_size
    # A sixteenth of the flat vectors' bytes, plus ids and cells.
    assert sizes["ivfpq"] < sizes["ivf"] / 6
    loaded = DenseIndex.load(tmp_path / "ivfpq.faiss", "ivfpq", DenseConfig(), exact=mapped)
    queries = vectors[:50] + np.float32(0.05)
    excluded = np.array([3, 17, 42], dtype=np.int64)
    scores, rows = loaded.search(queries, 10, excluded)
    true_scores, true_rows = exact.search(queries, 10, excluded)
    assert not set(rows.ravel()) & set(excluded)
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", queries, vectors[rows]), rtol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows, true_rows, strict=True)])
    assert recall >= 0.95
    # Without the vectors it answers from the codes alone: scores are approximations.
    approximate = DenseIndex.load(tmp_path / "ivfpq.faiss", "ivfpq", DenseConfig())
    assert not np.allclose(approximate.search(queries, 10)[0], true_scores, atol=1e-4)


def test_a_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    def broken() -> Iterable[Document]:
        yield documents()[0]
        raise ValueError("the input broke")

    with pytest.raises(ValueError), Builder(tmp_path, "c", 1, FakeEmbedder()) as builder:
        builder.add(broken())
    assert list((tmp_path / "c").iterdir()) == []
    with (
        pytest.raises(IngestError, match="twice"),
        Builder(tmp_path, "c", 1, FakeEmbedder()) as b,
    ):
        b.add([documents()[0], documents()[0]])
    assert list((tmp_path / "c").iterdir()) == []


def test_a_version_is_never_built_on_another_embedders_vectors(tmp_path: Path) -> None:
    first = build(tmp_path, 1, FakeEmbedder(), documents())
    for other in (FakeEmbedder(dim=64), type("Renamed", (FakeEmbedder,), {"name": "other"})()):
        with pytest.raises(EmbedderMismatchError, match="was embedded with fake-hashing"):
            build(tmp_path, 2, other, delete=["curie"], previous=first)
    assert [p.name for p in (tmp_path / "c").iterdir()] == [first.folder.name]  # type: ignore[union-attr]
    assert build(tmp_path, 2, FakeEmbedder(dim=64), documents()).manifest.dim == 64  # afresh


def test_inconsistent_or_old_snapshots_are_refused(tmp_path: Path) -> None:
    snapshot = build(tmp_path, 1, FakeEmbedder(), documents())
    assert snapshot.folder is not None
    manifest = json.loads((snapshot.folder / "manifest.json").read_text())
    (snapshot.folder / "manifest.json").write_text(json.dumps({**manifest, "rows": 7}))
    with pytest.raises(SnapshotError, match="disagree"):
        snapshots.load(snapshot.folder)
    (snapshot.folder / "manifest.json").write_text(json.dumps({**manifest, "format": 1}))
    with pytest.raises(SnapshotError, match="format 1"):
        snapshots.load(snapshot.folder)


def test_sweep_removes_only_what_no_version_records(tmp_path: Path) -> None:
    kept = build(tmp_path, 1, FakeEmbedder(), documents())
    orphan = build(tmp_path, 2, FakeEmbedder(), documents()[:1])
    (tmp_path / "c" / ".tmp-v3-dead").mkdir()
    assert kept.folder and orphan.folder
    assert snapshots.sweep(tmp_path / "c", [kept.folder]) == []  # too young to be sure
    removed = snapshots.sweep(tmp_path / "c", [kept.folder], older_than_s=0)
    assert sorted(p.name for p in removed) == sorted([orphan.folder.name, ".tmp-v3-dead"])
    assert kept.folder.exists()


def test_rrf_fuses_ranks_with_weights() -> None:
    fused = rrf([[(1, 0.9), (2, 0.8)], [(2, 5.0), (3, 4.0)]], [1.0, 1.0], 60)
    assert [row for row, _ in fused] == [2, 1, 3]
    only_sparse = rrf([[(1, 0.9)], [(3, 1.0)]], [0.0, 1.0], 60)
    assert only_sparse[0][0] == 3


def test_a_reranker_reorders_the_fused_candidates(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    snapshot = build(tmp_path, 1, embedder, documents())
    by_length = snapshot.search(
        embedder.encode(["tower"]),
        ["tower"],
        3,
        fusion=Fusion(),
        rerank=lambda query, passages: [-len(p.text) for p in passages],
    )[0]
    lengths = [len(h.passage.text) for h in by_length]
    assert lengths == sorted(lengths)


words = st.sampled_from("paris tower curie warsaw python snake river bridge music art".split())
docs_strategy = st.lists(
    st.tuples(st.integers(0, 30), st.lists(words, min_size=1, max_size=8)),
    min_size=1,
    max_size=12,
    unique_by=lambda t: t[0],
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    docs_strategy,
    st.lists(st.integers(0, 30), max_size=6),
    st.lists(words, min_size=1, max_size=3),
    st.integers(1, 8),
    st.sampled_from(["hybrid", "dense", "sparse"]),
    st.sampled_from(["flat", "ivfpq"]),
)
def test_search_properties(tmp_path_factory, rows, deleted, query_words, k, mode, kind) -> None:
    root = tmp_path_factory.mktemp("prop")
    embedder = FakeEmbedder()
    docs = [Document(f"d{i}", f"T{i}", " ".join(ws) + ".") for i, ws in rows]
    dense = DenseConfig(kind=kind)
    first = build(root, 1, embedder, docs, dense=dense)
    gone = {f"d{i}" for i in deleted}
    second = build(root, 2, embedder, delete=sorted(gone), previous=first, dense=dense)
    live = {d.id for d in docs} - gone
    query = " ".join(query_words)
    hits = search(second, embedder, query, k, mode)
    assert len(hits) <= k
    assert {h.passage.document_id for h in hits} <= live  # deleted never come back
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert len({h.passage.id for h in hits}) == len(hits)


def test_passages_without_any_indexable_word_are_found_by_dense_search_only(tmp_path) -> None:
    embedder = FakeEmbedder()
    snapshot = build(
        tmp_path, 1, embedder, [Document("a", "A", "a b c"), Document("b", "B", "x y")]
    )
    assert search(snapshot, embedder, "a b", 5, "sparse") == []
    assert {h.passage.document_id for h in search(snapshot, embedder, "a b c", 5)} <= {"a", "b"}
