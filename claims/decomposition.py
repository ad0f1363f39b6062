"""Splitting a parsed sentence into atomic claims on its dependency tree.

A claim is built as a :class:`Draft`: a set of the sentence's tokens, words
shown in place of some of them (a pronoun's antecedent), and a few words put
in (the copula of an appositive). Drafts render in token order, so a claim
such as "Curie moved to Paris" taken from "Curie, who was born in Warsaw,
moved to Paris" keeps exact, non-contiguous spans.

The rules, in the order they apply:

1. Coordinated clauses and predicates split at the verb; a predicate without a
   subject of its own borrows the first clause's subject (and auxiliaries).
2. Parentheticals, appositives and non-restrictive relative clauses (those set
   off by a comma) leave the clause and become claims about the noun they hang
   on: "Apple, a technology company, ..." gives "Apple is a technology company".
3. Coordinated nouns, "X, Y and Z" lists, predicate adjectives and
   prepositional phrases split into one claim per member; "or" lists,
   "between X and Y" and symmetric verbs ("married", "shared") are left whole.
4. When a verb carries two or more prepositional phrases of time, place or
   quantity, each becomes its own claim with the rest of the clause.

Code is never cut: the brackets of a call ("pow(base, exp)") and brackets
holding an expression ("the tuple (x//y, x%y)") stay whole where they stand,
however the parser reads the commas inside them.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spacy.tokens import Span as SpacySpan
    from spacy.tokens import Token

SUBJECTS = frozenset({"nsubj", "nsubjpass", "csubj", "csubjpass", "expl"})
_SYMMETRIC = frozenset(
    "marry meet share combine mix collaborate compare connect link separate differ "
    "agree divide merge unite alternate".split()
)
_CONTRAST = frozenset({"while", "whereas"})
_COMPLEMENTS = frozenset({"acomp", "attr", "dobj", "prep", "xcomp", "ccomp", "oprd", "advmod"})
_RELATIVE = frozenset("who whom which that whose where when".split())
# Phrases of when and where are separate facts; a quantity stays with them (a growth
# of 2.5 percent is a fact about one year, not a fact of its own).
_SEPARABLE = {"DATE": "time", "TIME": "time", "GPE": "place", "LOC": "place", "FAC": "place"}
# "the border of Nepal and China" is one border, not two.
_RELATIONAL = frozenset(
    "border boundary mix mixture combination relationship difference distance marriage "
    "alliance war match treaty partnership collaboration merger".split()
)
MAX_VARIANTS = 16
# Something only code has between two names or numbers: "x//y", "base**exp", "a == b".
_OPERATOR = re.compile(r"[\w)]\s*(?://|\*\*|%|==|!=|<=|>=|<<|>>|->)\s*[\w(]")
# Counts that a coordination spells out one by one ("two prizes, in 1903 and 1911").
_COUNTS = {
    w: n for n, w in enumerate("zero one two three four five six seven eight nine ten".split())
}
_LIFESPAN = re.compile(r"^(?:c\. ?)?(\d{3,4}) ?[–-] ?(\d{3,4})$")


@dataclass
class Draft:
    """A claim under construction: token indices (into the doc), replacements, insertions.

    ``inserts`` maps a sort key to text: key ``i + 0.5`` sits right after token ``i``.
    """

    tokens: set[int]
    replace: dict[int, str] = field(default_factory=dict)
    inserts: dict[float, str] = field(default_factory=dict)
    kind: str = "clause"
    detached: set[int] = field(default_factory=set)  # appositives/clauses already cut out

    def copy(self, tokens: set[int] | None = None, kind: str | None = None) -> Draft:
        return Draft(
            set(self.tokens if tokens is None else tokens),
            dict(self.replace),
            dict(self.inserts),
            kind or self.kind,
            set(self.detached),
        )


def _code_tokens(sentence: SpacySpan) -> frozenset[int]:
    """Tokens inside code brackets: a call's (a name right before the bracket) or brackets
    around an expression; nested brackets belong to the outermost pair."""
    text, base = sentence.text, sentence.start_char
    groups: list[tuple[int, int]] = []
    opened: list[int] = []
    for k, char in enumerate(text):
        if char == "(":
            opened.append(k)
        elif char == ")" and opened:
            start = opened.pop()
            if opened:
                continue
            call = start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_")
            if call or _OPERATOR.search(text[start : k + 1]):
                groups.append((start, k + 1))
    return frozenset(
        t.i
        for t in sentence
        if any(t.idx - base < end and t.idx - base + len(t) > start for start, end in groups)
    )


def subtree(token: Token) -> set[int]:
    return {t.i for t in token.subtree}


def _union(sets: Iterable[set[int]]) -> set[int]:
    out: set[int] = set()
    for s in sets:
        out |= s
    return out


def decompose(sentence: SpacySpan) -> list[Draft]:
    """Atomic claim drafts of one sentence, in order of appearance (may be one)."""
    _mend_lists(sentence)
    clauses = _clauses(sentence.root, None)
    code = _code_tokens(sentence)
    drafts: list[Draft] = []
    for clause in clauses:
        drafts.extend(_detach(sentence, clause, code))
    out: list[Draft] = []
    for draft in drafts:
        for variant in _coordinations(sentence, draft, code):
            out.extend(_modifiers(sentence, variant))
    return out or [Draft({t.i for t in sentence})]


def _mend_lists(sentence: SpacySpan) -> None:
    """Read two misparsed lists as lists (the parse is changed in place):
    "Argentina, Peru, and Colombia" with Peru as Argentina's appositive, and "Oxygen,
    hydrogen and helium are elements" with the first of them a second subject (or a
    modifier) of the verb."""
    for token in sentence:
        children = list(token.children)
        listed = any(c.dep_ == "cc" for c in children) and any(c.dep_ == "conj" for c in children)
        before = token.doc[token.i - 1] if token.i > sentence.start else None
        if not listed or before is None or before.text != ",":
            continue
        if token.dep_ == "appos":
            token.dep_ = "conj"
        elif token.dep_ in {"nsubj", "nsubjpass"}:
            first = next(
                (
                    c
                    for c in token.head.children
                    if c.dep_ in {token.dep_, "npadvmod", "dep"}
                    and max(t.i for t in c.subtree) == before.i - 1
                    and {c.pos_, token.pos_} <= {"NOUN", "PROPN"}
                ),
                None,
            )
            if first is not None:
                first.dep_, token.head, token.dep_ = token.dep_, first, "conj"
                before.head = first


# 1. clauses -------------------------------------------------------------------------------


def _is_predicate(token: Token) -> bool:
    return token.pos_ in {"VERB", "AUX"} or (token.dep_ == "conj" and token.tag_.startswith("VB"))


def _contrasted(verb: Token) -> list[Token]:
    """Clauses set against the verb's with a subject of their own: "Tuples are immutable,
    while lists are mutable" says two things, each true alone ("tuples are not" is not)."""
    if not _complete(verb):
        return []
    return [
        c
        for c in verb.children
        if c.dep_ == "advcl"
        and _is_predicate(c)
        and _complete(c)
        and any(m.dep_ == "mark" and m.lower_ in _CONTRAST for m in c.children)
        and any(m.dep_ in SUBJECTS for m in c.children)
    ]


