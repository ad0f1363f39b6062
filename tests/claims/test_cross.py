"""The cross-encoder head: trained on the real MiniLM, stored as small arrays, mixed in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from claims import cross

EVIDENCE = "Paris: Paris is the capital and largest city of France."
PAIRS = [
    cross.Pair("Paris is the capital of France.", EVIDENCE, "SUPPORTED"),
    cross.Pair("Paris is the capital of Spain.", EVIDENCE, "REFUTED"),
    cross.Pair("Paris has a famous zoo.", EVIDENCE, "NOT_ENOUGH_INFO"),
]


@pytest.mark.models
def test_training_learns_saves_small_and_loads_the_same(tmp_path: Path) -> None:
    head = cross.train(PAIRS * 8, epochs=4, batch_size=6, lr=3e-3, card={"version": "t1"})
    scores = head.scores(PAIRS)
    assert scores.shape == (3, 3)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0)
    # A few steps on three pairs: the right label gains (chance is 1/3).
    right = [scores[k, cross.CLASSES.index(p.label)] for k, p in enumerate(PAIRS)]
    assert np.mean(right) > 0.5, scores
    head.save(tmp_path / "h")
    assert (tmp_path / "h" / "cross.npz").stat().st_size < 3e6
    with np.load(tmp_path / "h" / "cross.npz", allow_pickle=False) as arrays:
        assert {a.dtype for k, a in arrays.items() if k.startswith("encoder.")} == {
            np.dtype(np.float16)
        }
    loaded = cross.load(tmp_path / "h")
    assert loaded is not None and loaded.version == "t1"
    np.testing.assert_allclose(loaded.scores(PAIRS), scores, atol=0.02)
    assert cross.load(tmp_path / "none") is None
    # Training can continue from a head: with a zero learning rate nothing moves from it,
    # while a fresh start (random adapters and classifier) is another head altogether.
    kept = cross.train(PAIRS, epochs=1, batch_size=3, lr=0.0, init=head)
    for name, array in head.arrays.items():
        np.testing.assert_array_equal(kept.arrays[name], array, err_msg=name)
    assert kept.card["continued_from"]["version"] == "t1"
    fresh = cross.train(PAIRS, epochs=1, batch_size=3, lr=0.0, seed=1)
    assert not np.allclose(fresh.arrays["classifier.weight"], head.arrays["classifier.weight"])


@pytest.mark.models
def test_a_head_reads_as_many_word_pieces_as_it_was_trained_on(tmp_path: Path) -> None:
    short = cross.train(PAIRS, epochs=1, batch_size=3, lr=0.0, max_length=16)
    short.save(tmp_path / "h")
    loaded = cross.load(tmp_path / "h")
    assert loaded is not None and loaded.card["max_length"] == 16
    # Evidence past the 16th word piece is cut, so it cannot move a score.
    tail = " Paris also hosts the Louvre, the most visited museum in the world."
    longer = [cross.Pair(p.claim, p.evidence + tail, p.label) for p in PAIRS]
    np.testing.assert_allclose(loaded.scores(longer), loaded.scores(PAIRS), atol=1e-6)
    full = cross.CrossHead(short.arrays, {**short.card, "max_length": cross.MAX_LENGTH})
    assert not np.allclose(full.scores(longer), full.scores(PAIRS), atol=1e-6)


@pytest.mark.models
def test_folding_the_adapters_in_changes_no_score() -> None:
    shipped = Path(cross.__file__).parent / "heads" / "default"
    merged = cross.load(shipped)
    assert merged is not None
    unmerged = cross.CrossHead(merged.arrays, merged.card, merge=False)
    np.testing.assert_allclose(merged.scores(PAIRS), unmerged.scores(PAIRS), atol=1e-5)


@pytest.mark.models
def test_onnx_runtime_gives_torch_scores() -> None:
    shipped = Path(cross.__file__).parent / "heads" / "default"
    in_onnx, in_torch = cross.load(shipped), cross.load(shipped, runtime="torch")
    assert in_onnx is not None and in_torch is not None
    assert in_onnx._onnx is not None and in_torch._onnx is None
    many = [cross.Pair(p.claim, (p.evidence + " ") * k) for k in (1, 9) for p in PAIRS]
    np.testing.assert_allclose(in_onnx.scores(many), in_torch.scores(many), atol=1e-5)


@pytest.mark.models
def test_a_head_can_train_the_transformer_blocks_themselves(tmp_path: Path) -> None:
    head = cross.train(PAIRS * 8, epochs=4, batch_size=6, lr=3e-4, tune="layers", device="cpu")
    assert head.card["tuned"] == "layers"
    right = [head.scores(PAIRS)[k, cross.CLASSES.index(p.label)] for k, p in enumerate(PAIRS)]
    assert np.mean(right) > 0.5
    # Every block is stored, the word-piece embeddings (the packaged ones) are not.
    stored = {k for k in head.arrays if k.startswith("encoder.")}
    assert {k.split(".")[3] for k in stored if ".layer." in k} == {str(i) for i in range(6)}
    assert not any("embeddings" in k for k in stored)
    head.save(tmp_path / "h")
    loaded = cross.load(tmp_path / "h")
    assert loaded is not None
    np.testing.assert_allclose(loaded.scores(PAIRS), head.scores(PAIRS), atol=0.02)
    with pytest.raises(ValueError, match="tuned as layers"):
        cross.train(PAIRS, epochs=1, init=head)


@pytest.mark.models
def test_a_two_way_label_is_learned_as_its_classes_together() -> None:
    # "Not supported" only says the pair is not SUPPORTED: trained on it, SUPPORTED loses,
    # while REFUTED and NOT_ENOUGH_INFO share what it gives up.
    partial = cross.Pair("Paris is the capital of Spain.", EVIDENCE, "NOT_SUPPORTED")
    true = PAIRS[0]
    head = cross.train([partial, true] * 8, epochs=4, batch_size=4, lr=3e-3)
    no, yes = head.scores([partial, true])
    supported = cross.CLASSES.index("SUPPORTED")
    assert no[supported] < 0.3 and yes[supported] > 0.5, (no, yes)


def test_bad_labels_and_formats_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="labels must be among"):
        cross.train([cross.Pair("a", "b", "HALLUCINATED")])
    (tmp_path / "cross.npz").write_bytes(b"")
    (tmp_path / "cross.json").write_text('{"format": "cross/0"}')
    with pytest.raises(ValueError, match="format"):
        cross.load(tmp_path)


def test_combine_is_a_normalised_log_linear_mix() -> None:
    head = [{"SUPPORTED": 0.7, "REFUTED": 0.2, "NOT_ENOUGH_INFO": 0.1}]
    other = np.array([[0.6, 0.2, 0.2]])  # CLASSES order: NEI, REFUTED, SUPPORTED
    assert cross.combine(head, other, 0.0)[0] == pytest.approx(head[0])
    assert cross.combine(head, other, 1.0)[0] == pytest.approx(
        {"NOT_ENOUGH_INFO": 0.6, "REFUTED": 0.2, "SUPPORTED": 0.2}
    )
    half = cross.combine(head, other, 0.5)[0]
    assert sum(half.values()) == pytest.approx(1.0)
    assert half["SUPPORTED"] == pytest.approx(
        np.sqrt(0.7 * 0.2) / (np.sqrt(0.7 * 0.2) + np.sqrt(0.2 * 0.2) + np.sqrt(0.1 * 0.6))
    )


def test_the_mix_is_fitted_to_the_better_head_and_its_confidence() -> None:
    rng = np.random.default_rng(0)
    labels = [cross.CLASSES[i] for i in rng.integers(0, 3, size=300)]
    # The feature head is right but timid; the cross head is noise.
    head = [{c: (0.5 if c == y else 0.25) for c in cross.CLASSES} for y in labels]
    noise = rng.dirichlet([1, 1, 1], size=300)
    fitted = cross.fit_mix(head, noise, labels)
    assert fitted["weight"] == 0.0
    assert fitted["temperature"] < 1.0  # sharpened: the right label gets more than 0.5
    mixed = cross.combine(head, noise, fitted["weight"], fitted["temperature"])
    assert all(m[y] > 0.5 for m, y in zip(mixed, labels, strict=True))


def _probs(weight: np.ndarray, bias: np.ndarray, x: np.ndarray) -> np.ndarray:
    logits = x @ weight.T + bias
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def test_adapt_moves_the_classifier_toward_new_labels_as_far_as_the_rows_justify() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16))
    target = np.repeat([0, 1, 2], 40)
    x = (centres[target] + 0.5 * rng.normal(size=(120, 16))).astype(np.float32)
    # The base classifier knows classes 0 and 1 but calls class 2 "1".
    w0 = np.stack([centres[0], centres[1] + centres[2], np.zeros(16)])
    b0 = np.zeros(3)
    labels = [cross.CLASSES[t] for t in target]
    before = (_probs(w0, b0, x).argmax(axis=1) == target).mean()

    weight, bias, strength = cross.adapt(w0, b0, x, labels)
    assert strength in cross.STRENGTHS
    after = (_probs(weight, bias, x).argmax(axis=1) == target).mean()
    assert before < 0.75 and after > 0.95
    # Held hard, it barely moves; held loosely, it moves further.
    still, _, _ = cross.adapt(w0, b0, x, labels, strength=1e4)
    loose, _, _ = cross.adapt(w0, b0, x, labels, strength=1e-3)
    assert np.abs(still - w0).max() < 0.01
    assert np.linalg.norm(loose - w0) > np.linalg.norm(weight - w0) * 0.99
    # Too few rows to cross-validate: the strongest hold.
    assert cross.adapt(w0, b0, x[:6], labels[:6])[2] == cross.STRENGTHS[-1]
    with pytest.raises(ValueError, match="labels must be among"):
        cross.adapt(w0, b0, x[:2], ["SUPPORTED", "HALLUCINATED"])
    with pytest.raises(ValueError, match="no rows"):
        cross.adapt(w0, b0, x[:0], [])


@pytest.mark.models
def test_an_int8_head_stays_close_to_the_full_one() -> None:
    shipped = Path(cross.__file__).parent / "heads" / "default"
    full, int8 = cross.load(shipped), cross.load(shipped, int8=True)
    assert full is not None and int8 is not None and int8._onnx is not None
    assert int8._onnx.path.name.endswith("-int8.onnx")
    many = [cross.Pair(p.claim, (p.evidence + " ") * k) for k in (1, 9) for p in PAIRS]
    a, b = full.scores(many), int8.scores(many)
    assert not np.allclose(a, b, atol=1e-5)  # quantised: not the same numbers
    np.testing.assert_allclose(a, b, atol=0.15)


@pytest.mark.models
@pytest.mark.parametrize("int8", [False, True], ids=["float32", "int8"])
def test_a_pairs_scores_do_not_depend_on_what_is_batched_beside_it(int8: bool) -> None:
    shipped = Path(cross.__file__).parent / "heads" / "default"
    head = cross.load(shipped, int8=int8)
    assert head is not None
    many = [cross.Pair(p.claim, (p.evidence + " ") * k) for k in (1, 9) for p in PAIRS]
    together = head.scores(many)
    alone = np.stack([head.scores([pair])[0] for pair in many])
    np.testing.assert_allclose(together, alone, atol=1e-5)
