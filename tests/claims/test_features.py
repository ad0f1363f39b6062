"""Alignment features and typed findings; the learned verifier on the real models."""

from __future__ import annotations

import pytest

from claims.features import FEATURES, FeatureExtractor, mentions, same_value
from claims.types import Claim, Label, Passage, Span
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


def test_numbers_dates_scales_and_rounding() -> None:
    found = {
        (m.kind, m.span.slice("In 1969, 3.2 million people paid 45%."))
        for m in mentions("In 1969, 3.2 million people paid 45%.")
    }
    assert found == {("date", "1969"), ("number", "3.2 million"), ("number", "45%")}
    (claim,) = mentions("about 3.2 million")
    (exact,) = mentions("3,213,000")
    (other,) = mentions("3,400,000")
    assert same_value(claim, exact) and not same_value(claim, other)
    (year,) = mentions("1969")
    (later,) = mentions("1970")
    assert not same_value(year, later) and same_value(year, year)
    (march,) = mentions("in March")
    assert march.kind == "date" and march.value == "march"


@pytest.fixture(scope="module")
def extractor(nlp) -> FeatureExtractor:
    return FeatureExtractor(FakeEmbedder(), nlp)


def value(found, name: str) -> float:
    return float(found.vector[FEATURES.index(name)])


def test_typed_findings_carry_spans_on_both_sides(extractor) -> None:
    texts = [
        "Marie Curie was born in Warsaw in 1876.",
        "Marie Curie was born in Warsaw in 1867.",
        "Marie Curie was not born in Warsaw.",
        "The Eiffel Tower is 300 metres tall.",
    ]
    date, same, negated, number = extractor.extract(texts, [[CURIE], [CURIE], [CURIE], [TOWER]])
    assert len(date.vector) == len(FEATURES)
    assert value(date, "date_mismatch") == 1 and value(same, "date_match") == 1
    reason = next(r for r in date.findings if r.code == "date_mismatch")
    assert reason.claim_span.slice(texts[0]) == "1876"
    assert reason.evidence_span.slice(CURIE.text) == "1867" and reason.passage_id == "c@0"
    assert value(same, "lex_cov_all") == 1.0 and value(same, "n_uncovered") == 0
    assert value(negated, "neg_xor") == 1 and negated.findings[-1].code == "negation"
    assert value(number, "number_mismatch") == 1
    found = next(r for r in number.findings if r.code == "number_mismatch")
    assert found.evidence_span.slice(TOWER.text) == "330 metres"[:3]


def test_a_sentence_stating_the_claim_outweighs_findings_of_others(extractor) -> None:
    strip = Passage(
        "s@0",
        "s",
        "String methods",
        "str.rstrip() returns a copy of the string with trailing characters removed. "
        "str.lstrip() returns a copy of the string with leading characters removed.",
        Span(0, 151),
    )
    claim = "str.lstrip() returns a copy of the string with leading characters removed."
    (stated,) = extractor.extract([claim], [[strip]])
    assert value(stated, "ct_supports") == 1 and value(stated, "ct_order") == 0
    # Without the sentence that states it, the other one's "trailing" counts.
    alone = Passage("r@0", "r", "String methods", strip.text[:75], Span(0, 75))
    (contradicted,) = extractor.extract([claim], [[alone]])
    assert value(contradicted, "ct_order") > 0


def test_uncovered_words_and_no_evidence(extractor) -> None:
    text = "Marie Curie was born in Warsaw and studied chemistry in Lyon."
    covered, nothing = extractor.extract([text, text], [[CURIE], []])
    missing = {r.claim_text for r in covered.uncovered}
    assert {"chemistry", "Lyon"} <= missing
    for r in covered.uncovered:
        assert r.claim_span.slice(text) == r.claim_text
    assert nothing.sentences == [] and value(nothing, "cos_max") == 0.0
    assert value(nothing, "n_uncovered") == value(nothing, "n_claim_content") > 0


