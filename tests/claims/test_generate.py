"""Self-supervised pairs: every label made, each kind of change really changes the sentence."""

from __future__ import annotations

from collections import Counter

import pytest

from claims.generate import Generator
from claims.types import Passage, Span
from tests.factories import FakeEmbedder, documents

EXTRA = [
    ("berlin", "Berlin", "Berlin is the capital of Germany. It had 3,500,000 inhabitants in 2020."),
    (
        "nile",
        "Nile",
        "The Nile is the longest river in Africa. It flows north into the Mediterranean Sea.",
    ),
    (
        "moon",
        "Apollo 11",
        "Apollo 11 was the first crewed mission to land on the Moon in 1969. "
        "Neil Armstrong was its commander.",
    ),
    (
        "everest",
        "Mount Everest",
        "Mount Everest is the highest mountain on Earth. "
        "It was first climbed in 1953 by Edmund Hillary and Tenzing Norgay.",
    ),
]


def passages() -> list[Passage]:
    docs = [(d.id, d.title, d.text) for d in documents()] + EXTRA
    return [Passage(f"{i}@0", i, title, text, Span(0, len(text))) for i, title, text in docs]


def test_pairs_cover_all_labels_and_keep_their_source(nlp) -> None:
    corpus = passages()
    pairs = Generator(FakeEmbedder(), nlp, seed=3).pairs(corpus, n=200, context=2)
    labels = Counter(p.label for p in pairs)
    assert set(labels) == {"SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO"}
    texts = {p.passage_id: p.text for p in corpus}
    for pair in pairs:
        assert pair.claim.endswith(".") and len(pair.evidence) == 3
        assert len({p.passage_id for p in pair.evidence}) == 3
        source = pair.evidence[0]
        if pair.kind == "copy":
            assert (
                pair.claim.rstrip(".") in source.text
                or pair.claim.split()[0] == source.title.split()[0]
            )
        if pair.label == "REFUTED":
            # A refutation is never a sentence of its own passage.
            assert pair.claim.rstrip(".") not in texts[source.passage_id]
        if pair.kind == "other_document":
            assert not any(pair.claim.rstrip(".") in p.text for p in pair.evidence[:1])
    kinds = Counter(p.kind for p in pairs if p.label == "REFUTED")
    assert kinds["negation"] <= sum(kinds.values()) / 2  # negation must not dominate
    # Same seed, same pairs.
    again = Generator(FakeEmbedder(), nlp, seed=3).pairs(corpus, n=200, context=2)
    assert [(p.claim, p.label) for p in again] == [(p.claim, p.label) for p in pairs]


def test_pronouns_are_replaced_by_the_title(nlp) -> None:
    pairs = Generator(FakeEmbedder(), nlp).pairs(passages(), n=200)
    assert pairs  # not true of nothing
    assert not any(p.claim.startswith(("It ", "She ")) for p in pairs)


def test_too_little_text_is_refused(nlp) -> None:
    with pytest.raises(ValueError, match="two documents"):
        Generator(FakeEmbedder(), nlp).pairs(passages()[:1], n=10)