def _complete(verb: Token) -> bool:
    """A predicate that says something without the clause beside it ("are mutable", not
    "are not")."""
    return verb.pos_ == "VERB" or any(c.dep_ in _COMPLEMENTS for c in verb.children)


def _clauses(verb: Token, borrowed: set[int] | None) -> list[Draft]:
    conj_verbs = [c for c in verb.children if c.dep_ == "conj" and _is_predicate(c)]
    contrasted = _contrasted(verb)
    tokens = subtree(verb) - _union(subtree(c) for c in [*conj_verbs, *contrasted])
    for conj in [*conj_verbs, *contrasted]:
        left, right = min(subtree(conj)), max(subtree(conj))
        tokens -= {
            c.i
            for c in verb.children
            if c.dep_ in {"cc", "punct"} and (left - 3 <= c.i < left or c.i == right + 1)
        }
    if borrowed:
        tokens |= borrowed
    drafts = [Draft(tokens)]
    for clause in contrasted:
        marks = {m.i for m in clause.children if m.dep_ == "mark"}
        for draft in _clauses(clause, None):
            draft.tokens -= marks
            drafts.append(draft)
    subject = [c for c in verb.children if c.dep_ in SUBJECTS]
    auxiliaries = {c.i for c in verb.children if c.dep_ in {"aux", "neg"}}
    passive = {c.i for c in verb.children if c.dep_ == "auxpass"}
    for conj in conj_verbs:
        lend: set[int] | None = None
        if not any(c.dep_ in SUBJECTS for c in conj.children):
            # The verb's own subject, or the one it borrowed itself ("A did X, Y and Z").
            lend = _union(subtree(s) for s in subject) if subject else set(borrowed or ())
            if not any(c.dep_ in {"aux", "auxpass"} for c in conj.children) and conj.tag_ in {
                "VBN",
                "VBD",  # the tagger's reading of "has built X and opened Y"
                "VBG",
                "VB",
            }:
                lend |= auxiliaries
                if conj.tag_ == "VBN":  # "was born in Warsaw and raised in Paris"
                    lend |= passive
        drafts.extend(_clauses(conj, lend))
    return drafts