@pytest.mark.models
@pytest.mark.parametrize("with_cross", [False, True], ids=["features", "features+cross"])
def test_the_shipped_head_on_the_real_models(nlp, minilm, with_cross) -> None:
    from claims import cross
    from claims import head as heads
    from claims.verification import FeaturesVerifier
    from service.components import default_head_path

    mate = cross.load(default_head_path()) if with_cross else None
    assert (mate is not None) == with_cross  # the shipped head comes with its cross head
    verifier = FeaturesVerifier(
        FeatureExtractor(minilm, nlp), heads.load(default_head_path(), FEATURES), mate
    )
    claims = [
        Claim(t, t, (Span(0, len(t)),))
        for t in (
            "Marie Curie was born in Warsaw in 1867.",
            "Marie Curie was born in Warsaw in 1901.",
            "Marie Curie won an Olympic medal in rowing.",
        )
    ]
    tower = Claim("The Eiffel Tower was completed in 1901.", "x", (Span(0, 1),))
    supported, wrong_year, unknown, refuted = verifier.verify(
        [*claims, tower], [[CURIE], [CURIE], [CURIE], [TOWER]]
    )
    assert supported.label is Label.SUPPORTED and supported.reasons[0].code == "aligned"
    assert refuted.label is Label.REFUTED
    reason = refuted.reasons[0]
    assert reason.code == "date_mismatch" and reason.claim_text == "1901"
    assert reason.evidence_span.slice(TOWER.text) == "1889"
    assert refuted.evidence[0].stance.value == "refutes"
    # One sentence of evidence with another year: the head is not sure it is the same
    # event (it may say NOT_ENOUGH_INFO), but never SUPPORTED, and the mismatch is shown.
    assert wrong_year.label is not Label.SUPPORTED
    assert "date_mismatch" in [r.code for r in wrong_year.reasons]
    assert unknown.label is Label.NOT_ENOUGH_INFO
    assert "unsupported_content" in [r.code for r in unknown.reasons]
    for verdict in (supported, wrong_year, unknown, refuted):
        assert sum(verdict.scores.values()) == pytest.approx(1.0)
        assert verdict.confidence == verdict.scores[verdict.label]


def test_evidence_sentences_are_encoded_and_parsed_once(nlp) -> None:
    class Counting(FakeEmbedder):
        def __init__(self) -> None:
            super().__init__()
            self.asked: list[str] = []

        def encode_tokens(self, texts):
            self.asked += texts
            return super().encode_tokens(texts)

    encoder = Counting()
    extractor = FeatureExtractor(encoder, nlp, evidence_memo=16)
    first = extractor.extract(["Marie Curie was born in Warsaw in 1876."], [[CURIE]])
    assert "Marie Curie: Marie Curie was born in Warsaw in 1867." in encoder.asked
    encoder.asked.clear()
    # Another claim on the same passage: only the claim is encoded, and what the
    # remembered sentence brings is what it brought the first time.
    again = extractor.extract(["Marie Curie was born in Warsaw in 1876 ."], [[CURIE]])
    assert encoder.asked == ["Marie Curie was born in Warsaw in 1876 ."]
    assert list(again[0].vector) == list(first[0].vector)
    assert [r.code for r in again[0].findings] == [r.code for r in first[0].findings]
    extractor.forget()
    encoder.asked.clear()
    extractor.extract(["Marie Curie was born in Warsaw in 1876."], [[CURIE]])
    assert "Marie Curie: Marie Curie was born in Warsaw in 1867." in encoder.asked


def test_claims_prepared_ahead_are_parsed_once(nlp) -> None:
    calls: list[list[str]] = []

    class Counting:
        def __init__(self, inner) -> None:
            self.inner = inner

        def pipe(self, texts, **kwargs):
            calls.append(list(texts))
            return self.inner.pipe(texts, **kwargs)

    extractor = FeatureExtractor(FakeEmbedder(), Counting(nlp))  # type: ignore[arg-type]
    claim = "Marie Curie was born in Warsaw in 1876."
    extractor.prepare([claim, claim])
    found = extractor.extract([claim], [[CURIE]])
    assert calls[0] == [claim] and all(claim not in texts for texts in calls[1:])
    assert "date_mismatch" in [r.code for r in found[0].findings]
