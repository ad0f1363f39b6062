"""The streamed BM25 writer gives bm25s's own index, whatever its batch and bucket count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.sparse import SparseIndex, write_index

WORDS = ["cat", "dogs", "barking", "mat", "river", "bridge", "stone", "the", "a", "running"]


def reference(texts: list[str], folder: Path) -> None:
    import bm25s

    from retrieval.sparse import tokenize

    retriever = bm25s.BM25()
    retriever.index(tokenize(texts), show_progress=False)
    retriever.save(str(folder), show_progress=False)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(WORDS), max_size=12).map(" ".join), min_size=1, max_size=40),
    st.integers(1, 9),
    st.integers(1, 7),
)
def test_streamed_index_scores_like_bm25s(
    tmp_path_factory: object, texts: list[str], buckets: int, batch: int
) -> None:
    root = tmp_path_factory.mktemp("bm25")  # type: ignore[attr-defined]
    assert write_index(iter(texts), root / "mine", batch=batch, buckets=buckets) == len(texts)
    mine = SparseIndex.load(root / "mine", len(texts))
    if not any(f.suffix == ".npy" for f in (root / "mine").iterdir()):
        assert mine.search(["cat"], 5) == [[]]
        return
    reference(texts, root / "theirs")
    theirs = SparseIndex.load(root / "theirs", len(texts))
    queries = ["cat mat", "barking dogs", "stone bridge river", "running"]
    for a, b in zip(mine.search(queries, 10), theirs.search(queries, 10), strict=True):
        assert [r for r, _ in a] == [r for r, _ in b] or sorted(s for _, s in a) == sorted(
            s for _, s in b
        )
        np.testing.assert_allclose([s for _, s in a], [s for _, s in b], rtol=1e-5)
    assert not list((root / "mine").glob(".postings*"))


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(WORDS), max_size=12).map(" ".join), min_size=1, max_size=40),
    st.integers(0, 12),
    st.sets(st.integers(0, 39)),
)
def test_search_ranks_as_bm25s_does_with_ties_by_row(
    tmp_path_factory: object, texts: list[str], k: int, dead: set[int]
) -> None:
    from retrieval.sparse import tokenize

    root = tmp_path_factory.mktemp("bm25")  # type: ignore[attr-defined]
    write_index(iter(texts), root / "mine")
    if not any(f.suffix == ".npy" for f in (root / "mine").iterdir()):
        return  # no word indexed: nothing to rank (the test above)
    index = SparseIndex.load(root / "mine", len(texts))
    live = np.array([i not in dead for i in range(len(texts))])
    for query in ["cat mat", "barking dogs", "stone bridge river", "running", "nothing"]:
        (found,) = index.search([query], k, live)
        # bm25s' own ranking of every row, cut the same way: above zero, ties by row
        rows, scores = index._retriever.retrieve(
            tokenize([query]),
            k=len(texts),
            show_progress=False,
            weight_mask=live.astype(np.float32),
        )
        ranked = [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if s > 0]
        assert found == sorted(ranked, key=lambda pair: (-pair[1], pair[0]))[:k]
        assert all(live[r] for r, _ in found)