# 2. parentheticals, appositives, relative clauses ------------------------------------------


def noun_phrase(head: Token) -> list[Token]:
    """The head noun with its determiners, modifiers and compounds (left side only)."""
    keep = {"det", "compound", "amod", "nummod", "poss", "case", "flat", "nmod", "quantmod"}
    left = [t for t in head.subtree if t.i < head.i and t.head.i <= head.i]
    phrase = [t for t in left if t.dep_ in keep or t.head.dep_ in keep and t.head in left]
    return [*phrase, head]


def _copula(sentence: SpacySpan, head: Token, draft: Draft) -> str:
    plural = head.tag_ in {"NNS", "NNPS"}
    person = head.ent_type_ == "PERSON"
    past = person and any(sentence.doc[i].tag_ == "VBD" for i in draft.tokens)
    return ("were" if plural else "was") if past else ("are" if plural else "is")


def _edges(sentence: SpacySpan, span: set[int], draft: Draft) -> set[int]:
    """Commas or brackets right around ``span`` that go with it when it is cut out."""
    doc = sentence.doc
    first, last = min(span), max(span)
    out = set()
    if first - 1 >= sentence.start and doc[first - 1].is_punct and doc[first - 1].text in ",(–—":
        out.add(first - 1)
    if last + 1 < sentence.end and doc[last + 1].text in ",)–—":
        out.add(last + 1)
    return out & draft.tokens


