"""Atomic, decontextualised claims with exact spans (real spaCy)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claims.errors import EmptyTextError, TextTooLongError
from claims.extraction import ParseExtractor, looks_english

PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def extractor(nlp):
    return ParseExtractor(nlp, max_chars=20_000)


def checked(extraction):
    return [c.text for c in extraction.claims if c.checkworthy]


def test_the_issue_example_gives_four_standalone_claims(extractor) -> None:
    text = (
        "Marie Curie won two Nobel Prizes, in physics and chemistry, "
        "and she was born in Warsaw in 1867."
    )
    result = extractor.extract(text)
    assert checked(result) == [
        # Each is one of the two: "won two Nobel Prizes, in physics" would be false.
        "Marie Curie won a Nobel Prize, in physics.",
        "Marie Curie won a Nobel Prize, in chemistry.",
        "Marie Curie was born in Warsaw.",
        "Marie Curie was born in 1867.",
    ]
    born = result.claims[2]
    # "she" is where the claim comes from, though the claim names her.
    assert [s.slice(text) for s in born.spans] == ["she was born in Warsaw"]
    assert result.made_by == "parse/6" and result.notices == ()


def test_a_claim_joins_non_contiguous_pieces(extractor) -> None:
    text = "Curie, who was born in Warsaw, moved to Paris."
    claims = extractor.extract(text).claims
    moved = next(c for c in claims if c.text == "Curie moved to Paris.")
    assert [s.slice(text) for s in moved.spans] == ["Curie", "moved to Paris"]
    assert "Curie was born in Warsaw." in [c.text for c in claims]


def test_the_prompt_supplies_the_antecedent(extractor) -> None:
    result = extractor.extract("She was born in Warsaw.", prompt="Tell me about Marie Curie")
    assert checked(result) == ["Marie Curie was born in Warsaw."]


def test_descriptions_and_possessives_are_replaced(extractor) -> None:
    result = extractor.extract(
        "Microsoft was founded in 1975. The company is based in Redmond. "
        "Its first product was a BASIC interpreter."
    )
    assert checked(result) == [
        "Microsoft was founded in 1975.",
        "Microsoft is based in Redmond.",
        "Microsoft's first product was a BASIC interpreter.",
    ]


def test_collective_and_or_lists_stay_whole(extractor) -> None:
    for text in (
        "The war was fought between England and France.",
        "Pierre and Marie Curie shared the prize with Henri Becquerel.",
        "You can pay with cash or card.",
    ):
        assert checked(extractor.extract(text)) == [text]


def test_code_is_kept_whole_and_keeps_its_case(extractor) -> None:
    # The parser reads "pow(base, exp)" as "pow(base" with "exp" in apposition, and drops
    # "(x//y, x%y)" as an aside: either way the claim lost what it says.
    text = (
        "pow(base, exp) with two arguments is equivalent to base**exp. "
        "divmod(x, y) returns the tuple (x//y, x%y). "
        "str.isdigit() returns True if all characters are digits."
    )
    assert checked(extractor.extract(text)) == [
        "pow(base, exp) with two arguments is equivalent to base**exp.",
        "divmod(x, y) returns the tuple (x//y, x%y).",
        "str.isdigit() returns True if all characters are digits.",
    ]
    # Prose brackets are still asides.
    assert checked(extractor.extract("Curie won the prize (a great honour) in 1903.")) == [
        "Curie won the prize in 1903."
    ]


def test_a_counted_coordination_splits_into_one_each(extractor) -> None:
    # "Two prizes (in 1903 and 1911)" is when the claim happened, not a claim without a
    # verb; split by year, each claim is about one prize, and "both" goes with the pair.
    text = (
        "Marie Curie won two Nobel prizes (in 1903 and 1911). "
        "She won prizes in 1903 and 1911. Lyon and Paris are both big cities."
    )
    result = extractor.extract(text)
    assert checked(result) == [
        "Marie Curie won a Nobel prize (in 1903).",
        "Marie Curie won a Nobel prize (in 1911).",
        "Marie Curie won prizes in 1903.",
        "Marie Curie won prizes in 1911.",
        "Lyon is a big city.",
        "Paris is a big city.",
    ]
    # A span that opens a bracket closes it.
    assert [s.slice(text) for s in result.claims[0].spans] == [
        "Marie Curie won two Nobel prizes (in 1903"
    ]


def test_lists_the_parser_misreads_are_split_member_by_member(extractor) -> None:
    # The parser reads "Peru" as Argentina's appositive and "Oxygen" as a modifier of
    # "are" beside the subject "hydrogen"; a plural member keeps its plural verb.
    text = (
        "Brazil borders Argentina, Peru, and Colombia. "
        "Oxygen, hydrogen and helium are elements. "
        "Lists, tuples, and dictionaries are containers."
    )
    assert checked(extractor.extract(text)) == [
        "Brazil borders Argentina.",
        "Brazil borders Peru.",
        "Brazil borders Colombia.",
        "Oxygen is an element.",
        "Hydrogen is an element.",
        "Helium is an element.",
        "Lists are containers.",
        "Tuples are containers.",
        "Dictionaries are containers.",
    ]


def test_a_root_with_a_subject_is_a_verb_whatever_its_tag(extractor) -> None:
    # The small model tags "sank" here as a noun; its time and place still split.
    assert checked(extractor.extract("The Titanic sank in 1912 in the North Atlantic.")) == [
        "The Titanic sank in 1912.",
        "The Titanic sank in the North Atlantic.",
    ]


def test_a_contrast_with_while_or_whereas_gives_two_claims(extractor) -> None:
    # Verified whole, "tuples are immutable, while lists are mutable" is matched against
    # one of the two sentences and the other half reads as a contradiction.
    text = (
        "Tuples are immutable, while lists are mutable. Paris is big, whereas Lyon is "
        "small. While lists are mutable, tuples are not."
    )
    assert checked(extractor.extract(text)) == [
        "Tuples are immutable.",
        "Lists are mutable.",
        "Paris is big.",
        "Lyon is small.",
        # "Tuples are not." would say nothing alone.
        "While lists are mutable, tuples are not.",
    ]


def test_a_pronoun_without_a_clear_antecedent_is_left_as_it_is(extractor) -> None:
    # The parser misreads the first sentence: its only subject is "obj", inside a
    # condition; "it" is not obj. Nor is an unnamed "museum" the last noun phrase.
    text = (
        "The isinstance(obj, classinfo) function returns True if obj is an instance of "
        "classinfo. It also accepts a tuple of types. Curie won three medals. "
        "The museum has two floors."
    )
    assert checked(extractor.extract(text)) == [
        "The isinstance(obj, classinfo) function returns True if obj is an instance of classinfo.",
        "It also accepts a tuple of types.",
        "Curie won three medals.",
        "The museum has two floors.",
    ]


def test_sentences_survive_abbreviations_decimals_and_quotes(extractor) -> None:
    text = (
        "Dr. Smith moved to the U.S. in Jan. 2020. He paid $3.5 million. "
        'He said, "It was worth it."'
    )
    assert checked(extractor.extract(text)) == [
        "Dr. Smith moved to the U.S.",
        "Dr. Smith moved in Jan. 2020.",
        "Dr. Smith paid $3.5 million.",
        'Dr. Smith said, "It was worth it."',
    ]


def test_markdown_is_kept_out_of_claims_and_spans(extractor) -> None:
    text = (
        "# Marie Curie\n\n"
        "- **She** was born in *Warsaw*.\n"
        "1. Polonium was named after [Poland](https://en.wikipedia.org/wiki/Poland).\n\n"
        "```python\nprint('hello')\n```\n"
        "| Element | Symbol |\n|---|---|\n| Radium | Ra |\n\n"
        "Sure, I hope this helps!"
    )
    claims = extractor.extract(text).claims
    by_text = {c.text: c for c in claims}
    assert by_text["Marie Curie"].reason == "heading"
    assert by_text["Marie Curie was born in Warsaw."].checkworthy
    assert by_text["Polonium was named after Poland."].checkworthy
    assert by_text["Radium, Symbol: Ra."].checkworthy
    assert [s.slice(text) for s in by_text["Radium, Symbol: Ra."].spans] == ["Radium", "Ra"]
    code = next(c for c in claims if c.reason == "code")
    assert "print('hello')" in code.text and not code.checkworthy
    assert next(c for c in claims if c.reason == "table_header")
    assert by_text["Sure, I hope this helps!"].reason == "filler"
    for claim in claims:
        assert all("*" not in s.slice(text)[:1] for s in claim.spans)
        assert "https" not in claim.text


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("Is Paris the capital of France?", "question"),
        ("Hello there!", "filler"),
        ("I think the album is wonderful.", "opinion"),
        ("The painting is beautiful.", "value_judgement"),
        ("The launch might slip to next year.", "hedged"),
        ("Perhaps the ruins are older.", "hedged"),
        ("Click the button to continue.", "instruction"),
        ("Paris is the capital of France.", None),
    ],
)
def test_checkworthiness(extractor, sentence: str, reason: str | None) -> None:
    (claim,) = extractor.extract(sentence).claims
    assert claim.reason == reason
    assert claim.checkworthy is (reason is None)


def test_other_languages_give_sentences_and_a_warning(extractor) -> None:
    text = (
        "La tour Eiffel a été construite en 1889 pour l'Exposition universelle de Paris. "
        "Elle mesure environ trois cents mètres de haut et attire des millions de visiteurs."
    )
    result = extractor.extract(text)
    assert [n.code for n in result.notices] == ["language"]
    assert len(result.claims) == 2
    assert not looks_english(text) and looks_english("Paris is the capital of France.")
    assert not looks_english("東京は日本の首都であり、世界で最も人口の多い都市圏の一つです。")


def test_a_long_response_is_handled(extractor) -> None:
    paragraph = (
        "Marie Curie, a Polish physicist, was born in Warsaw in 1867. "
        "She won Nobel Prizes in physics and chemistry. "
        "Her daughter Irène also won a Nobel Prize.\n\n"
    )
    text = (paragraph * (20_000 // len(paragraph)))[:20_000]
    claims = extractor.extract(text).claims
    assert len(claims) > 400
    assert all(0 <= s.start < s.end <= len(text) for c in claims for s in c.spans)


def test_empty_and_too_long_text_are_domain_errors(extractor) -> None:
    with pytest.raises(EmptyTextError):
        extractor.extract(" \n\t")
    with pytest.raises(TextTooLongError):
        extractor.extract("a" * 20_001)


@PROPERTY
@given(st.text(min_size=1, max_size=400))
def test_any_unicode_gives_spans_inside_the_text_and_the_same_claims_twice(
    extractor, text: str
) -> None:
    if not text.strip():
        return
    claims = extractor.extract(text).claims
    for claim in claims:
        assert claim.spans and claim.text
        for span in claim.spans:
            assert 0 <= span.start < span.end <= len(text)
        assert " ".join(s.slice(text) for s in claim.spans) == claim.source_text
    assert extractor.extract(text).claims == claims  # deterministic


sentence = st.sampled_from(
    [
        "Paris is the capital of France.",
        "The tower was completed in 1889 in Paris.",
        "Marie Curie, a physicist, won two Nobel Prizes.",
        "Water boils at 100 degrees Celsius and freezes at 0 degrees.",
        "Curie, who was born in Warsaw, moved to Paris.",
        "It has three bridges, two parks and a museum.",
    ]
)
markup = st.sampled_from([" ", "\n", "\n\n", "\n- ", "\n1. ", "\n> ", " **"])


@PROPERTY
@given(st.lists(st.tuples(sentence, markup), min_size=1, max_size=6))
def test_every_checkable_sentence_is_covered_by_a_claim(extractor, pieces) -> None:
    text = "".join(f"{joiner}{piece}" for piece, joiner in pieces).strip(" *")
    claims = extractor.extract(text).claims
    spans = [s for c in claims if c.checkworthy for s in c.spans]
    position = 0
    for piece, _ in pieces:
        start = text.index(piece, position)
        position = start + len(piece)
        assert any(start <= s.start and s.end <= position for s in spans), (piece, claims)


def test_an_emoji_is_not_part_of_the_claim(extractor) -> None:
    """Found by the Label Studio test: "🗼 Python lists are immutable" was checked with the
    emoji in its text, and its verdict changed."""
    text = "🗼 Python lists are immutable. Tuples 👍🏽 are immutable. 🎉"
    claims = extractor.extract(text).claims
    assert [c.text for c in claims[:2]] == ["Python lists are immutable.", "Tuples are immutable."]
    assert [c.source_text for c in claims[:2]] == [
        "Python lists are immutable",
        "Tuples are immutable",
    ]
    assert claims[0].spans[0].start == text.index("Python")
    assert not claims[-1].checkworthy  # a lone emoji is no statement


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(
    st.lists(
        st.one_of(sentence, st.text(min_size=1, max_size=300)),
        min_size=60,
        max_size=200,
    ),
    markup,
)
def test_texts_up_to_the_limit_give_ordered_spans_inside_the_text(
    extractor, pieces: list[str], joiner: str
) -> None:
    text = joiner.join(pieces)[:20_000]
    if not text.strip():
        return
    for claim in extractor.extract(text).claims:
        ends = [(s.start, s.end) for s in claim.spans]
        assert ends == sorted(ends), claim
        assert all(0 <= a < b <= len(text) for a, b in ends), claim
        # and no two pieces overlap
        assert all(b1 <= a2 for (_, b1), (a2, _) in zip(ends, ends[1:], strict=False)), claim
