"""The optional cross-encoder reranker, loaded from a folder the test makes itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from retrieval.embedders import default_model_path
from retrieval.errors import EmbedderError
from retrieval.rerank import CrossEncoderReranker
from retrieval.snapshots import Builder, load
from tests.factories import FakeEmbedder, documents


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory) -> Path:
    """MiniLM's encoder with a fresh one-output head, saved to a local folder."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from sentence_transformers import CrossEncoder

    folder = tmp_path_factory.mktemp("reranker")
    CrossEncoder(str(default_model_path()), num_labels=1, device="cpu").save(str(folder))
    return folder


@pytest.mark.models
def test_a_local_cross_encoder_reranks_fused_results(tiny_cross_encoder: Path, tmp_path) -> None:
    reranker = CrossEncoderReranker(tiny_cross_encoder)
    embedder = FakeEmbedder()
    with Builder(tmp_path, "c", 1, embedder) as builder:
        builder.add(documents())
        snapshot = load(builder.finish())
    query = "Where was Marie Curie born?"
    (hits,) = snapshot.search(embedder.encode([query]), [query], 3, rerank=reranker)
    expected = reranker(query, [h.passage for h in hits])
    assert [h.score for h in hits] == pytest.approx(sorted(expected, reverse=True))
    assert len(hits) == 3


def test_a_missing_folder_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(EmbedderError, match="does not exist"):
        CrossEncoderReranker(tmp_path / "nowhere")