def _detach(sentence: SpacySpan, draft: Draft, code: frozenset[int]) -> list[Draft]:
    """Cut parentheticals, appositives and non-restrictive relative clauses out of ``draft``
    (nothing inside ``code``)."""
    doc = sentence.doc
    extra: list[Draft] = []
    # Parentheticals.
    for i in sorted(draft.tokens):
        if doc[i].text != "(" or i not in draft.tokens or i in draft.detached or i in code:
            continue
        draft.detached.add(i)
        close = next((j for j in range(i + 1, sentence.end) if doc[j].text == ")"), None)
        if close is None:
            continue
        inside = [doc[j] for j in range(i + 1, close)]
        if inside and inside[0].pos_ == "ADP" and any(c.isdigit() for t in inside for c in t.text):
            # "won two prizes (in 1903 and 1911)": when, where or how much the claim
            # happened, said in brackets, belongs to the claim.
            draft.detached |= set(range(i, close + 1))
            continue
        draft.tokens -= set(range(i, close + 1))
        draft.detached |= set(range(i, close + 1))
        head = doc[i - 1] if i - 1 >= sentence.start else None
        if head is None or not inside:
            continue
        while head.dep_ in {"compound", "flat"} and head.head.i < i:
            head = head.head
        phrase = noun_phrase(head) if head.pos_ in {"NOUN", "PROPN"} else []
        if not phrase:
            continue
        if any(t.pos_ in {"VERB", "AUX"} for t in inside):
            new = Draft({t.i for t in phrase} | {t.i for t in inside}, kind="parenthetical")
            if inside[0].tag_ == "VBN":
                new.inserts[phrase[-1].i + 0.5] = _copula(sentence, head, draft)
            extra.append(new)
        elif _LIFESPAN.match(" ".join(t.text for t in inside)):
            years = _LIFESPAN.match(" ".join(t.text for t in inside))
            assert years is not None
            bracketed = set(range(i, close + 1))
            new = Draft({t.i for t in phrase} | bracketed, kind="parenthetical")
            new.replace = dict.fromkeys(bracketed, "")  # in the spans, said in other words
            new.inserts[phrase[-1].i + 0.5] = f"lived from {years[1]} to {years[2]}"
            extra.append(new)
        elif any(c.isdigit() for t in inside for c in t.text):
            new = Draft({t.i for t in phrase} | set(range(i, close + 1)), kind="parenthetical")
            extra.append(new)
    # Appositives and relative clauses hanging on nouns of the draft.
    for i in sorted(draft.tokens):
        token = doc[i]
        for child in token.children:
            if child.i not in draft.tokens or child.i in draft.detached or child.i in code:
                continue
            draft.detached.add(child.i)
            if child.dep_ == "appos" and _place_in_place(token, child):
                continue  # "Paris, France" names one place
            if child.dep_ == "appos":
                cut = subtree(child) & draft.tokens
                draft.tokens -= cut | _edges(sentence, cut, draft)
                phrase = noun_phrase(token)
                new = Draft({t.i for t in phrase} | cut, kind="appositive")
                new.inserts[phrase[-1].i + 0.5] = _copula(sentence, token, draft)
                extra.append(new)
            elif child.dep_ == "relcl":
                relative = _relative_clause(sentence, token, child, draft)
                if relative is not None:
                    extra.append(relative)
    for new in extra:
        new.detached |= draft.detached
    return [draft, *[d for e in extra for d in _detach(sentence, e, code)]]


def _place_in_place(head: Token, appositive: Token) -> bool:
    places = {"GPE", "LOC", "FAC"}
    return appositive.ent_type_ in places and head.ent_type_ in places | {"ORG"}


def _relative_clause(sentence: SpacySpan, head: Token, clause: Token, draft: Draft) -> Draft | None:
    doc = sentence.doc
    cut = subtree(clause) & draft.tokens
    first = min(cut)
    if first - 1 < sentence.start or doc[first - 1].text != ",":
        return None  # restrictive: "the scientist who discovered radium" names who is meant
    pronoun = next((t for t in clause.subtree if t.lower_ in _RELATIVE and t.i in cut), None)
    if pronoun is None:
        return None
    draft.tokens -= cut | _edges(sentence, cut, draft)
    phrase = noun_phrase(head)
    phrase_text = " ".join(t.text for t in phrase)
    new = Draft(cut - {pronoun.i}, kind="relative")
    if pronoun.dep_ in {"nsubj", "nsubjpass"}:
        new.tokens |= {t.i for t in phrase}
    elif pronoun.lower_ == "whose":
        new.tokens |= {t.i for t in phrase}
        new.inserts[phrase[-1].i + 0.5] = "'s"
    elif pronoun.lower_ in {"where", "when"}:
        new.inserts[max(cut) + 0.5] = f"in {phrase_text}"
    else:
        new.inserts[clause.i + 0.5] = phrase_text
    return new


