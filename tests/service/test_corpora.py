"""Corpora as the service holds them: changes, caching, recovery, old snapshots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval import snapshots
from retrieval.errors import EmbedderMismatchError
from retrieval.types import Document
from service.corpora import Corpora
from service.errors import NotFoundError
from service.store import corpora as corpus_store
from service.store import db as store_db
from tests.factories import FakeEmbedder, documents


@pytest.fixture
def corpora(tmp_path: Path) -> Corpora:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store_db.upgrade(url)
    sessions = store_db.make_session_factory(store_db.make_engine(url))
    return Corpora(sessions, tmp_path / "indexes", FakeEmbedder())


def test_a_snapshot_of_an_old_format_is_rebuilt_for_the_built_in_corpus(corpora: Corpora) -> None:
    first = corpora.ensure("builtin", documents)
    assert first.version == 1 and first.folder is not None
    manifest = json.loads((first.folder / "manifest.json").read_text())
    (first.folder / "manifest.json").write_text(json.dumps({**manifest, "format": 1}))
    corpora._cache.clear()  # noqa: SLF001 (a restart)
    again = corpora.ensure("builtin", documents)
    assert again.version == 2 and again.manifest.documents == 3


def test_changes_to_a_missing_corpus_are_404_and_no_op_changes_make_no_version(
    corpora: Corpora,
) -> None:
    with pytest.raises(NotFoundError):
        corpora.add_documents("nope", documents())
    corpora.ensure("c", documents)
    same = corpora.add_documents("c", documents())
    assert (same.version, same.unchanged, same.added) == (1, 3, 0)
    missing = corpora.delete_documents("c", ["ghost"])
    assert missing.version == 1 and missing.not_found == ["ghost"]
    with corpora._sessions() as db:  # noqa: SLF001
        corpus = corpus_store.get_corpus(db, "c")
        assert corpus is not None and len(corpus_store.list_versions(db, corpus)) == 1


def test_old_versions_beyond_the_retained_ones_lose_their_folders(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store_db.upgrade(url)
    sessions = store_db.make_session_factory(store_db.make_engine(url))
    corpora = Corpora(sessions, tmp_path / "indexes", FakeEmbedder(), retain=2)
    corpora.ensure("c", documents)
    for doc_id in ("curie", "python"):
        corpora.delete_documents("c", [doc_id])
    with sessions() as db:
        corpus = corpus_store.get_corpus(db, "c")
        assert corpus is not None
        paths = [v.snapshot_path for v in corpus_store.list_versions(db, corpus)]
    assert [corpora.available(p) for p in paths] == [False, True, True]
    assert corpora.current("c") is not None


def test_another_embedder_rebuilds_the_built_in_corpus_and_reembeds_others_on_request(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store_db.upgrade(url)
    sessions = store_db.make_session_factory(store_db.make_engine(url))
    before = Corpora(sessions, tmp_path / "indexes", FakeEmbedder())
    before.ensure("builtin", documents)
    before.ensure("mine", documents)
    tagged = Document("moon", "Moon", "The Moon orbits the Earth.", {"source": "nasa"})
    before.add_documents("mine", [tagged])
    before.delete_documents("mine", ["python"])

    embedder = FakeEmbedder(dim=64)  # another model: same name, other vectors
    after = Corpora(sessions, tmp_path / "indexes", embedder)
    rebuilt = after.ensure("builtin", documents)  # the service rebuilds what it owns
    assert rebuilt.version == 2 and rebuilt.manifest.dim == 64
    with pytest.raises(EmbedderMismatchError, match=r"\(128 dimensions\), not fake-hashing \(64\)"):
        after.searchable("mine")
    with pytest.raises(EmbedderMismatchError, match="rebuild mine --reembed"):
        after.add_documents("mine", [Document("sun", "Sun", "The Sun is a star.")])
    assert after.current("mine").version == 3  # type: ignore[union-attr]
    assert not list((tmp_path / "indexes" / "mine").glob(".tmp-*"))

    encoded = embedder.texts
    result = after.rebuild("mine", reembed=True)
    assert (result.version, result.added, result.documents) == (4, 3, 3)
    assert embedder.texts > encoded
    snapshot = after.searchable("mine")
    assert snapshot is not None and snapshot.manifest.dim == 64 and snapshot.live.all()
    kept = {d.id: d for d in snapshots.documents(snapshot)}
    assert set(kept) == {"eiffel", "curie", "moon"}
    assert kept["moon"].metadata == {"source": "nasa"} and kept["moon"].text == tagged.text
    (hit,) = snapshot.search(embedder.encode(["Moon orbits"]), ["Moon orbits"], 1)[0]
    assert hit.passage.document_id == "moon"
