"""Decontextualisation: pronouns and definite descriptions replaced by what they name.

Mentions (named entities, and proper-noun phrases the tagger did not label)
are gathered from the prompt, the response's headings and its sentences, in
order. A pronoun or a bare description such as "the company" is replaced by
the latest earlier mention of a compatible kind, unless the claim already
names it. Without a compatible mention the word is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from claims.decomposition import Draft

if TYPE_CHECKING:
    from spacy.tokens import Doc, Token

_PERSON = frozenset({"PERSON"})
_THING = frozenset(
    {"ORG", "GPE", "LOC", "FAC", "PRODUCT", "WORK_OF_ART", "EVENT", "LAW", "LANGUAGE", ""}
)
_GROUP = frozenset({"ORG", "NORP", ""})
_PRONOUNS: dict[str, tuple[frozenset[str], bool]] = {
    # word: (kinds of mention it can stand for, possessive)
    "he": (_PERSON, False),
    "she": (_PERSON, False),
    "him": (_PERSON, False),
    "her": (_PERSON, False),  # PRP$ "her" is told apart by its tag
    "his": (_PERSON, True),
    "it": (_THING, False),
    "its": (_THING, True),
    "they": (_GROUP, False),
    "them": (_GROUP, False),
    "their": (_GROUP, True),
}
_WORKS = frozenset({"WORK_OF_ART", "PRODUCT", "ORG", "EVENT", ""})
_DESCRIPTIONS: dict[str, frozenset[str]] = {
    **dict.fromkeys(
        "company firm corporation organization organisation band group team university "
        "party agency club label".split(),
        frozenset({"ORG", ""}),
    ),
    **dict.fromkeys(
        "album film movie book novel song single series show game play painting poem "
        "opera symphony".split(),
        _WORKS,
    ),
    **dict.fromkeys("city country town state nation capital village".split(), frozenset({"GPE"})),
    **dict.fromkeys(
        "river mountain lake island region continent".split(), frozenset({"LOC", "GPE"})
    ),
    **dict.fromkeys(
        "building tower bridge museum cathedral palace".split(), frozenset({"FAC", "ORG", ""})
    ),
    **dict.fromkeys(
        "scientist physicist chemist author writer singer actor actress player president "
        "artist composer director poet politician inventor painter musician".split(),
        _PERSON,
    ),
}


@dataclass(frozen=True)
class Mention:
    """A noun phrase that names something, placed by global character positions.

    ``sentence`` is where its sentence starts; ``subject`` whether it is that
    sentence's subject (subjects are what later pronouns most often mean).
    """

    end: float
    sentence: float
    text: str
    label: str
    subject: bool
    proper: bool


_NOT_NAMES = frozenset("DATE TIME CARDINAL ORDINAL QUANTITY MONEY PERCENT".split())
_VAGUE = frozenset("a an some many several any each every no this that these those such".split())


def mentions(doc: Doc, where: Callable[[int], float]) -> list[Mention]:
    """Noun phrases of ``doc`` that can be antecedents.

    Args:
        doc: A parsed text.
        where: Turns a character offset of ``doc`` into a global position.
    """
    found: list[Mention] = []
    for chunk in doc.noun_chunks:
        root = chunk.root
        if root.pos_ == "PRON" or root.tag_ in {"WP", "WDT", "PRP"}:
            continue
        if chunk[0].lower_ in _VAGUE or root.ent_type_ in _NOT_NAMES:
            continue
        found.append(
            Mention(
                where(chunk.end_char),
                where(chunk.sent.start_char),
                chunk.text,
                root.ent_type_,
                _main_subject(root),
                root.pos_ == "PROPN" and root.text[:1].isupper(),
            )
        )
    return found


def _antecedent(memory: list[Mention], before: float, kinds: frozenset[str]) -> Mention | None:
    """The latest sentence with a compatible mention before ``before``: its subject, else
    its last name. A sentence with neither ("if obj is an instance of classinfo") gives
    None: a word left as it is beats a claim about the wrong thing."""
    candidates = [m for m in memory if m.end <= before and m.label in kinds]
    if not candidates:
        return None
    latest = max(m.sentence for m in candidates)
    in_sentence = [m for m in candidates if m.sentence == latest]
    subjects = [m for m in in_sentence if m.subject]
    names = [m for m in in_sentence if m.label or m.proper]
    return subjects[0] if subjects else names[-1] if names else None


def _main_subject(token: Token) -> bool:
    """The subject of the sentence's main clause (or of a clause joined to it by "and")."""
    if token.dep_ not in {"nsubj", "nsubjpass"}:
        return False
    verb = token.head
    while verb.dep_ == "conj":
        verb = verb.head
    return verb.dep_ == "ROOT"