# 3. coordinations -------------------------------------------------------------------------


def _members(head: Token) -> list[Token]:
    chain = [head]
    for member in chain:
        chain.extend(c for c in member.children if c.dep_ == "conj")
    return chain


def _splittable(sentence: SpacySpan, head: Token, draft: Draft) -> bool:
    if head.pos_ in {"VERB", "AUX"} or head.dep_ == "conj":
        return False
    if not (head.pos_ in {"NOUN", "PROPN", "NUM", "PRON", "ADP"} or head.dep_ == "acomp"):
        return False
    members = _members(head)
    if len(members) < 2 or any(m.i not in draft.tokens for m in members):
        return False
    conjunctions = [c for m in members for c in m.children if c.dep_ == "cc"]
    if not conjunctions or any(c.lower_ not in {"and", "&"} for c in conjunctions):
        return False
    preposition = head.head
    if preposition.lemma_ in {"between", "among", "amongst"}:
        return False
    if preposition.dep_ == "prep" and preposition.head.lemma_ in _RELATIONAL:
        return False
    verbs = [sentence.doc[i] for i in draft.tokens if sentence.doc[i].pos_ == "VERB"]
    if any(v.lemma_ in _SYMMETRIC for v in verbs):
        return False
    # Members inside one named entity ("Procter and Gamble") are one name.
    entity = next((e for e in sentence.ents if e.start <= head.i < e.end), None)
    return entity is None or not entity.start <= members[-1].i < entity.end


def _count(sentence: SpacySpan, head: Token, draft: Draft) -> Token | None:
    """The number that counts the members of a coordination elsewhere in the claim: "two"
    in "won two prizes, in physics and chemistry" (each member is one prize)."""
    members = len(_members(head))
    group = subtree(head)
    for i in sorted(draft.tokens - group):
        word = sentence.doc[i]
        if word.dep_ != "nummod" or word.head.tag_ not in {"NNS", "NNPS"}:
            continue
        count = _COUNTS.get(word.lower_)
        if count is None and word.text.isdigit():
            count = int(word.text)
        if count == members:
            return word
    return None


def _one(variant: Draft, count: Token) -> None:
    """Say one where the claim counted all: "two Nobel Prizes" -> "a Nobel Prize"."""
    noun = count.head
    after = count.doc[count.i + 1].text if count.i + 1 < len(count.doc) else ""
    variant.replace[count.i] = "an" if after[:1].lower() in set("aeiou") else "a"
    singular = noun.lemma_
    if singular.lower() == noun.lower_ and noun.lower_.endswith("s"):  # a name: "Prizes"
        singular = noun.text[:-1]
    variant.replace[noun.i] = (
        singular[:1].upper() + singular[1:] if noun.text[:1].isupper() else singular
    )


def _own(member: Token) -> set[int]:
    nested = [c for c in member.children if c.dep_ == "conj"]
    glue = {
        c.i
        for c in member.children
        if c.dep_ in {"cc", "punct", "preconj"} or c.lower_ in {"both", "either"}
    }
    return subtree(member) - _union(subtree(c) for c in nested) - glue


def _coordinations(sentence: SpacySpan, draft: Draft, code: frozenset[int]) -> list[Draft]:
    doc = sentence.doc
    heads = [
        doc[i]
        for i in sorted(draft.tokens)
        if i not in code and _splittable(sentence, doc[i], draft)
    ]
    if not heads:
        return [draft]
    options = []
    for head in heads:
        group = subtree(head) & draft.tokens
        options.append([(group, _own(m) & group, m) for m in _members(head)])
    counts = [_count(sentence, head, draft) for head in heads]
    variants = []
    for combination in itertools.islice(itertools.product(*options), MAX_VARIANTS):
        tokens = set(draft.tokens)
        for group, _, _ in combination:
            tokens -= group
        for _, own, _ in combination:
            tokens |= own
        variant = draft.copy(tokens)
        for head, (_, _, member), count in zip(heads, combination, counts, strict=True):
            # "Lists, tuples and dictionaries are containers": lists still are.
            if head.dep_ in {"nsubj", "nsubjpass"} and member.tag_ not in {"NNS", "NNPS"}:
                _agree(head.head, variant)
            if count is not None and count.i in variant.tokens:
                _one(variant, count)
        variants.append(variant)
    return variants


