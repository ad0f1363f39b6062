"""The real MiniLM: sentences read inside their passage, from one forward pass."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.embedders import (
    MemoEmbedder,
    MiniLMEmbedder,
    TokenVectors,
    default_model_path,
    model_name,
)
from retrieval.text import split_sentences, titled

TEXT = (
    "Paris is the capital and largest city of France. It has about two million "
    "inhabitants. The Seine flows through the city."
)


def _spans(title: str, text: str) -> tuple[str, int, list[tuple[int, int]]]:
    head = len(titled(title, ""))
    return titled(title, text), head, [(head + s, head + e) for s, e in split_sentences(text)]


def test_passage_vector_is_the_plain_embedding_and_sentences_stay_close(minilm: Any) -> None:
    text, head, spans = _spans("Paris", TEXT)
    passages, pooled = minilm.encode_passages([text], [head], [spans])
    assert float(passages[0] @ minilm.encode([text])[0]) > 0.999
    alone = minilm.encode([titled("Paris", text[s:e]) for s, e in spans])
    assert len(pooled[0]) == 3
    for vector, own in zip(pooled[0], alone, strict=True):
        assert vector is not None
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
        assert float(vector @ own) > 0.8
    # Each sentence is closest to its own standalone vector.
    similarity = np.stack(pooled[0]) @ alone.T
    assert list(similarity.argmax(axis=1)) == [0, 1, 2]


def test_a_sentence_cut_off_by_the_length_limit_is_left_to_the_caller(minilm: Any) -> None:
    long = " ".join(["The river bends here near the old stone bridge."] * 80) + " Last one."
    text, head, spans = _spans("River", long)
    _, pooled = minilm.encode_passages([text], [head], [spans])
    assert pooled[0][0] is not None
    assert pooled[0][-1] is None


def test_snapshot_sentences_come_from_the_passage_pass(minilm: Any, tmp_path: Any) -> None:
    from retrieval import snapshots
    from retrieval.types import Document

    with snapshots.Builder(tmp_path, "c", 1, minilm) as builder:
        builder.add([Document("d1", "Paris", TEXT)])
        folder = builder.finish()
    snap = snapshots.load(folder)
    assert float(snap.vectors[0] @ minilm.encode([titled("Paris", TEXT)])[0]) > 0.999
    sentences = snap.sentences_of(0)
    assert sentences.shape == (3, minilm.dim)
    alone = minilm.encode([titled("Paris", TEXT[s:e]) for s, e in split_sentences(TEXT)])
    assert list((sentences @ alone.T).argmax(axis=1)) == [0, 1, 2]


def test_passages_are_cut_to_fit_one_pass_with_their_title(minilm: Any, tmp_path: Any) -> None:
    from retrieval import snapshots
    from retrieval.ingest import chunk
    from retrieval.types import Document

    # Rare words cost several word pieces each: 200 words are well over 256 pieces.
    words = ["xylophonic", "quarbitrate", "zentholm", "vexillary", "plumbago", "kryptonian"]
    sentences = [
        f"Sentence {n} says {' '.join(words[(n + k) % 6] for k in range(12))}." for n in range(14)
    ]
    document = Document("d1", "A Glossary of Uncommon Words", " ".join(sentences))
    by_words = chunk(document, 200, 0)[0]
    assert len(minilm._model.tokenizer(titled(document.title, by_words.text))["input_ids"]) > 256

    cut = snapshots.passages_of(document, snapshots.Chunking(), minilm)
    assert len(cut) > 1
    for passage in cut:
        pieces = minilm._model.tokenizer(titled(document.title, passage.text))["input_ids"]
        assert len(pieces) <= 256
    with snapshots.Builder(tmp_path, "c", 1, minilm) as builder:
        builder.add([document])
        folder = builder.finish()
    snap = snapshots.load(folder)
    assert [snap.passage(i).text for i in range(len(cut))] == [p.text for p in cut]
    # Every sentence vector comes from its passage's pass, and matches the sentence read alone.
    for row, passage in enumerate(cut):
        found = snap.sentences_of(row)
        alone = minilm.encode(
            [titled(document.title, passage.text[s:e]) for s, e in passage.sentences]
        )
        assert len(found) == len(passage.sentences)
        assert np.all(np.sum(found * alone, axis=1) > 0.6)  # similar gibberish: context bleeds


def test_a_sentence_no_passage_can_hold_is_read_alone(minilm: Any, tmp_path: Any) -> None:
    from retrieval import snapshots
    from retrieval.types import Document

    # Without spaces there is nowhere to cut: one "word" of 400 word pieces.
    text = "Tokyo is a big city. Its name is written " + "東京都" * 140 + "."
    with snapshots.Builder(tmp_path, "c", 1, minilm) as builder:
        builder.add([Document("d1", "Tokyo", text)])
        folder = builder.finish()
    snap = snapshots.load(folder)
    rows = [snap.passage(i) for i in range(snap.manifest.rows)]
    (row,) = [i for i, p in enumerate(rows) if "東京都東京都" in p.text]
    spans = rows[row].sentences
    found = snap.sentences_of(row)
    assert len(found) == len(spans) == 1
    assert np.allclose(np.linalg.norm(found, axis=1), 1.0, atol=1e-5)
    alone = minilm.encode([titled("Tokyo", rows[row].text)])[0]
    assert float(found[0] @ alone) > 0.999


def test_a_local_model_is_named_by_its_folder_and_its_weights(tmp_path: Path) -> None:
    def folder(where: str, weights: bytes) -> Path:
        path = tmp_path / where / "model"
        path.mkdir(parents=True)
        (path / "model.safetensors").write_bytes(weights)
        (path / "config.json").write_text("{}")
        return path

    same, twin, other = folder("a", b"w" * 3000), folder("b", b"w" * 3000), folder("c", b"x")
    assert model_name(same) == model_name(twin)
    assert model_name(same) != model_name(other)
    assert model_name(same).startswith("model@")


def test_the_packaged_model_keeps_its_name_when_named_by_path(minilm: Any) -> None:
    assert minilm.name == "all-MiniLM-L6-v2"
    assert MiniLMEmbedder(default_model_path()).name == "all-MiniLM-L6-v2"


def test_the_memo_gives_a_claims_word_pieces_from_its_first_pass(minilm: Any) -> None:
    calls: list[tuple[str, int]] = []

    class Counting:
        name, dim = minilm.name, minilm.dim

        def encode(self, texts: Sequence[str]) -> np.ndarray:
            calls.append(("encode", len(texts)))
            return minilm.encode(texts)  # type: ignore[no-any-return]

        def encode_tokens(self, texts: Sequence[str]) -> list[TokenVectors]:
            calls.append(("encode_tokens", len(texts)))
            return minilm.encode_tokens(texts)  # type: ignore[no-any-return]

    memo = MemoEmbedder(Counting(), capacity=8, token_capacity=2)
    claims = ["Lists are mutable.", "Tuples are immutable.", "Sets are unordered."]
    vectors = memo.encode(claims)
    np.testing.assert_allclose(vectors, minilm.encode(claims), atol=1e-6)
    assert calls == [("encode_tokens", 3)]
    # the last two claims' word pieces are kept; the first has to be read again
    pieces = memo.encode_tokens(claims)
    assert calls[-1] == ("encode_tokens", 1)
    assert [p.pieces for p in pieces] == [p.pieces for p in minilm.encode_tokens(claims)]
    np.testing.assert_array_equal(memo.encode(claims), vectors)
    assert len(calls) == 2
    memo.clear()
    memo.encode(claims[:1])
    assert calls[-1] == ("encode_tokens", 1)


def test_onnx_runtime_gives_torch_vectors(minilm: Any) -> None:
    in_torch = MiniLMEmbedder(runtime="torch")
    assert minilm.runtime == "onnx" and in_torch.runtime == "torch"
    texts = ["Paris: " + TEXT, "  The Seine.  ", "x", " ".join([TEXT] * 40)]
    np.testing.assert_allclose(minilm.encode(texts), in_torch.encode(texts), atol=1e-5)
    for a, b in zip(minilm.encode_tokens(texts), in_torch.encode_tokens(texts), strict=True):
        assert a.pieces == b.pieces
        np.testing.assert_allclose(a.vectors, b.vectors, atol=1e-5)
        np.testing.assert_allclose(a.sentence, b.sentence, atol=1e-5)
    text, head, spans = _spans("Paris", TEXT)
    (p1, s1), (p2, s2) = (e.encode_passages([text], [head], [spans]) for e in (minilm, in_torch))
    np.testing.assert_allclose(p1, p2, atol=1e-5)
    np.testing.assert_allclose(np.stack(s1[0]), np.stack(s2[0]), atol=1e-5)
