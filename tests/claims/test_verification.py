"""The similarity-rules verifier: with a fake encoder for the rules, with MiniLM for real."""

from __future__ import annotations

import pytest

from claims.aggregation import is_flagged, summarise
from claims.types import Claim, ClaimResult, Label, Passage, Span, Verdict
from claims.verification import SimilarityRulesVerifier
from tests.factories import FakeEmbedder

TOWER = Passage(
    "t@0",
    "t",
    "Eiffel Tower",
    "The Eiffel Tower is a lattice tower in Paris, France. "
    "It was completed in 1889 and is 330 metres tall.",
    Span(0, 103),
)
CURIE = Passage("c@0", "c", "Marie Curie", "Marie Curie was born in Warsaw in 1867.", Span(0, 38))


def claim(text: str) -> Claim:
    return Claim(text, text, (Span(0, len(text)),))


@pytest.fixture(scope="module")
def verifier(nlp):
    return SimilarityRulesVerifier(FakeEmbedder(), nlp)


def test_supported_refuted_and_no_evidence(verifier) -> None:
    claims = [
        claim("Marie Curie was born in Warsaw in 1867."),
        claim("Marie Curie was born in Warsaw in 1876."),
        claim("Marie Curie was born in Warsaw."),
    ]
    supported, refuted, no_evidence = verifier.verify(claims, [[CURIE], [CURIE], []])
    assert supported.label is Label.SUPPORTED
    assert refuted.label is Label.REFUTED
    reason = refuted.reasons[0]
    assert reason.code == "date_mismatch"
    assert reason.claim_span.slice(claims[1].text) == "1876"
    assert reason.evidence_span.slice(CURIE.text) == "1867"
    assert no_evidence.label is Label.NOT_ENOUGH_INFO
    assert no_evidence.reasons[0].code == "no_evidence"
    for verdict in (supported, refuted, no_evidence):
        assert abs(sum(verdict.scores.values()) - 1) < 1e-9
        assert verdict.confidence == verdict.scores[verdict.label]


def test_number_entity_and_negation_rules(verifier) -> None:
    cases = {
        "The Eiffel Tower is 300 metres tall and was completed in 1889.": "number_mismatch",
        "Marie Curie was born in Warsaw in 1867 in Berlin.": None,
        "Marie Curie was not born in Warsaw in 1867.": "negation",
    }
    texts = list(cases)
    verdicts = verifier.verify([claim(t) for t in texts], [[TOWER], [CURIE], [CURIE]])
    codes = [[r.code for r in v.reasons] for v in verdicts]
    assert "number_mismatch" in codes[0]
    assert "negation" in codes[2]
    assert verdicts[0].label is Label.REFUTED and verdicts[2].label is Label.REFUTED


def test_unrelated_evidence_is_not_enough_info(verifier) -> None:
    (verdict,) = verifier.verify([claim("Bananas are rich in potassium.")], [[TOWER, CURIE]])
    assert verdict.label is Label.NOT_ENOUGH_INFO
    assert verdict.reasons[-1].code == "unsupported_content"
    assert len(verdict.evidence) == 2
    assert verdict.evidence[0].similarity >= verdict.evidence[1].similarity


def test_mismatched_lengths_are_a_programming_error(verifier) -> None:
    with pytest.raises(ValueError):
        verifier.verify([claim("x")], [])


@pytest.mark.models
def test_with_minilm(minilm, nlp) -> None:
    verifier = SimilarityRulesVerifier(minilm, nlp)
    claims = [
        claim("The Eiffel Tower was finished in 1889."),
        claim("The Eiffel Tower was finished in 1925."),
        claim("Bananas are an excellent source of potassium."),
    ]
    verdicts = verifier.verify(claims, [[TOWER, CURIE]] * 3)
    assert [v.label for v in verdicts] == [Label.SUPPORTED, Label.REFUTED, Label.NOT_ENOUGH_INFO]
    assert verdicts[1].reasons[0].code == "date_mismatch"