_SINGULAR = {"are": "is", "were": "was", "have": "has"}


def _agree(verb: Token, draft: Draft) -> None:
    """One member of a plural subject takes a singular verb: "Lyon is", not "Lyon are"."""
    changed = False
    for token in [verb, *(c for c in verb.children if c.dep_ in {"aux", "auxpass"})]:
        if token.lower_ in _SINGULAR and token.i in draft.tokens:
            draft.replace[token.i] = _SINGULAR[token.lower_]
            changed = True
    for word in verb.children:
        # "Lyon and Paris are both big cities": one of them is not "both".
        if changed and word.lower_ in {"both", "each"} and word.dep_ in {"dep", "advmod"}:
            draft.replace[word.i] = ""
    for attr in verb.children:
        if changed and attr.dep_ == "attr" and attr.tag_ == "NNS" and attr.i in draft.tokens:
            draft.replace[attr.i] = attr.lemma_
            if not any(c.dep_ in {"det", "poss", "nummod"} for c in attr.children):
                first = min(t.i for t in attr.subtree if t.i <= attr.i)
                article = "an" if attr.doc[first].lower_[:1] in set("aeiou") else "a"
                draft.inserts[first - 0.5] = article


# 4. separable phrases of time, place and quantity -----------------------------------------


def _kind(phrase: Token) -> str | None:
    """Time or place, read from the entity of the phrase's own object (not nested phrases)."""
    objects = (
        [phrase] if phrase.dep_ != "prep" else [c for c in phrase.children if c.dep_ == "pobj"]
    )
    for obj in objects:
        for token in obj.subtree:
            if token.head == obj or token == obj:
                kind = _SEPARABLE.get(token.ent_type_)
                if kind:
                    return kind
    return None


def _modifiers(sentence: SpacySpan, draft: Draft) -> list[Draft]:
    doc = sentence.doc
    verbs = [
        doc[i]
        for i in sorted(draft.tokens)
        # the small model tags some verbs as nouns ("The Titanic sank" with "sank" a
        # noun): a root with a subject is the verb
        if (doc[i].pos_ in {"VERB", "AUX"} or _misread_verb(doc[i]))
        and (doc[i].head.i == i or doc[i].head.i not in draft.tokens)
    ]
    if not verbs:
        return [draft]
    phrases = _phrases(verbs[0], draft)
    if len({_kind(p) for p in phrases}) < 2:
        return [draft]
    out = []
    for keep in phrases:
        drop = _union(subtree(p) for p in phrases if p is not keep) - subtree(keep)
        out.append(draft.copy(draft.tokens - drop))
    return out


def _misread_verb(token: Token) -> bool:
    return token.dep_ == "ROOT" and any(c.dep_ in SUBJECTS for c in token.children)


def _phrases(head: Token, draft: Draft) -> list[Token]:
    """Phrases of time or place on ``head``, and on their objects ("in 1912 in the Atlantic")."""
    found = []
    for child in head.children:
        if child.i not in draft.tokens or child.dep_ not in {"prep", "npadvmod", "tmod"}:
            continue
        if child.lower_ == "for":  # a duration ("for 20 years") belongs to its verb
            continue
        if _kind(child) is not None:
            found.append(child)
            for obj in child.children:
                if obj.dep_ == "pobj":
                    found.extend(_phrases(obj, draft))
    return found
