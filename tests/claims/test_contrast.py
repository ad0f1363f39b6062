"""Typed contradictions between a claim and one evidence sentence, on the real spaCy model."""

from __future__ import annotations

import pytest

from claims.contrast import CODES, Comparer, antonyms, matching, opposite, words

LISTS = "Lists are mutable sequences, typically used to store collections of homogeneous items."


@pytest.fixture(scope="module")
def compare(nlp):
    comparer = Comparer()

    def run(claim: str, evidence: str, title: str | None = None):
        return comparer.compare(nlp(claim), nlp(evidence), nlp(title) if title else None)

    return run


@pytest.mark.parametrize(
    ("claim", "evidence", "code", "in_claim", "in_evidence"),
    [
        ("Python lists are immutable.", LISTS, "antonym", "immutable", "mutable"),
        (
            "Tuples are mutable.",
            "Tuples are immutable, while lists are mutable.",
            "antonym",
            "mutable",
            "immutable",
        ),
        (
            "The break statement exits the outermost enclosing loop.",
            "The break statement breaks out of the innermost enclosing for or while loop.",
            "order",
            "outermost",
            "innermost",
        ),
        (
            "All dictionaries are ordered by key.",
            "Some dictionaries are ordered by key.",
            "quantifier",
            "All",
            "Some",
        ),
        # changed in place against a new one made, and a new one against the same kept
        (
            "If the argument of tuple() is a tuple, a new copy of it is returned.",
            "If the argument of tuple() is already a tuple, it is returned unchanged.",
            "antonym",
            "new copy",
            "unchanged",
        ),
        (
            "Each call gets a fresh copy of a mutable default value.",
            "A mutable default value is shared by all calls of the function.",
            "antonym",
            "fresh copy",
            "shared",
        ),
        (
            "sorted() sorts the given list in place.",
            "sorted() returns a new list containing all items from the iterable.",
            "antonym",
            "in place",
            "new",
        ),
        (
            "The reverse() method returns a reversed copy of the sequence.",
            "The reverse() method modifies the sequence in place.",
            "antonym",
            "copy",
            "in",
        ),
        # "some" follows from "all", but not inside a condition
        (
            "The method returns True if some of the characters in the string are digits.",
            "The method returns True if all characters in the string are digits.",
            "quantifier",
            "some",
            "all",
        ),
        (
            "The finally clause does not run when an exception is raised.",
            "The finally clause runs when an exception is raised.",
            "negation",
            "not",
            None,
        ),
        ("bool is a subclass of int.", "int is a subclass of bool.", "role_swap", "bool", None),
        # a passive read against an active verb the small model tags as a noun
        (
            "SpongeBob voices Tom Kenny.",
            "SpongeBob is voiced by Tom Kenny.",
            "role_swap",
            "SpongeBob",
            None,
        ),
        # the same code, its parts in another order
        (
            "divmod(x, y) returns the tuple (x%y, x//y).",
            "divmod(x, y) returns the tuple (x//y, x%y).",
            "role_swap",
            "(x%y, x//y)",
            "(x//y, x%y)",
        ),
        # a short parenthesis qualifies its clause
        (
            "The | operator yields the bitwise exclusive OR of its arguments.",
            "The | operator yields the bitwise (inclusive) OR of its arguments.",
            "antonym",
            "exclusive",
            "inclusive",
        ),
        # a quoted keyword ("except") does not cut the clause
        (
            "An expression-less except clause must be the first except clause.",
            'An expression-less "except" clause, if present, must be last.',
            "order",
            "first",
            "last",
        ),
        # the small model tags "sixty" as an adjective
        (
            "The diaries were a series of six volumes.",
            "The diaries were a series of sixty volumes.",
            "number_mismatch",
            "six",
            "sixty",
        ),
        (
            "The default recursion limit is 100.",
            "The default recursion limit is 1000.",
            "number_mismatch",
            "100",
            "1000",
        ),
        (
            "Marie Curie won three Nobel Prizes.",
            "Marie Curie won two Nobel Prizes.",
            "number_mismatch",
            "three",
            "two",
        ),
        (
            "Marie Curie was born in 1876.",
            "Marie Curie was born in Warsaw in 1867.",
            "date_mismatch",
            "1876",
            "1867",
        ),
        (
            "Marie Curie was born in Paris.",
            "Marie Curie was born in Warsaw in 1867.",
            "entity_mismatch",
            "Paris",
            "Warsaw",
        ),
        (
            "The if statement may execute several of its suites.",
            "The if statement selects exactly one of the suites.",
            "quantifier",
            "several",
            "one",
        ),
        (
            # "any" in a condition is "some"
            "all() returns True if any element of the iterable is true.",
            "all: Return True if bool(x) is True for all values x in the iterable.",
            "quantifier",
            "any",
            "all",
        ),
        (
            # "pow:" names what the rest of the sentence defines: one clause, not two.
            "pow(base, exp) with two arguments is equivalent to exp**base.",
            "pow: Equivalent to base**exp with 2 arguments or base**exp % mod with 3 arguments",
            "role_swap",
            "exp**base",
            "base**exp",
        ),
        (
            # Sennacherib is named twice, both times on the same side of "son of".
            "Sennacherib was a son of Esarhaddon.",
            "Esarhaddon was the youngest son of Sennacherib and Naqi'a, Sennacherib's second wife.",
            "role_swap",
            "Sennacherib",
            None,
        ),
        (
            # The tagger reads this "to" as a particle; it still places the name.
            "print() writes to sys.stderr by default.",
            "Prints the values to a stream, or to sys.stdout by default.",
            "entity_mismatch",
            "sys.stderr",
            "sys.stdout",
        ),
    ],
)
def test_each_kind_of_contradiction_is_found_strong_with_both_spans(
    compare, claim, evidence, code, in_claim, in_evidence
) -> None:
    found = compare(claim, evidence)
    assert found.subject and not found.supports
    first = found.findings[0]
    assert first.code == code and first.strong, found.findings
    assert first.claim is not None and first.claim.slice(claim) == in_claim
    assert first.evidence is not None
    if in_evidence is not None:
        assert first.evidence.slice(evidence) == in_evidence


