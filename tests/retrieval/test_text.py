from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from retrieval.text import split_sentences


def test_split_sentences_keeps_abbreviations_and_headings_apart() -> None:
    text = (
        'The "for" statement\n*******************\n\nDr. Smith went to the U.S. in 1990. He left.'
    )
    assert [text[s:e] for s, e in split_sentences(text)] == [
        'The "for" statement',
        "Dr. Smith went to the U.S. in 1990.",
        "He left.",
    ]


@given(st.text(max_size=300))
def test_sentence_spans_are_ordered_trimmed_and_inside(text: str) -> None:
    previous_end = 0
    for start, end in split_sentences(text):
        assert previous_end <= start < end <= len(text)
        piece = text[start:end]
        assert piece == piece.strip() and piece
        previous_end = end