def test_summary_and_flags() -> None:
    def result(label: Label | None, confidence: float = 0.9) -> ClaimResult:
        v = Verdict(label, confidence, {label: confidence}, (), ()) if label else None
        c = Claim("x", "x", (Span(0, 1),), checkworthy=label is not None)
        return ClaimResult(c, v, is_flagged(v, 0.6))

    results = [
        result(Label.SUPPORTED),
        result(Label.SUPPORTED, 0.5),
        result(Label.REFUTED),
        result(None),
    ]
    summary = summarise(results)
    assert summary.claims == 4 and summary.checkworthy == 3 and summary.not_checkworthy == 1
    assert summary.counts[Label.SUPPORTED] == 2 and summary.counts[Label.REFUTED] == 1
    assert summary.flagged == 2
    assert summary.factuality == pytest.approx(2 / 3)
    assert summarise([result(None)]).factuality is None


def test_precomputed_sentence_vectors_are_used_instead_of_encoding(nlp) -> None:
    encoder = FakeEmbedder()
    spans = (Span(0, 38),)
    vectors = encoder.encode([f"{CURIE.title}: {CURIE.text}"])
    ready = Passage(
        CURIE.passage_id,
        CURIE.document_id,
        CURIE.title,
        CURIE.text,
        CURIE.doc_span,
        sentences=spans,
        sentence_vectors=vectors,
    )
    encoder.texts = 0
    verifier = SimilarityRulesVerifier(encoder, nlp)
    (from_index,) = verifier.verify([claim("Marie Curie was born in Warsaw in 1867.")], [[ready]])
    assert encoder.texts == 1  # the claim only
    (computed,) = verifier.verify([claim("Marie Curie was born in Warsaw in 1867.")], [[CURIE]])
    assert encoder.texts == 1 + 2
    assert from_index.scores == pytest.approx(computed.scores)


class _AlwaysSupported:
    """A head that has learned only to say SUPPORTED."""

    version = "fake/1"

    def scores(self, x):
        return [{"SUPPORTED": 0.9, "REFUTED": 0.05, "NOT_ENOUGH_INFO": 0.05} for _ in x]


LISTS = Passage(
    "l@0",
    "topic:lists",
    "Lists",
    "Lists are mutable sequences, typically used to store collections of items.",
    Span(0, 75),
)


def test_a_strong_typed_contradiction_is_not_outvoted_by_the_heads(nlp, tmp_path) -> None:
    import json

    from claims.features import FeatureExtractor
    from claims.verification import FeaturesVerifier, load_gate

    extractor = FeatureExtractor(FakeEmbedder(), nlp)
    claims = [claim("Python lists are immutable."), claim("Python lists are mutable.")]
    flipped, kept = FeaturesVerifier(extractor, _AlwaysSupported()).verify(
        claims, [[LISTS], [LISTS]]
    )
    assert flipped.label is Label.REFUTED and kept.label is Label.SUPPORTED
    reason = flipped.reasons[0]
    assert reason.code == "antonym" and reason.claim_text == "immutable"
    assert reason.evidence_span.slice(LISTS.text) == "mutable"
    assert flipped.confidence == pytest.approx(0.75)  # no gate.json: the default
    assert sum(flipped.scores.values()) == pytest.approx(1.0)

    # gate.json: a kind's measured precision is the confidence; an unreliable kind
    # does not decide.
    (tmp_path / "gate.json").write_text(
        json.dumps(
            {
                "codes": {
                    "antonym": {"precision": 0.9, "gated": True},
                    "order": {"precision": 0.3, "gated": False},
                }
            }
        )
    )
    gate = load_gate(tmp_path)
    assert gate == {"antonym": 0.9}
    (gated,) = FeaturesVerifier(extractor, _AlwaysSupported(), gate=gate).verify(
        claims[:1], [[LISTS]]
    )
    assert gated.label is Label.REFUTED and gated.confidence == pytest.approx(0.9)
    (ungated,) = FeaturesVerifier(extractor, _AlwaysSupported(), gate={"order": 0.9}).verify(
        claims[:1], [[LISTS]]
    )
    assert ungated.label is Label.SUPPORTED
    assert load_gate(tmp_path / "missing") is None