@pytest.mark.parametrize(
    ("claim", "evidence"),
    [
        ("Python lists are mutable.", LISTS),
        ("Marie Curie was born in Warsaw.", "Marie Curie was born in Warsaw in 1867."),
        # an antonym counted as a negation: "not mutable" agrees with "immutable"
        ("Tuples are not mutable.", "Tuples are immutable."),
        ("Tom Kenny voices SpongeBob.", "SpongeBob is voiced by Tom Kenny."),
        ("divmod(x, y) returns (x//y, x%y).", "divmod(x, y) returns the tuple (x//y, x%y)."),
        ("x + y equals y + x.", "x + y equals y + x."),
        ("Some dictionaries are ordered by key.", "All dictionaries are ordered by key."),
        ("The if statement runs exactly one suite.", "The if statement selects only one suite."),
        ("any() returns True if any element is true.", "Return True if any element is true."),
        ("Any sequence can be iterated with a for loop.", "All sequences can be iterated."),
        (
            "The break statement exits the innermost enclosing loop.",
            "The break statement breaks out of the innermost enclosing for or while loop.",
        ),
    ],
)
def test_agreeing_sentences_have_no_finding(compare, claim, evidence) -> None:
    assert compare(claim, evidence).findings == []


def test_a_clause_split_by_a_long_aside_is_read_whole(compare) -> None:
    # The clause around the aside ends the sentence: nothing after it to look at.
    found = compare("Loops stop early.", "Loops (which run over the items) stop")
    assert found.subject and not found.strong


def test_code_names_are_matched_whole_not_by_stem(compare) -> None:
    # list.sort() and sorted() are two functions: what one does says nothing of the other.
    found = compare("list.sort() sorts the list in place.", "sorted() returns a new sorted list.")
    assert not any(f.strong for f in found.findings)


def test_a_sentence_about_another_subject_gives_no_strong_finding(compare) -> None:
    # The sentence speaks of sets, not of lists: whatever differs does not refute.
    found = compare("Python lists are immutable.", "A frozenset is immutable and hashable.")
    assert not found.subject
    assert found.strong == []


def test_the_title_stands_for_the_subject_a_sentence_leaves_out(compare) -> None:
    found = compare("Python lists are immutable.", "They are mutable sequences.", "Lists")
    assert found.subject and found.strong and found.strong[0].code == "antonym"


def test_a_description_the_claim_does_not_use_stands_for_the_title(compare) -> None:
    # "The couple" is Sonny & Cher: they sang for Spector, not he for them.
    sentence = "The couple started their career as backing singers for producer Phil Spector."
    swapped = compare(
        "Phil Spector was a backing singer for Sonny & Cher.", sentence, "Sonny & Cher"
    )
    assert [f.code for f in swapped.strong] == ["role_swap"]
    same = compare("Sonny & Cher were backing singers for Phil Spector.", sentence, "Sonny & Cher")
    assert same.findings == []


def test_matching_picks_the_sentence_about_the_subject_then_the_best_aligned(compare) -> None:
    off = compare("Python lists are immutable.", "A frozenset is immutable and hashable.")
    on = compare("Python lists are immutable.", LISTS)
    assert matching([off, on]) == 1
    assert matching([on, on]) == 0  # ties go to the most similar sentence


def test_the_lexicon_is_wordnet_both_ways_plus_negating_prefixes(nlp) -> None:
    table = antonyms()
    assert len(table) > 3000
    assert "cold" in table["hot"] and "hot" in table["cold"]
    a, b = words(nlp("mutable")) + words(nlp("immutable"))
    assert opposite(a, b) and opposite(b, a)
    same = words(nlp("mutable"))[0]
    assert not opposite(same, same)
    assert set(CODES) >= {"antonym", "order", "quantifier", "negation", "role_swap"}
