"""The nli backend with a tiny NLI model this test builds and saves itself (nothing downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from claims.nli import NLIModelError, NLIVerifier, parse_label_order
from claims.types import Claim, Label, Passage, Span

WORDS = "the tower was completed in 1889 1920 paris is capital of france eiffel".split()


def tiny_model(folder: Path, num_labels: int = 3) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    vocab = folder / "vocab.txt"
    folder.mkdir(parents=True, exist_ok=True)
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ":", ".", *WORDS]))
    tokenizer = BertTokenizer(str(vocab))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=128,
        num_labels=num_labels,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


PASSAGES = [
    Passage(
        "p1",
        "eiffel",
        "Eiffel Tower",
        "The tower was completed in 1889. It is in Paris.",
        Span(0, 48),
    ),
    Passage("p2", "paris", "Paris", "Paris is the capital of France.", Span(0, 31)),
]


def test_a_local_model_gives_a_verdict_per_claim(tmp_path: Path) -> None:
    verifier = NLIVerifier(
        tiny_model(tmp_path / "nli"), parse_label_order("contradiction,entailment,neutral")
    )
    claims = [
        Claim("The tower was completed in 1920.", "x", (Span(0, 1),)),
        Claim("Paris is the capital of France.", "y", (Span(0, 1),)),
    ]
    verdicts = verifier.verify(claims, [PASSAGES, PASSAGES[1:]])
    assert len(verdicts) == 2
    for verdict in verdicts:
        assert set(verdict.scores) == set(Label)
        assert sum(verdict.scores.values()) == pytest.approx(1.0)
        assert verdict.confidence == max(verdict.scores.values())
        assert verdict.reasons[0].passage_id in {"p1", "p2"}
        assert verdict.evidence  # one judgement per passage
    # Three sentences for the first claim, one passage each in the judgements.
    assert {j.passage.passage_id for j in verdicts[0].evidence} == {"p1", "p2"}
    assert verifier.verify([claims[0]], [[]])[0].reasons[0].code == "no_evidence"


def test_label_order_decides_which_column_is_entailment(tmp_path: Path) -> None:
    path = tiny_model(tmp_path / "nli")
    claim = [Claim("Paris is the capital of France.", "y", (Span(0, 1),))]
    one = NLIVerifier(path, ("entailment", "contradiction", "neutral")).verify(
        claim, [PASSAGES[1:]]
    )[0]
    other = NLIVerifier(path, ("contradiction", "entailment", "neutral")).verify(
        claim, [PASSAGES[1:]]
    )[0]
    assert one.scores[Label.SUPPORTED] == pytest.approx(other.scores[Label.REFUTED])


def test_bad_label_orders_and_missing_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="once each"):
        parse_label_order("entailment,neutral")
    with pytest.raises(NLIModelError, match="local paths only"):
        NLIVerifier(Path("cross-encoder/nli-deberta-v3-small"))
    with pytest.raises(NLIModelError, match="2 outputs"):
        NLIVerifier(tiny_model(tmp_path / "two", num_labels=2))
