from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from claims.text import split_sentences


def test_split_sentences_keeps_abbreviations_and_headings_apart() -> None:
    text = 'The "for" statement\n*******************\n\nDr. Smith went to the U.S. in 1990. He left.'
    assert [s.slice(text) for s in split_sentences(text)] == [
        'The "for" statement',
        "Dr. Smith went to the U.S. in 1990.",
        "He left.",
    ]


@given(st.text(max_size=300))
def test_sentence_spans_are_ordered_trimmed_and_inside(text: str) -> None:
    spans = split_sentences(text)
    end = 0
    for span in spans:
        assert end <= span.start < span.end <= len(text)
        piece = span.slice(text)
        assert piece == piece.strip() and piece
        end = span.end
