"""What differs between a claim and an evidence sentence that speaks of the same thing.

Similarity says whether a sentence is *about* a claim; it cannot say whether
the sentence agrees. This module lines the claim's words up with the words of
one evidence sentence — inside the clause of it that names the claim's
subject, since a sentence such as "tuples are immutable, while lists are
mutable" says opposite things of two subjects — and names each difference
that turns the meaning round:

- ``antonym``: a word and its opposite (WordNet 3.0's direct antonyms,
  ``claims/lexicon/antonyms.tsv``, or the same word with a negating prefix,
  "mutable" / "immutable");
- ``order``: the other end of a scale of position, time or scope (first /
  last, before / after, nearest / outermost, left to right / right to left);
- ``quantifier``: all / some / none / only / once / every time that do not fit;
- ``negation``: one side negated and the other not (with an antonym counted as a
  negation, so "not mutable" agrees with "immutable");
- ``role_swap``: the same two things on the two sides of the same relation, the
  other way round ("bool is a subclass of int" / "int is a subclass of bool");
- ``number_mismatch`` / ``date_mismatch``: another value in the same slot (the
  words around it agree);
- ``entity_mismatch``: a name the sentence does not have, where the sentence
  has another name of the same kind.

A finding is *strong* when the sentence speaks of the claim's subject and the
rest of the claim is there too: then the difference alone refutes the claim,
and the verifier does not let the mix of its learned heads overrule it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claims.types import Span

if TYPE_CHECKING:
    from spacy.tokens import Doc

CODES = (
    "antonym",
    "order",
    "quantifier",
    "negation",
    "role_swap",
    "number_mismatch",
    "date_mismatch",
    "entity_mismatch",
)
LEXICON = Path(__file__).resolve().parent / "lexicon"
NEGATIONS = frozenset(
    {
        "not",
        "n't",
        "never",
        "no",
        "none",
        "nobody",
        "nothing",
        "neither",
        "nor",
        "without",
        "cannot",
    }
)
QUANTIFIERS = {
    **dict.fromkeys(
        ("all", "every", "each", "always", "entire", "everything", "everyone", "everybody"),
        "universal",
    ),
    **dict.fromkeys(("no", "none", "never", "nothing", "nobody", "neither"), "negative"),
    **dict.fromkeys(("some", "several", "many", "most", "often", "usually", "various"), "partial"),
    **dict.fromkeys(("sometimes", "occasionally", "rarely", "seldom", "few"), "limited"),
    **dict.fromkeys(("only", "solely", "exclusively", "sole"), "exclusive"),
}
# Two ends of scales of position, time and scope: ``(scale, end)`` per word.
_SCALES = (
    (
        "first initial earliest beginning start leading front opening former prefix",
        "last final latest end ending trailing back closing latter suffix",
    ),
    (
        "before prior preceding precede earlier previously previous",
        "after following follow later subsequent subsequently succeed afterwards",
    ),
    ("nearest innermost closest inner inside", "outermost farthest furthest outer outside"),
    ("left leftmost", "right rightmost"),
    ("ascending increasing", "descending decreasing"),
    ("north northern northward", "south southern southward"),
    ("east eastern eastward", "west western westward"),
    ("above upper top", "below lower bottom"),
)
ORDER: dict[str, tuple[int, int]] = {
    word: (scale, end)
    for scale, ends in enumerate(_SCALES)
    for end, words in enumerate(ends)
    for word in words.split()
}
# Comparative and superlative forms the lemmatiser leaves as they are.
_IRREGULAR = {"eld": "old", "elder": "old", "eldest": "old", "better": "good", "best": "good"}
_IRREGULAR |= {"worse": "bad", "worst": "bad", "farther": "far", "further": "far"}
_PREFIXES = ("non-", "non", "un", "in", "im", "il", "ir", "dis")
# Words of content parts of speech that carry little of a claim's meaning.
_LIGHT = frozenset(
    "be have do need also very just so then there here thus however such well even still "
    "really quite rather etc i.e. e.g.".split()
)
_BOUNDARIES = frozenset(
    {";", ":", "—", "while", "whereas", "but", "although", "though", "however", "unlike", "except"}
)
# The words of a negation in an evidence clause, and of a word turned round, lie this
# near the words the clause shares with the claim.
_REACH = 3
_CONTENT_POS = frozenset({"NOUN", "PROPN", "VERB", "ADJ", "ADV", "X"})
_ARGUMENT_POS = frozenset({"NOUN", "PROPN", "IDENT"})
_PRONOUNS = frozenset({"it", "this", "he", "she", "they", "its", "his", "her", "their"})
# Code names as one word: dunder names, dotted names, names called "f(", CamelCase names
# and exception names ("EOFError").
CODE_NAME = re.compile(
    r"__\w+__|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+|[A-Za-z_]\w*(?=\()|\b[A-Z][a-z]+(?:[A-Z][a-z]*)+\b"
    r"|\b[A-Z]\w*(?:Error|Exception|Warning|Exit|Interrupt|Iteration)\b"
)
# A formula such as "10**-2" or "-1**2" is one value, compared as written.
_EXPRESSION = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:\*\*|[*/+^%])-?\d+(?:\.\d+)?(?![\w.])")
_NUMBER = re.compile(
    r"(?<![\w.])(?<![A-Za-z_][+*/-])(-?\d[\d,]*(?:\.\d+)?)(?:\s*(%|percent|thousand|million|billion|trillion))?(?!\w)"
)
_NUMBER_WORDS = {
    w: float(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
} | {"hundred": 100.0, "once": 1.0, "twice": 2.0}
_NUMBER_WORDS |= {
    w: 10.0 * (i + 3)
    for i, w in enumerate("thirty forty fifty sixty seventy eighty ninety".split())
}
_ORDINALS = {
    w: float(i + 2)
    for i, w in enumerate(
        "second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split()
    )
}
_ORDINAL = re.compile(r"^(\d+)(st|nd|rd|th)$")
_MONTHS = frozenset(
    "january february march april may june july august september october november december".split()
)
_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
# Named-entity labels, grouped where the small English model often mixes them up
# (a playwright read as an organisation, a region as a facility).
_ENTITY_KINDS = {
    **dict.fromkeys(("PERSON", "ORG"), "agent"),
    **dict.fromkeys(("GPE", "LOC", "FAC"), "place"),
    **dict.fromkeys(("WORK_OF_ART", "EVENT", "PRODUCT", "LANGUAGE"), "work"),
    "NORP": "group",
}


@cache
def antonyms() -> dict[str, frozenset[str]]:
    """WordNet's direct antonyms, both ways, by lower-case lemma (all parts of speech)."""
    table: dict[str, set[str]] = {}
    with (LEXICON / "antonyms.tsv").open(encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("#") or not line.strip():
                continue
            word, _, other = line.rstrip("\n").split("\t")
            table.setdefault(word, set()).add(other)
    return {word: frozenset(others) for word, others in table.items()}


@cache
def _stem(word: str) -> str:
    return str(_stemmer().stemWord(word))


@cache
def _stemmer() -> Any:
    import Stemmer  # PyStemmer, the Snowball stemmer BM25 uses

    return Stemmer.Stemmer("english")


@dataclass(frozen=True)
class Word:
    """A token of a text as this module reads it (a code name is one word)."""

    text: str
    key: str  # lemma, lower case; a code name without "()" or its dotted prefix
    pos: str  # spaCy's coarse part of speech, or IDENT
    tag: str
    start: int
    end: int
    entity: str = ""  # the kind of named entity it is part of, if any
    name: int = -1  # where the name it is part of starts (one id per name)
    # Worked out once: words are compared with every word of every sentence.
    lower: str = field(init=False, repr=False, compare=False)
    # "" for keys of 3 letters or less, and for code names: sort() is not sorted()
    stem: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lower", self.text.lower())
        stemmed = len(self.key) > 3 and self.pos != "IDENT"
        object.__setattr__(self, "stem", _stem(self.key) if stemmed else "")

    @property
    def content(self) -> bool:
        return self.pos in _CONTENT_POS or self.pos == "IDENT"

    @property
    def span(self) -> Span:
        return Span(self.start, self.end)


def words(doc: Doc) -> list[Word]:
    """The words of a spaCy document, code names merged, punctuation kept.

    Kept on the document: one sentence is read against every claim.
    """
    known = doc.user_data.get(_WORDS_KEY)
    if known is None:
        known = doc.user_data[_WORDS_KEY] = tuple(_read(doc))
    return list(known)


_WORDS_KEY = "claimsieve.contrast.words"  # where words() keeps them on a document


def _read(doc: Doc) -> list[Word]:
    names = [m for m in CODE_NAME.finditer(doc.text) if not m.group(0).isupper()]
    out: list[Word] = []
    taken = 0
    starts = {t.i: e.start_char for e in doc.ents for t in e}
    for token in doc:
        if token.idx < taken:
            continue
        name = next((m for m in names if m.start() <= token.idx < m.end()), None)
        if name is not None:
            key = name.group(0).split(".")[-1].lower()
            kind = _code_kind(name.group(0))
            out.append(
                Word(
                    name.group(0), key, "IDENT", "NNP", name.start(), name.end(), kind, name.start()
                )
            )
            taken = name.end()
            continue
        lemma = token.lemma_.lower()
        lemma = _IRREGULAR.get(lemma, _IRREGULAR.get(token.lower_, lemma))
        following = doc[token.i + 1] if token.i + 1 < len(doc) else None
        if token.text in ("None", "No") and token.i > 0:
            lemma = token.text  # Python's None, "No. 1": neither negates
        elif token.text[:1].isupper() and following is not None and following.text.istitle():
            if lemma in NEGATIONS:
                lemma = token.text  # a title: "No Strings Attached", "Never Let Me Go"
        elif lemma in ("instead", "rather", "other") and token.i + 1 < len(doc):
            if doc[token.i + 1].lower_ in ("of", "than"):
                lemma = "not"  # "instead of raising", "rather than", "other than": negations
        pos = token.pos_
        if lemma in _LIGHT:
            pos = "STOP"
        out.append(
            Word(
                token.text,
                lemma,
                pos,
                token.tag_,
                token.idx,
                token.idx + len(token.text),
                _ENTITY_KINDS.get(token.ent_type_, ""),
                starts.get(token.i, -1) if token.ent_type_ in _ENTITY_KINDS else -1,
            )
        )
    return out


def _identical(a: Word, b: Word) -> bool:
    return a.lower == b.lower


def _same(a: Word, b: Word) -> bool:
    return a.key == b.key or a.lower == b.lower or (a.stem != "" and a.stem == b.stem)


class _Vocabulary:
    """Words of a text, for asking whether it has a word :func:`_same` as another."""

    def __init__(self, ws: Sequence[Word]) -> None:
        self._keys = {w.key for w in ws}
        self._lowers = {w.lower for w in ws}
        self._stems = {w.stem for w in ws if w.stem}

    def has(self, w: Word) -> bool:
        return (
            w.key in self._keys
            or w.lower in self._lowers
            or (w.stem != "" and w.stem in self._stems)
        )


def _prefixed(a: str, b: str) -> bool:
    """``b`` is ``a`` with a negating prefix ("mutable", "immutable")."""
    return any(b == p + a for p in _PREFIXES) and len(a) >= 4


def opposite(a: Word, b: Word) -> bool:
    """WordNet antonyms, or one word the other with a negating prefix."""
    table = antonyms()
    mine, theirs = {a.key, a.lower}, {b.key, b.lower}
    if any(t in table.get(m, ()) for m in mine for t in theirs):
        return True
    described = {a.pos, b.pos} <= {"ADJ", "VERB"} and "ADJ" in {a.pos, b.pos}
    return described and any(_prefixed(m, t) or _prefixed(t, m) for m in mine for t in theirs)


@dataclass(frozen=True)
class Finding:
    """One difference: its code, and where it is in the claim and in the sentence."""

    code: str
    message: str
    claim: Span | None
    evidence: Span | None
    strong: bool = False


@dataclass
class Comparison:
    """A claim read against one evidence sentence.

    Attributes:
        findings: The differences, strongest first.
        subject: Whether the sentence (or its title) names the claim's subject.
        coverage: Share of the claim's content words, besides those a finding is
            about, in the clause or the title.
        aligned: Share of the claim's content words found there or turned round.
        supports: Every content word there, nothing turned round.
    """

    findings: list[Finding] = field(default_factory=list)
    subject: bool = False
    coverage: float = 0.0
    aligned: float = 0.0
    supports: bool = False

    @property
    def strong(self) -> list[Finding]:
        return [f for f in self.findings if f.strong]


def _match(cw: list[Word], ew: list[Word], content: list[int], window: list[int]) -> dict[int, int]:
    """Each claim content word to the first unused word of the clause that is the same."""
    used: set[int] = set()
    out: dict[int, int] = {}
    for i in content:
        free = [j for j in window if j not in used]
        # the same word first ("subclassed"), then the same stem ("subclass")
        j = next((j for j in free if _identical(cw[i], ew[j])), None)
        if j is None:
            j = next((j for j in free if _same(cw[i], ew[j])), None)
        if j is None:
            # a word said twice in the claim may stand once in the clause
            j = next((j for j in window if _same(cw[i], ew[j])), None)
            if j is None or any(_same(cw[k], cw[i]) for k in out):
                continue
        used.add(j)
        out[i] = j
    return out


def subject_of(doc: Doc, ws: Sequence[Word] = ()) -> set[int]:
    """Character offsets of the claim's subject tokens.

    A claim that starts with a code name is about it ("sorted() returns ...":
    the parser reads code badly); otherwise the parse's subject, else the
    first noun.
    """
    if ws and ws[0].pos == "IDENT":
        return {ws[0].start}
    found: set[int] = set()
    for token in doc:
        if token.dep_ in ("nsubj", "nsubjpass", "csubj") and (
            token.head.dep_ == "ROOT" or token.head.head == token.head
        ):
            found.update(t.idx for t in token.subtree)
            break
    if not found:
        first = next((t for t in doc if t.pos_ in ("NOUN", "PROPN")), None)
        if first is not None:
            found.add(first.idx)
    return found


def _windows(evidence: list[Word]) -> list[list[int]]:
    """The sentence cut into clauses at semicolons, colons, dashes and contrastive
    conjunctions; a parenthesis is a clause of its own, and a short one
    ("the bitwise (inclusive) OR") qualifies the clause it interrupts as well. A name
    before a colon that starts the sentence belongs to the clause after it.
    A quoted word is named, not used: the keyword "except" cuts nothing."""
    current: list[int] = []
    out = [current]
    interrupted: list[int] | None = None  # the clause a parenthesis interrupts
    for i, w in enumerate(evidence):
        if w.text in ("(", "[") and interrupted is None:
            interrupted, current = current, []
            out.append(current)
        elif w.text in (")", "]") and interrupted is not None:
            if len(current) <= _SHORT_ASIDE:
                interrupted.extend(current)
            current, interrupted = interrupted, None
        elif (w.key in _BOUNDARIES or w.text in _BOUNDARIES) and not _quoted(evidence, i):
            if current:
                current = []
                out.append(current)
        else:
            current.append(i)
    out = [w for w in out if w]
    # "pow: Equivalent to base**exp ...": a name before a colon is what the rest defines.
    first = out[0] if out else []
    if (
        len(out) > 1
        and len(first) <= 2
        and first == list(range(len(first)))
        and len(first) < len(evidence)
        and evidence[len(first)].text == ":"
    ):
        out[:2] = [out[0] + out[1]]
    return out or [list(range(len(evidence)))]


# Words in a parenthesis short enough to qualify the words around it.
_SHORT_ASIDE = 3
_QUOTES = frozenset({'"', "'", "“", "”", "‘", "’", "`"})


_CONDITIONS = frozenset({"if", "when", "whenever", "unless"})


def _mode(ws: list[Word], where: Sequence[int]) -> dict[str, int]:
    """Where ``ws`` says a thing is changed in place or kept ("in place", "the same object",
    "an existing dictionary", "returned unchanged", "shared") and where it says a new one is made
    ("a new list", "a copy")."""
    out: dict[str, int] = {}
    for k in where:
        w, after = ws[k], ws[k + 1] if k + 1 < len(ws) else None
        if w.lower == "in-place" or (
            w.lower == "in" and after is not None and after.lower == "place"
        ):
            out.setdefault("in place", k)
        elif w.key in ("same", "existing") and after is not None and after.pos == "NOUN":
            out.setdefault("in place", k)
        elif w.lower in ("unchanged", "shared"):  # "returned unchanged", "shared by all calls"
            out.setdefault("in place", k)
        elif w.key in ("new", "fresh") and after is not None and after.pos in ("NOUN", "ADJ"):
            out.setdefault("new", k)
        elif w.key == "copy" and w.pos == "NOUN":
            out.setdefault("new", k)
    return out


_MODIFIERS = frozenset({"same", "existing", "new", "fresh"})


def _copies(cw: list[Word], ew: list[Word], window: list[int]) -> list[tuple[Finding, set[int]]]:
    """Changed in place on one side, a new thing made on the other: "sorts the list in
    place" / "returns a new sorted list" (counted as an antonym)."""
    mine, theirs = _mode(cw, range(len(cw))), _mode(ew, window)
    if len(mine) != 1 or len(theirs) != 1 or mine.keys() == theirs.keys():
        return []
    ((claimed, i),), ((stated, j),) = mine.items(), theirs.items()
    said = {"in place": "the same one changed or kept", "new": "a new one made"}
    message = f"the claim says {said[claimed]}; the evidence says {said[stated]}"
    # "in place" and "a new copy" are each one thing said
    phrase = {i, i + 1} if cw[i].lower == "in" or cw[i].key in _MODIFIERS else {i}
    return [(Finding("antonym", message, _span(cw, sorted(phrase)), ew[j].span), phrase)]


def _quoted(ws: list[Word], i: int) -> bool:
    return 0 < i < len(ws) - 1 and ws[i - 1].text in _QUOTES and ws[i + 1].text in _QUOTES


@dataclass(frozen=True)
class _Value:
    kind: str  # number, ordinal, year, month
    value: float | str
    digits: int
    start: int
    end: int


# A four-digit number after these is an amount, not a year ("the limit is 1000").
_QUANTITY_BEFORE = frozenset(
    {"is", "are", "was", "were", "be", "been", "to", "than", "=", "equals"}
)


def values(text: str, ws: list[Word]) -> list[_Value]:
    """Numbers (digits and number words, scales and signs), ordinals, years and months."""
    out: list[_Value] = []
    formulas = [(m.start(), m.end()) for m in _EXPRESSION.finditer(text)]
    for a, b in formulas:
        out.append(_Value("expression", text[a:b], 0, a, b))
    names = [w for w in ws if w.pos == "PROPN" and w.text.lower() not in _MONTHS]
    for m in _NUMBER.finditer(text):
        if any(a <= m.start(1) < b for a, b in formulas):
            continue
        if any(0 < m.start(1) - w.end <= 1 for w in names):
            continue  # part of a name: "Cars 3", "Maroon 5"
        raw = m.group(1).replace(",", "")
        try:
            value = float(raw)
        except ValueError:
            continue
        scale = (m.group(2) or "").lower()
        end = m.end() if scale else m.start(1) + len(m.group(1))
        before = next((w.text.lower() for w in reversed(ws) if w.end <= m.start(1)), "")
        if (
            not scale
            and "." not in raw
            and len(raw) == 4
            and 1000 <= value <= 2100
            and before not in _QUANTITY_BEFORE
        ):
            out.append(_Value("year", value, 4, m.start(1), end))
            continue
        digits = len(raw.lstrip("-").replace(".", "").lstrip("0") or "0")
        out.append(_Value("number", value * _SCALE.get(scale, 1.0), digits, m.start(1), end))
    for w in ws:
        low = w.lower
        if low in _MONTHS and (low != "may" or w.pos == "PROPN") and w.entity != "agent":
            out.append(_Value("month", low, 0, w.start, w.end))
        elif low in _NUMBER_WORDS and (
            w.tag == "CD" or low in ("once", "twice") or (w.tag == "JJ" and low != "one")
        ):
            out.append(_Value("number", _NUMBER_WORDS[low], 9, w.start, w.end))
        elif low in _ORDINALS and w.tag in ("JJ", "RB"):
            out.append(_Value("ordinal", _ORDINALS[low], 9, w.start, w.end))
        elif (numbered := _ORDINAL.match(low)) is not None:
            out.append(_Value("ordinal", float(numbered.group(1)), 9, w.start, w.end))
    return sorted(out, key=lambda v: v.start)


def _equal(a: _Value, b: _Value) -> bool:
    if isinstance(a.value, str) or isinstance(b.value, str):
        return a.value == b.value
    if math.isclose(a.value, b.value, rel_tol=1e-6):
        return True
    if a.value == 0 or b.value == 0 or a.digits >= 9:
        return False
    step = 10 ** (math.floor(math.log10(abs(a.value))) - a.digits + 1)
    return math.isclose(round(b.value / step) * step, a.value, rel_tol=1e-6)


class Comparer:
    """Compares claims with evidence sentences (spaCy documents with tags, lemmas and NER)."""

    def compare(
        self, claim: Doc, sentence: Doc, title: Doc | None = None, elsewhere: str = ""
    ) -> Comparison:
        """What the sentence (read with its title) says differently from the claim.

        ``title`` is what the sentence is about when it says only "it": its
        passage's title, and the heading above it. ``elsewhere``: all the
        evidence text of the claim, lower case (a name found there is no
        mismatch, even if this sentence lacks it).
        """
        cw = words(claim)
        ew = words(sentence)
        tw = words(title) if title is not None else []
        subject_at = subject_of(claim, cw)
        subject = [i for i, w in enumerate(cw) if w.start in subject_at and w.content]
        content = [i for i, w in enumerate(cw) if w.content]
        if not content or not ew:
            return Comparison()
        in_sentence = {i for i in content if _Vocabulary(ew).has(cw[i])}
        in_title = {i for i in content if _Vocabulary(tw).has(cw[i])}
        window = self._window(cw, ew, content, subject)
        matched = _match(cw, ew, content, window)
        findings: list[tuple[Finding, set[int]]] = []
        findings += self._polarity(claim.text, cw, ew, window, matched)
        findings += self._quantifiers(cw, ew, _near(window, matched))
        findings += self._swaps(cw, ew, window, matched, in_title)
        findings += _copies(cw, ew, window)
        findings += _expressions(claim.text, sentence.text, cw)
        values_found = self._values(claim.text, sentence.text, cw, ew)
        findings += values_found
        context = elsewhere or f"{sentence.text} {title.text if title is not None else ''}".lower()
        findings += self._entities(cw, ew, window, context)
        involved = {i for _, used in findings for i in used}
        rest = [i for i in content if i not in involved]
        covered = [i for i in rest if i in matched or i in in_title]
        coverage = len(covered) / len(rest) if rest else 1.0
        named = [i for i in subject if i not in involved]
        if named:
            found_subject = any(i in in_sentence | in_title for i in named)
        else:
            # No subject, or the subject is what differs ("an IndexError is raised"):
            # the rest of the claim has to be there all the more.
            found_subject = coverage >= 0.75
        strong = found_subject and coverage >= 0.5 and (bool(covered) or not rest)
        out = [
            Finding(f.code, f.message, f.claim, f.evidence, strong)
            for f, _ in sorted(findings, key=lambda pair: CODES.index(pair[0].code))
        ]
        stated = values(sentence.text, ew)
        supports = (
            not out
            and all(i in matched or i in in_title for i in content)
            # "both mutable and immutable" names the claim's word and its opposite
            and not any(opposite(cw[i], ew[j]) for i in content for j in window)
            and all(any(_equal(v, t) for t in stated) for v in values(claim.text, cw))
        )
        aligned = (len(covered) + len(involved & set(content))) / len(content)
        return Comparison(out, found_subject, coverage, aligned, supports)

    def _window(
        self, cw: list[Word], ew: list[Word], content: list[int], subject: list[int]
    ) -> list[int]:
        """The clause that names the claim's subject (or shares most content words)."""

        def score(window: list[int]) -> int:
            hits = {i for i in content for j in window if _same(cw[i], ew[j])}
            return len(hits) + len(hits & set(subject))

        return max(_windows(ew), key=score)

    def _polarity(
        self,
        claim_text: str,
        cw: list[Word],
        ew: list[Word],
        window: list[int],
        matched: dict[int, int],
    ) -> list[tuple[Finding, set[int]]]:
        """Antonyms, scales turned round, and negation (an antonym counts as one)."""
        out: list[tuple[Finding, set[int]]] = []
        used = set(matched.values())
        near = _near(window, matched)
        flips: list[tuple[int, int]] = []
        claimed = _Vocabulary(cw)
        for i, c in enumerate(cw):
            if i in matched or not (c.content or _scale(c) is not None):
                continue
            for j in window:
                e = ew[j]
                if j in used or claimed.has(e):
                    continue
                if _scale(c) is not None and _scale(e) is not None:
                    (scale, end), (other_scale, other_end) = _scale(c), _scale(e)  # type: ignore[misc]
                    if scale == other_scale and end != other_end:
                        message = f"the claim says '{c.text}'; the evidence says '{e.text}'"
                        out.append((Finding("order", message, c.span, e.span), {i}))
                        break
                if opposite(c, e):
                    flips.append((i, j))
                    break
        out += self._sequence(cw, ew, window)
        # A negation counts where what it negates is on the other side too (or turned
        # round): "X is not a state" says nothing against a sentence that has no "state".
        negated_claim = [
            i for i in range(len(cw)) if _negates(cw, i) and _about(ew, cw, i, set(), window)
        ]
        turned = {j for _, j in flips}
        negated_evidence = [j for j in near if _negates(ew, j) and _about(cw, ew, j, turned)]
        if flips and not negated_claim:
            negated_claim = [
                i for i in range(len(cw)) if _negates(cw, i) and i < flips[0][0] <= i + 2 + _REACH
            ]
        if (len(negated_claim) + len(negated_evidence) + len(flips)) % 2 == 0:
            return out
        if flips:
            i, j = flips[0]
            message = f"the claim says '{cw[i].text}'; the evidence says '{ew[j].text}'"
            out.append((Finding("antonym", message, cw[i].span, ew[j].span), {i}))
            return out
        quantified = [
            i for i, w in enumerate(cw) if QUANTIFIERS.get(w.key) in ("universal", "negative")
        ]
        if negated_claim:
            k = negated_claim[0]
            code = "quantifier" if quantified else "negation"
            message = "the claim is negated and the evidence is not"
            predicate = next((j for j in sorted(used) if ew[j].pos in ("VERB", "ADJ")), None)
            evidence_span = ew[predicate].span if predicate is not None else _span(ew, near)
            out.append((Finding(code, message, cw[k].span, evidence_span), {k}))
        else:
            k = negated_evidence[0]
            negative = QUANTIFIERS.get(ew[k].key) == "negative"
            code = "quantifier" if quantified or negative else "negation"
            message = "the evidence is negated and the claim is not"
            verb = next((i for i in sorted(matched) if cw[i].pos in ("VERB", "ADJ")), None)
            claim_span = cw[verb].span if verb is not None else Span(0, len(claim_text))
            out.append((Finding(code, message, claim_span, ew[k].span), set()))
        return out

    def _sequence(
        self, cw: list[Word], ew: list[Word], window: list[int]
    ) -> list[tuple[Finding, set[int]]]:
        """Both ends of a scale on both sides, in the other order ("left to right")."""
        out: list[tuple[Finding, set[int]]] = []
        mine = [(i, p) for i, w in enumerate(cw) if (p := _scale(w)) is not None]
        theirs = [(j, p) for j in window if (p := _scale(ew[j])) is not None]
        for scale in {p[0] for _, p in mine}:
            ours = [(i, p[1]) for i, p in mine if p[0] == scale]
            others = [(j, p[1]) for j, p in theirs if p[0] == scale]
            if {e for _, e in ours} != {0, 1} or {e for _, e in others} != {0, 1}:
                continue
            if ours[0][1] != others[0][1]:
                i, j = ours[0][0], others[0][0]
                message = f"the claim puts '{cw[i].text}' first; the evidence '{ew[j].text}'"
                out.append((Finding("order", message, cw[i].span, ew[j].span), {i}))
        return out

    def _quantifiers(
        self, cw: list[Word], ew: list[Word], window: list[int]
    ) -> list[tuple[Finding, set[int]]]:
        """Quantifiers that do not fit, where no negation already says so."""
        theirs = {q: j for j in window if (q := _quantifier(ew, j)) is not None}
        mine = {q: i for i in range(len(cw)) if (q := _quantifier(cw, i)) is not None}
        clash = {
            ("universal", "partial"),
            ("universal", "limited"),
            ("limited", "universal"),
            ("exclusive", "universal"),
            ("exclusive", "partial"),
        }
        for kind, i in mine.items():
            if kind in theirs:
                continue
            for other, j in theirs.items():
                # "some" follows from "all", except in a condition: "True if some characters
                # are digits" is not "True if all characters are digits".
                conditions = (kind, other) == ("partial", "universal") and all(
                    _in_condition(ws, k) for ws, k in ((cw, i), (ew, j))
                )
                if (kind, other) in clash or conditions:
                    message = f"the claim says '{cw[i].text}'; the evidence says '{ew[j].text}'"
                    return [(Finding("quantifier", message, cw[i].span, ew[j].span), {i})]
        # "exactly one of the suites" against "several of its suites", either way round.
        one_claim, one_evidence = _single(cw, range(len(cw))), _single(ew, window)
        plural_claim = [i for i, w in enumerate(cw) if w.key in _MORE_THAN_ONE]
        plural_evidence = [j for j in window if ew[j].key in _MORE_THAN_ONE]
        for i, j in [
            *((i, j) for i in plural_claim for j in one_evidence[:1] if not one_claim),
            *((i, j) for i in one_claim[:1] for j in plural_evidence if not one_evidence),
        ]:
            message = f"the claim says '{cw[i].text}'; the evidence says '{ew[j].text}'"
            return [(Finding("quantifier", message, cw[i].span, ew[j].span), {i})]
        once_claim = [i for i, w in enumerate(cw) if w.key == "once" and w.tag == "RB"]
        once_evidence = [j for j in window if ew[j].key == "once" and ew[j].tag == "RB"]
        every = {"every", "each"}
        if once_evidence and not once_claim:
            each = next((i for i, w in enumerate(cw) if w.key in every), None)
            if each is not None:
                j = once_evidence[0]
                message = f"the claim says '{cw[each].text}'; the evidence says '{ew[j].text}'"
                return [(Finding("quantifier", message, cw[each].span, ew[j].span), {each})]
        return []

    def _swaps(
        self,
        cw: list[Word],
        ew: list[Word],
        window: list[int],
        matched: dict[int, int],
        in_title: set[int],
    ) -> list[tuple[Finding, set[int]]]:
        """The same two things on either side of the same relation, the other way round.

        A relation is a verb, or a noun or adjective with its preposition
        ("a subclass of", "equivalent to"); a passive verb ("is voiced by")
        turns the order round itself. A title stands first when the sentence
        begins with a pronoun ("It is done by calling ...") or a description the
        claim does not use ("The couple started as backing singers for ...").
        """
        position = {i: j for i, j in matched.items() if j in window}
        if ew and (ew[0].key in _PRONOUNS or _description(ew, cw)):
            for i in in_title:
                position.setdefault(i, -1)
        args = [
            i
            for i in sorted(position)
            if cw[i].pos in _ARGUMENT_POS
            and not _is_value(cw[i])
            # a name is one thing: its last word stands for it
            and not (cw[i].name >= 0 and i + 1 < len(cw) and cw[i + 1].name == cw[i].name)
        ]
        for x, a in enumerate(args):
            for b in args[x + 1 :]:
                if cw[a].key == cw[b].key or b - a < 2:
                    continue
                low, high = sorted((position[a], position[b]))
                relations = [
                    r
                    for r in range(a + 1, b)
                    if r in position
                    and low < position[r] < high
                    # the small model reads "voices" in "X voices Y" as a noun
                    and (_relation(cw, r) or ew[position[r]].pos == "VERB")
                ]
                if not relations or _listed(cw, a, b):
                    continue
                r = relations[0]
                voices = {_voice(cw, r), _voice(ew, position[r])}
                if _preposition(cw, r, voices) != _preposition(ew, position[r], voices):
                    continue  # "starred in X" / "X stars": the roles are not the same
                pivot = position[r]
                if _twice(cw[r], ew, window) or any(
                    _both_sides(cw[k], ew, window, pivot) for k in (a, b)
                ):
                    continue  # a word the clause says twice: which one plays which part?
                if "unknown" in voices or _kinds_differ(cw[a], ew, position[a]):
                    continue
                if _kinds_differ(cw[b], ew, position[b]):
                    continue
                if (position[a] > position[b]) != (len(voices) == 2):
                    message = f"the claim has '{cw[a].text}' and '{cw[b].text}' the other way round"
                    evidence = Span(ew[max(low, 0)].start, ew[high].end)
                    return [(Finding("role_swap", message, cw[a].span, evidence), {a, b})]
        return []

    def _values(
        self,
        claim_text: str,
        evidence_text: str,
        cw: list[Word],
        ew: list[Word],
    ) -> list[tuple[Finding, set[int]]]:
        """A value the sentence gives otherwise, in the same slot.

        A value's slot is the word it belongs to: the noun right after it
        ("five films", "the fourth planet"), else the nearest content word
        before it that is not a name ("defaults to 10", "born in 1994"). Values
        compare within their kind (numbers, ordinals, dates); a list of values
        in a slot compares in order ("produces 0, 1, 2"). When the claim has one
        value of a kind and the sentence one too, they compare whatever their slots.
        """
        theirs: dict[tuple[str, str], list[_Value]] = {}
        by_kind: dict[str, list[_Value]] = {}
        slotted: set[int] = set()
        for t in values(evidence_text, ew):
            by_kind.setdefault(_kind(t), []).append(t)
            if (slot := _slot(ew, t)) is not None:
                theirs.setdefault((ew[slot].key, _kind(t)), []).append(t)
                slotted.add(id(t))
        mine: dict[tuple[str, str], list[_Value]] = {}
        claimed = values(claim_text, cw)
        for v in claimed:
            if (slot := _slot(cw, v)) is not None:
                mine.setdefault((cw[slot].key, _kind(v)), []).append(v)
                slotted.add(id(v))
        pairs = [(vs, theirs[key]) for key, vs in mine.items() if key in theirs]
        compared = {id(v) for vs, _ in pairs for v in vs}
        for kind, stated in by_kind.items():
            # One year against one year; a number only when both count something.
            alone = [v for v in claimed if _kind(v) == kind]
            if len(alone) != 1 or len(stated) != 1 or id(alone[0]) in compared:
                continue
            if kind in ("year", "month") or {id(alone[0]), id(stated[0])} <= slotted:
                pairs.append((alone, stated))
        for vs, stated in pairs:
            listed = len(vs) > 1 and len(stated) > 1
            k = min(len(vs), len(stated))
            if not any(_equal(vs[0], t) for t in stated) or (
                listed and any(not _equal(a, b) for a, b in zip(vs[:k], stated[:k], strict=True))
            ):
                v, other = vs[0], stated[0]
                code = "date_mismatch" if v.kind in ("year", "month") else "number_mismatch"
                message = (
                    f"the claim says {claim_text[v.start : v.end]}; "
                    f"the evidence says {evidence_text[other.start : other.end]}"
                )
                found = Finding(code, message, Span(v.start, v.end), Span(other.start, other.end))
                return [(found, set())]
        return []

    def _entities(
        self,
        cw: list[Word],
        ew: list[Word],
        window: list[int],
        elsewhere: str,
    ) -> list[tuple[Finding, set[int]]]:
        """A name of the claim's that no evidence has, where this clause has another name
        of that kind in the same place: after the same word ("starring Julia
        Louis-Dreyfus"), the same preposition ("a drama by Eugène Ionesco") or, for
        exceptions, alone in the clause."""
        mine = _names(cw)
        theirs = [(ids, kind) for ids, kind in _names(ew) if all(j in window for j in ids)]
        claimed = {cw[i].text.lower() for ids, _ in mine for i in ids}
        for ids, kind in mine:
            parts = [cw[i].text.lower() for i in ids if cw[i].pos in ("PROPN", "NOUN", "IDENT")]
            if not parts or all(_mentioned(part, elsewhere) for part in parts):
                continue
            rivals = [
                other
                for other, k in theirs
                if k == kind and not any(ew[j].text.lower() in claimed for j in other)
            ]
            place = _place(cw, ids)
            rival = next((r for r in rivals if place & _place(ew, r)), None)
            if rival is None and kind == "exception" and len(rivals) == 1:
                rival = rivals[0]
            if rival is not None:
                said = " ".join(cw[i].text for i in ids)
                other_text = " ".join(ew[j].text for j in rival)
                message = f"the claim names {said}; the evidence names {other_text}"
                claim_span = Span(cw[ids[0]].start, cw[ids[-1]].end)
                evidence_span = Span(ew[rival[0]].start, ew[rival[-1]].end)
                return [(Finding("entity_mismatch", message, claim_span, evidence_span), set(ids))]
        return []


# Code on both sides: a tuple or argument list, or an expression whose operator does
# not commute ("base**exp", "x//y"); its words and symbols, compared in order.
_ARGUMENTS = re.compile(r"\(([^()]*,[^()]*)\)")
_OPERAND = r"(?:[A-Za-z_]\w*|\d+(?:\.\d+)?)"
_ORDERED = re.compile(rf"{_OPERAND}(?:\s*(?:\*\*|//|<<|>>|%)\s*{_OPERAND})+")
_CODE_TOKEN = re.compile(r"\w+|\*\*|//|<<|>>|[^\s\w]")


def _code(text: str) -> list[tuple[Span, tuple[str, ...]]]:
    found = [*_ARGUMENTS.finditer(text), *_ORDERED.finditer(text)]
    return [(Span(m.start(), m.end()), tuple(_CODE_TOKEN.findall(m.group(0)))) for m in found]


def _expressions(
    claim_text: str, evidence_text: str, cw: list[Word]
) -> list[tuple[Finding, set[int]]]:
    """The same code with its parts in another order: "(x%y, x//y)" / "(x//y, x%y)"."""
    theirs = _code(evidence_text)
    for span, tokens in _code(claim_text):
        for other, their_tokens in theirs:
            if tokens != their_tokens and sorted(tokens) == sorted(their_tokens):
                message = (
                    f"the claim has {span.slice(claim_text)}; "
                    f"the evidence has {other.slice(evidence_text)}"
                )
                involved = {i for i, w in enumerate(cw) if span.start <= w.start < span.end}
                return [(Finding("role_swap", message, span, other), involved)]
    return []


def _names(ws: list[Word]) -> list[tuple[list[int], str]]:
    """The named entities and code names of a text, each as its words and its kind."""
    out: list[tuple[list[int], str]] = []
    for i, w in enumerate(ws):
        if not w.entity or w.name < 0:
            continue
        if out and ws[out[-1][0][-1]].name == w.name and out[-1][0][-1] == i - 1:
            out[-1][0].append(i)
        else:
            out.append(([i], w.entity))
    return out


def _mentioned(part: str, text: str) -> bool:
    """A word of a name in a text, at the start of a word ("Chris" in "Christopher")."""
    return re.search(rf"(?<!\w){re.escape(part)}", text) is not None


def _place(ws: list[Word], ids: list[int]) -> set[str]:
    """Where a name stands: the preposition right before it, the nearest content word
    before it (not a name) within reach, and the noun it qualifies ("a New Zealand
    singer-songwriter")."""
    out: set[str] = set()
    for k in range(ids[0] - 1, max(ids[0] - 2 - _REACH, -1), -1):
        w = ws[k]
        # "to" before a name is a preposition, whatever the tagger says ("writes to sys.stderr").
        if (w.pos == "ADP" or w.key == "to") and not out:
            out.add(f"adp:{w.key}")
        elif w.content and not w.entity and w.pos != "PUNCT":
            out.add(w.key)
            break
    head = None
    for w in ws[ids[-1] + 1 :]:
        if w.text == "-" or (w.pos in ("ADJ", "NOUN") and not w.entity):
            head = w.key if w.pos == "NOUN" else head
            continue
        break
    if head is not None:
        out.add(head)
    return out


def _quantifier(ws: list[Word], k: int) -> str | None:
    """The kind of quantifier a word is; "any" in a condition is "some" ("True if any
    element is true"), elsewhere it is not read ("any sequence")."""
    if ws[k].key == "any":
        return "partial" if _in_condition(ws, k) else None
    return QUANTIFIERS.get(ws[k].key)


def _in_condition(ws: list[Word], k: int) -> bool:
    """Word ``k`` comes after "if", "when", "whenever" or "unless"."""
    return any(w.key in _CONDITIONS for w in ws[:k])


_MORE_THAN_ONE = frozenset({"several", "many", "multiple", "various", "numerous"})
_JUST = frozenset({"exactly", "only", "just", "precisely"})


def _single(ws: list[Word], where: Iterable[int]) -> list[int]:
    """Where a text says just one: "exactly one", "only one", "a single"."""
    return [
        k
        for k in where
        if k > 0
        and (
            (ws[k].lower == "one" and ws[k - 1].lower in _JUST)
            or (ws[k].lower == "single" and ws[k - 1].lower in {"a", "one"} | _JUST)
        )
    ]


def _near(window: list[int], matched: dict[int, int]) -> list[int]:
    """The part of a clause around the words it shares with the claim."""
    inside = [j for j in matched.values() if j in window]
    if not inside:
        return window
    low, high = min(inside) - _REACH, max(inside) + _REACH
    return [j for j in window if low <= j <= high]


def _scale(w: Word) -> tuple[int, int] | None:
    """Where a word sits on a scale of :data:`ORDER` (never a name: "South Island")."""
    if w.pos == "PROPN" or w.entity or (w.start > 0 and w.text[:1].isupper()):
        return None
    return ORDER.get(w.lower, ORDER.get(w.key))


def _relation(ws: list[Word], r: int) -> bool:
    w = ws[r]
    if w.pos == "VERB":
        return True
    return w.pos in ("NOUN", "ADJ") and _preposition(ws, r) != ""


def _preposition(ws: list[Word], r: int, voices: Collection[str] = ()) -> str:
    """The preposition right after a word, if any ("a subclass of", "starred in");
    not the "by" of a passive compared with an active verb ("is voiced by")."""
    after = ws[r + 1].key if r + 1 < len(ws) and ws[r + 1].pos == "ADP" else ""
    return "" if after == "by" and "passive" in voices else after


def _twice(w: Word, ew: list[Word], window: list[int]) -> bool:
    return sum(_same(w, ew[j]) for j in window) > 1


def _description(ew: list[Word], cw: list[Word]) -> bool:
    """The sentence starts with "the" and a noun the claim does not use: "The couple"."""
    return (
        len(ew) > 1
        and ew[0].key == "the"
        and ew[1].pos == "NOUN"
        and not _Vocabulary(cw).has(ew[1])
    )


def _both_sides(w: Word, ew: list[Word], window: list[int], pivot: int) -> bool:
    """A word the clause says before its relation and after it ("son of Sennacherib ...,
    Sennacherib's wife" says it twice, both times after "son")."""
    return len({j < pivot for j in window if _same(w, ew[j])}) > 1


def _negates(ws: list[Word], i: int) -> bool:
    """A negation, but not "not only", nor the word named ("the "not" operator")."""
    w = ws[i]
    if w.key not in NEGATIONS:
        return False
    after = ws[i + 1].key if i + 1 < len(ws) else ""
    before = ws[i - 1].text if i > 0 else ""
    if after in ("only", "just", "merely", "operator", "keyword") or before in ('"', "'", "“", "‘"):
        return False
    return before.lower() != "the" or w.key != "not"


def _about(
    other: list[Word],
    ws: list[Word],
    i: int,
    turned: set[int],
    among: Sequence[int] | None = None,
) -> bool:
    """Whether a negation bears on what the other side says: the first content word
    after it (within reach) is one the other side has (``among`` its words) or one
    turned round, or none follows."""
    look = [other[k] for k in among] if among is not None else other
    for k in range(i + 1, min(i + 2 + _REACH, len(ws))):
        if ws[k].content and ws[k].key not in NEGATIONS:
            return k in turned or any(_same(c, ws[k]) for c in look if c.content)
    return True


def _span(ws: list[Word], part: list[int]) -> Span:
    return Span(ws[part[0]].start, ws[part[-1]].end)


def _voice(ws: list[Word], k: int) -> str:
    """``passive`` with its agent ("is voiced by"), ``active``, or ``unknown`` for a
    passive without one ("are shared between calls": who does what is not said)."""
    if k < 0 or ws[k].tag != "VBN":
        return "active"
    for w in ws[k + 1 : k + 7]:  # "directed and co-produced by"
        if w.key == "by":
            return "passive"
        if w.pos in ("VERB", "AUX") and w.tag != "VBN":
            break
    if any(w.key == "be" for w in ws[max(k - 3, 0) : k]):
        return "unknown"
    return "active"


def _kinds_differ(w: Word, ew: list[Word], j: int) -> bool:
    """A code name matched with a plain word ("input()" and "reading input")."""
    return j >= 0 and (w.pos == "IDENT") != (ew[j].pos == "IDENT")


def _listed(ws: list[Word], a: int, b: int) -> bool:
    """Only 'and', 'or' and commas between two words: a list, which can be in any order."""
    between = [w for w in ws[a + 1 : b] if w.pos != "DET"]
    return all(w.key in ("and", "or", ",", "&") for w in between)


def _slot(ws: list[Word], value: _Value) -> int | None:
    """The word a value belongs to."""
    head = None
    for i in (i for i, w in enumerate(ws) if w.start >= value.end):
        w = ws[i]
        if w.text == "-" or (w.pos in ("ADJ", "NOUN", "PROPN") and not _is_value(w)):
            # the noun the value and its modifiers qualify: "seven basic tastes",
            # "a 2015 American science fiction film", "the second-smallest planet"
            head = i if w.pos in ("NOUN", "PROPN") else head
            continue
        break
    if head is not None:
        return head
    skipped = 0
    for i in reversed([i for i, w in enumerate(ws) if w.end <= value.start]):
        w = ws[i]
        if _is_value(w) or w.pos in ("PUNCT", "PROPN") or w.entity:
            continue
        if w.content:
            return i
        skipped += 1
        if skipped > _REACH:
            break
    return None


def _is_value(w: Word) -> bool:
    low = w.lower
    return (
        bool(re.match(r"^-?\d", low)) or low in _MONTHS or low in _NUMBER_WORDS or low in _ORDINALS
    )


def _kind(v: _Value) -> str:
    return v.kind


def _code_kind(text: str) -> str:
    """Exception names and dotted names are compared as names of their own kinds."""
    if re.search(r"^[A-Z]\w*(Error|Exception|Warning|Exit|Interrupt|Iteration)$", text):
        return "exception"
    if re.match(r"^\w+(\.\w+)+$", text):
        return "dotted"
    return ""


def matching(comparisons: Sequence[Comparison]) -> int:
    """Which sentence matches the claim: it names the subject and lines up most of it.

    Ties go to the first (the most similar).
    """
    return max(
        range(len(comparisons)),
        key=lambda k: (comparisons[k].subject, comparisons[k].aligned, -k),
    )
