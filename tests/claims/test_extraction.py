"""Sentence claims with exact spans (real spaCy)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claims.errors import EmptyTextError, TextTooLongError
from claims.extraction import SentenceExtractor


@pytest.fixture(scope="module")
def extractor(nlp):
    return SentenceExtractor(nlp, max_chars=5_000)


def texts(claims, text):
    return ["".join(s.slice(text) for s in c.spans) for c in claims]


def test_sentences_survive_abbreviations_and_decimals(extractor) -> None:
    text = "Dr. Smith moved to the U.S. in Jan. 2020. He paid $3.5 million for a house."
    claims = extractor.extract(text)
    assert [c.text for c in claims] == [
        "Dr. Smith moved to the U.S. in Jan. 2020.",
        "He paid $3.5 million for a house.",
    ]
    assert texts(claims, text) == [c.source_text for c in claims]


def test_markdown_is_stripped_from_spans_and_code_is_not_checked(extractor) -> None:
    text = (
        "# Marie Curie\n\n"
        "- She was born in Warsaw.\n"
        "- She won two Nobel Prizes.\n"
        "1. Polonium was named after Poland.\n\n"
        "```python\nprint('hello')\n```\n"
        "Sure, I hope this helps!"
    )
    claims = extractor.extract(text)
    by_text = {c.text: c for c in claims}
    assert by_text["Marie Curie"].reason == "heading"
    assert by_text["She was born in Warsaw."].checkworthy
    assert by_text["She won two Nobel Prizes."].checkworthy
    assert by_text["Polonium was named after Poland."].checkworthy
    code = next(c for c in claims if c.reason == "code")
    assert "print('hello')" in code.text and not code.checkworthy
    assert by_text["Sure, I hope this helps!"].reason == "filler"
    for claim in claims:
        assert "".join(s.slice(text) for s in claim.spans) == claim.source_text


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("Is Paris the capital of France?", "question"),
        ("Hello there!", "filler"),
        ("I think the album is wonderful.", "opinion"),
        ("Click the button to continue.", "instruction"),
        ("Paris is the capital of France.", None),
    ],
)
def test_checkworthiness(extractor, sentence: str, reason: str | None) -> None:
    (claim,) = extractor.extract(sentence)
    assert claim.reason == reason
    assert claim.checkworthy is (reason is None)


def test_empty_and_too_long_text_are_domain_errors(extractor) -> None:
    with pytest.raises(EmptyTextError):
        extractor.extract(" \n\t")
    with pytest.raises(TextTooLongError):
        extractor.extract("a" * 5_001)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(min_size=1, max_size=400))
def test_spans_slice_the_text_for_any_unicode(extractor, text: str) -> None:
    if not text.strip():
        return
    claims = extractor.extract(text)
    for claim in claims:
        assert claim.spans
        for span in claim.spans:
            assert 0 <= span.start < span.end <= len(text)
        assert "".join(s.slice(text) for s in claim.spans) == claim.source_text
    assert extractor.extract(text) == claims  # deterministic


sentence = st.sampled_from(
    [
        "Paris is the capital of France.",
        "The tower was completed in 1889.",
        "Marie Curie won two Nobel Prizes.",
        "Water boils at 100 degrees Celsius.",
    ]
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(sentence, min_size=1, max_size=6), st.sampled_from([" ", "\n", "\n\n", "\n- "]))
def test_every_checkable_sentence_is_covered(extractor, sentences, joiner) -> None:
    text = joiner.join(sentences)
    claims = extractor.extract(text)
    covered = [s for c in claims if c.checkworthy for s in c.spans]
    position = 0
    for piece in sentences:
        start = text.index(piece, position)
        position = start + len(piece)
        assert any(s.start <= start and position <= s.end for s in covered), (piece, claims)