def _person(memory: list[Mention], before: float) -> Mention | None:
    """A person: a PERSON entity, else a proper name of two or more words the tagger mislabelled."""
    found = _antecedent(memory, before, _PERSON)
    if found is not None:
        return found
    names = [m for m in memory if m.proper and len(m.text.split()) >= 2 and m.label in {"", "ORG"}]
    return _antecedent(names, before, frozenset({"", "ORG"}))


def _remember(
    memory: list[Mention], subject: Token, named: Mention, where: Callable[[int], float]
) -> None:
    """A resolved subject passes its antecedent on: "It connects ... It opened ..."."""
    end = where(subject.idx + len(subject.text))
    memory[:] = [m for m in memory if m.end != end]
    sentence = where(subject.sent.start_char)
    memory.append(Mention(end, sentence, named.text, named.label, True, named.proper))
    memory.sort(key=lambda m: m.end)


_QUOTES = frozenset('"“”')


def _quoted(doc: Doc) -> set[int]:
    inside, open_quote = set(), False
    for token in doc:
        if token.text in _QUOTES or token.text in {"``", "''"}:
            open_quote = not open_quote
        elif open_quote:
            inside.add(token.i)
    return inside


def _expletive(token: Token) -> bool:
    """ "It" that names nothing: "it is known that ...", "it rains"."""
    if token.dep_ == "expl":
        return True
    head = token.head
    return any(c.dep_ in {"ccomp", "xcomp", "csubj"} for c in head.children) and any(
        c.dep_ in {"acomp", "attr"} for c in head.children
    )


def _in_claim(text: str, draft: Draft, doc: Doc) -> bool:
    words = " ".join(doc[i].text for i in sorted(draft.tokens)).lower()
    return text.lower() in words


def resolve(draft: Draft, doc: Doc, memory: list[Mention], where: Callable[[int], float]) -> None:
    """Replace pronouns and bare descriptions in ``draft`` (a claim from ``doc``) in place.

    Args:
        draft: The claim.
        doc: The parsed block the claim comes from.
        memory: Every mention, in order of position (the prompt's first).
        where: Global position of a character offset of ``doc``.
    """
    first = min(draft.tokens) if draft.tokens else 0
    quoted = _quoted(doc)
    for i in sorted(draft.tokens):
        token = doc[i]
        if i in quoted:  # quoted words are someone's own; "it" there is theirs
            continue
        mention = _referent(token, memory, where(token.idx))
        if mention is None:
            continue
        if token.dep_ in {"nsubj", "nsubjpass"}:
            _remember(memory, token, mention, where)
        if _in_claim(mention.text, draft, doc):
            continue
        if token.lower_ in _PRONOUNS:
            text = mention.text
            if i != first and text.startswith("The "):
                text = "the " + text[4:]
            possessive = _PRONOUNS[token.lower_][1] or token.tag_ == "PRP$"
            draft.replace[i] = f"{text}'s" if possessive else text
        else:
            the = next(iter(token.children))
            if the.i in draft.tokens:
                draft.replace[the.i] = ""
            draft.replace[i] = mention.text


def _referent(token: Token, memory: list[Mention], at: float) -> Mention | None:
    """What a pronoun or a bare description ("the company") stands for, if it is one."""
    word = token.lower_
    if word in _PRONOUNS and token.tag_ in {"PRP", "PRP$"}:
        if word == "it" and _expletive(token):
            return None
        kinds = _PRONOUNS[word][0]
        return _person(memory, at) if kinds is _PERSON else _antecedent(memory, at, kinds)
    lemma = token.lemma_.lower()
    if (
        lemma in _DESCRIPTIONS
        and token.tag_ == "NN"
        and [c.lower_ for c in token.children] == ["the"]
    ):
        # "the museum" stands for a name, not for any earlier noun phrase.
        named = [m for m in memory if m.label or m.proper]
        return _antecedent(named, at, _DESCRIPTIONS[lemma])
    return None
