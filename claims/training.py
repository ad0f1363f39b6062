"""``claimsieve train``: examples from labelled sets, generated pairs and reviews; a new head.

Four sources of labelled claim/evidence examples, in any mix:

- labelled sets in the eval shape (``claims.datasets``): claim rows with their
  gold evidence; climate_fever's per-sentence judgements as extra one-sentence
  examples; FEVER SufficientFacts variants (evidence cut down) as
  NOT_ENOUGH_INFO; response rows split into claims (every claim of a SUPPORTED
  answer is SUPPORTED; a HALLUCINATED answer with one checkworthy claim gives a
  REFUTED claim, longer ones are left out since which claim is wrong is unknown);
- human-labelled inference pairs (``../shared/nli``: premise as the one
  evidence passage, hypothesis as the claim), de-duplicated, with every pair
  that an evaluation-only file holds left out;
- pairs generated from documents (``claims.generate``), e.g. the user's corpus;
- trainer reviews in the database (the latest label per claim, with the
  evidence the verifier saw), weighted above the rest.

A base head's training matrix can be carried along (``--base``), so reviews
are added to what the head already knew rather than replacing it.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from claims.cross import CrossHead, Pair, evidence_text
from claims.datasets import gold_evidence, read_corpus, read_items, split
from claims.extraction import Extractor
from claims.features import FEATURES, FeatureExtractor, rank_sentences, unencoded_sentences
from claims.head import CLASSES, Head, TrainReport, train
from claims.types import Passage, Span


@dataclass(frozen=True)
class Example:
    claim: str
    evidence: tuple[Passage, ...]
    label: str
    source: str
    weight: float = 1.0


def labelled_examples(
    claims_path: Path,
    corpus_path: Path,
    extractor: Extractor | None = None,
    part: str = "all",
    source: str | None = None,
) -> list[Example]:
    """Examples from one labelled set (``part``: ``all``, ``train`` or ``test`` of the split)."""
    corpus = read_corpus(corpus_path)
    name = source or claims_path.parent.name
    out: list[Example] = []
    for item in read_items(claims_path):
        if item.label == "DISPUTED" or (part != "all" and split(item) != part):
            continue
        evidence = tuple(gold_evidence(item, corpus))
        if item.claim is not None:
            out.append(Example(item.claim, evidence, item.label, name))
            for pid, label in item.sentence_labels.items():
                if label in CLASSES and pid in corpus:
                    out.append(Example(item.claim, (corpus[pid],), label, f"{name}:sentence"))
            for k, (label, reduced) in enumerate(item.reduced):
                passages = tuple(
                    Passage(f"{item.id}:reduced{k}:{j}", item.id, title, text, Span(0, len(text)))
                    for j, (title, text) in enumerate(reduced)
                )
                out.append(Example(item.claim, passages, label, f"{name}:reduced"))
        elif item.response is not None and extractor is not None:
            claims = [
                c for c in extractor.extract(item.response, item.question).claims if c.checkworthy
            ]
            if item.label == "SUPPORTED":
                out += [Example(c.text, evidence, "SUPPORTED", name) for c in claims]
            elif len(claims) == 1:
                out.append(Example(claims[0].text, evidence, "REFUTED", name))
    return out


# ../shared/nli/README.md: which files may train the shipped head, and which are for evaluation.
NLI_TRAIN = ("snli", "cad_snli", "breaking_nli", "negation_nli", "negation_rte", "med")
NLI_EVAL_ONLY = ("sick", "chaosnli", "control")
# Pairs written as captions of one photo: there an unrelated event "contradicts" the premise
# (one scene cannot be both), where a fact checker has nothing to go on. SICK, which is not
# captions, has 2 such contradictions in 1,585 against 873 neutrals.
NLI_CAPTIONS = ("snli", "cad_snli")


def _content_words(text: str) -> set[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    words = re.findall(r"[a-z]+", text.lower())
    return {w.rstrip("s") for w in words if len(w) > 2 and w not in STOP_WORDS}


def shares_content_word(premise: str, hypothesis: str) -> bool:
    """Whether the two have a word in common that is not a stop word (plural ``s`` aside)."""
    return bool(_content_words(premise) & _content_words(hypothesis))


def _pair_key(item: Any) -> tuple[str, str]:
    return (" ".join(item.passages[0].text.lower().split()), " ".join(item.claim.lower().split()))


def nli_examples(
    folder: Path,
    names: Sequence[str] = NLI_TRAIN,
    exclude: Sequence[str] = NLI_EVAL_ONLY,
    distractors: float = 0.5,
    seed: int = 0,
    unrelated_captions_two_way: bool = False,
) -> list[Example]:
    """Inference pairs from ``folder/<name>.jsonl`` as examples, each pair once.

    A pair (premise, hypothesis, compared without case or spacing) is kept
    the first time it is met, in the order of ``names``; a pair given two
    different labels is dropped, and so is every pair that a file of
    ``exclude`` holds (evaluation rows never train). A ``distractors`` share of
    the examples get one to three premises of other pairs beside their own, so
    that, as with retrieved evidence, the sentence that decides is among
    others (premises are scenes of their own, so the label stands).
    With ``unrelated_captions_two_way``, a contradiction from a file of
    :data:`NLI_CAPTIONS` that shares no content word with its premise is
    labelled ``NOT_SUPPORTED`` (REFUTED or NOT_ENOUGH_INFO,
    ``claims.cross.PARTIAL``): it says that another event happened, which a
    caption of the same photo rules out and a source does not. (Measured with
    the cross head, it did not help: see ``bench/default_head.py``.)
    """
    import random

    held: set[tuple[str, str]] = set()
    for name in exclude:
        path = folder / f"{name}.jsonl"
        if path.is_file():
            held.update(_pair_key(item) for item in read_items(path))
    first: dict[tuple[str, str], tuple[Any, str]] = {}
    conflicting: set[tuple[str, str]] = set()
    for name in names:
        for item in read_items(folder / f"{name}.jsonl"):
            key = _pair_key(item)
            if key in held or key in conflicting:
                continue
            if key in first:
                if first[key][0].label != item.label:
                    conflicting.add(key)
                    del first[key]
                continue
            first[key] = (item, name)
    rng = random.Random(seed)
    premises = list(dict.fromkeys(item.passages[0].text for item, _ in first.values()))
    out = []
    for item, name in first.values():
        evidence = list(item.passages)
        if rng.random() < distractors:
            for k in range(rng.randint(1, 3)):
                other = rng.choice(premises)
                if other != evidence[0].text:
                    pid = f"{item.id}:other{k}"
                    evidence.append(Passage(pid, pid, "", other, Span(0, len(other))))
            rng.shuffle(evidence)
        assert item.claim is not None
        label = item.label
        if (
            unrelated_captions_two_way
            and label == "REFUTED"
            and name in NLI_CAPTIONS
            and not shares_content_word(item.passages[0].text, item.claim)
        ):
            label = "NOT_SUPPORTED"
        out.append(Example(item.claim, tuple(evidence), label, f"nli_{name}"))
    return out


def generated_examples(
    passages: Sequence[Passage], encoder: Any, nlp: Any, n: int, seed: int = 0
) -> list[Example]:
    """Pairs made from ``passages`` by ``claims.generate`` (no human labels)."""
    from claims.generate import Generator

    pairs = Generator(encoder, nlp, seed).pairs(passages, n)
    return [Example(p.claim, p.evidence, p.label, f"generated:{p.kind}") for p in pairs]


def balanced_by_source(examples: Sequence[Example]) -> list[Example]:
    """``examples`` reweighted so that inside each data set every label weighs the same.

    Each data set (the part of ``source`` before ``:``) keeps its total
    weight. Without this, a set whose rows lean to one label (halueval_qa:
    two hallucinated answers to one right one) teaches a head that claims
    written in its style mean that label, which misleads it on other sets
    written alike (FEVER's entity claims look like halueval_qa's).
    """
    totals: dict[str, float] = {}
    shares: dict[tuple[str, str], float] = {}
    for e in examples:
        name = e.source.split(":")[0]
        totals[name] = totals.get(name, 0.0) + e.weight
        shares[name, e.label] = shares.get((name, e.label), 0.0) + e.weight
    labels = {name: sum(key[0] == name for key in shares) for name in totals}
    out = []
    for e in examples:
        name = e.source.split(":")[0]
        scale = totals[name] / (labels[name] * shares[name, e.label])
        out.append(replace(e, weight=e.weight * scale))
    return out


def passages_of(documents: Iterable[Any], max_tokens: int, embedder: Any) -> list[Passage]:
    """Documents (``retrieval.types.Document``) cut into passages as the index cuts them.

    Without overlap: generation should not read a sentence twice.
    """
    from retrieval.snapshots import Chunking
    from retrieval.snapshots import passages_of as cut

    out = []
    for document in documents:
        for p in cut(document, Chunking(max_tokens, 0), embedder):
            out.append(Passage(p.id, p.document_id, p.title, p.text, Span(p.start, p.end)))
    return out


def review_examples(rows: Iterable[dict[str, Any]], weight: float = 5.0) -> list[Example]:
    """The latest reviewed label of each claim (export rows), with the evidence it was shown."""
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        latest[row["claim"]["id"]] = row
    out = []
    for row in latest.values():
        claim, label = row["claim"], row["review"]["label"]
        if label not in CLASSES:
            continue
        evidence = tuple(
            Passage(
                e["passage_id"],
                e["document_id"],
                e["title"],
                e["text"],
                Span(e["doc_span"]["start"], e["doc_span"]["end"]),
            )
            for e in claim["evidence"]
        )
        out.append(Example(claim["text"], evidence, label, "review", weight))
    return out


def hold_out(
    examples: Sequence[Example], share: float = 0.2
) -> tuple[list[Example], list[Example]]:
    """Split reviews into (train, held out) by a hash of the claim text (stable across runs)."""
    train_part: list[Example] = []
    held: list[Example] = []
    for e in examples:
        digest = hashlib.sha256(e.claim.encode()).digest()
        (held if digest[0] < share * 256 else train_part).append(e)
    return train_part, held


def score(
    head: Head,
    x: NDArray[np.float32],
    labels: Sequence[str],
    cross: tuple[NDArray[np.float64], float, float] | None = None,
) -> dict[str, float | None]:
    """Accuracy, macro-F1 and ECE of ``head`` on labelled feature rows.

    With ``cross`` (the cross head's probabilities of the rows, and its mix weight
    and temperature), of the two mixed as served.
    """
    from claims import metrics
    from claims.cross import combine

    scores = head.scores(x)
    if cross is not None:
        scores = combine(scores, *cross)
    pred = [max(s, key=lambda k: s[k]) for s in scores]
    summary = metrics.summary(metrics.confusion(list(labels), pred))
    return {
        "accuracy": summary["accuracy"],
        "macro_f1": summary["macro_f1"],
        "ece": metrics.expected_calibration_error(
            [max(s.values()) for s in scores],
            [p == g for p, g in zip(pred, labels, strict=True)],
        ),
    }


def featurize(
    examples: Sequence[Example],
    extractor: FeatureExtractor,
    batch: int = 128,
    progress: bool = True,
    refutes: list[str] | None = None,
) -> NDArray[np.float32]:
    """The feature matrix of ``examples`` (a progress bar on stderr).

    ``refutes``, when given, receives each row's gating finding code ("" for none).
    """
    from tqdm import tqdm

    rows: list[NDArray[np.float32]] = []
    with tqdm(
        total=len(examples), desc="features", unit="pair", file=sys.stderr, disable=not progress
    ) as bar:
        for start in range(0, len(examples), batch):
            chunk = examples[start : start + batch]
            found = extractor.extract([e.claim for e in chunk], [list(e.evidence) for e in chunk])
            rows += [f.vector for f in found]
            if refutes is not None:
                refutes += [f.refutes.code if f.refutes else "" for f in found]
            bar.update(len(chunk))
    return np.stack(rows) if rows else np.zeros((0, len(FEATURES)), dtype=np.float32)


def fit(
    examples: Sequence[Example],
    x: NDArray[np.float32],
    base: Head | None = None,
    seed: int = 0,
    card: dict[str, Any] | None = None,
) -> tuple[Head, TrainReport]:
    """Train a head on ``examples`` (plus the base head's own training rows, when it has them)."""
    labels = [e.label for e in examples]
    weights = np.array([e.weight for e in examples], dtype=np.float32)
    sources: dict[str, int] = {}
    for e in examples:
        key = e.source.split(":")[0]
        sources[key] = sources.get(key, 0) + 1
    if base is not None:
        if base.training is None:
            raise ValueError("the base head carries no training rows (training.npz); train afresh")
        bx, blabels, bweights = base.training
        x = np.concatenate([bx, x]) if len(x) else bx
        labels = [*blabels, *labels]
        weights = np.concatenate([bweights, weights])
        before = dict(base.card.get("trained_on", {}))
        sources = {k: before.get(k, 0) + sources.get(k, 0) for k in {**before, **sources}}
    head, report = train(x, labels, weights, FEATURES, seed=seed)
    head.card = {
        **(card or {}),
        "trained_on": sources,
        "rows": len(labels),
        "label_counts": report.label_counts,
        "calibration_fit": {
            "method": report.calibration,
            "held_out_rows": report.held_out,
            "ece_before": report.ece_before,
            "ece_after": report.ece_after,
        },
    }
    return head, report


def adapt_cross(cross: CrossHead, examples: Sequence[Example], encoder: Any) -> CrossHead:
    """The cross head with its classifier refitted on the human-labelled ``examples``.

    Generated pairs are left out: the cross head was never trained on them.
    Returned unchanged when there are none.
    """
    human = [e for e in examples if not e.source.startswith("generated:")]
    if not human:
        return cross
    pairs = cross_pairs(human, encoder)
    return cross.adapted(cross.pooled(pairs), pairs)


def cross_pairs(examples: Sequence[Example], encoder: Any, batch: int = 256) -> list[Pair]:
    """Cross-encoder inputs of ``examples``: each claim with its best evidence sentences."""
    out: list[Pair] = []
    for start in range(0, len(examples), batch):
        chunk = examples[start : start + batch]
        claims = [e.claim for e in chunk]
        evidence = [list(e.evidence) for e in chunk]
        texts = list(dict.fromkeys([*claims, *unencoded_sentences(evidence)]))
        vectors = dict(zip(texts, encoder.encode(texts), strict=True))
        aligned = rank_sentences(claims, evidence, vectors)
        out += [
            Pair(e.claim, evidence_text(a), e.label, e.weight)
            for e, a in zip(chunk, aligned, strict=True)
        ]
    return out


@dataclass
class TrainedHead:
    """A head fitted by :func:`train_head`, its cross head, and what the fit measured.

    Attributes:
        head: The new feature head.
        report: Its fit (rows per label, calibration and its held-out ECE).
        cross: The base's cross head, its classifier refitted on the new labels when
            they are human ones (``adapted``); ``None`` without a base.
        held_out: Accuracy, macro-F1 and ECE on the held-out reviews, of the base
            (``before``, when there is one) and of the new heads mixed as served
            (``after``); ``None`` when none were held out.
        held: How many reviews were held out.
    """

    head: Head
    report: TrainReport
    cross: CrossHead | None = None
    adapted: bool = False
    held_out: dict[str, dict[str, float | None] | None] | None = None
    held: int = 0

    def save(self, folder: Path) -> None:
        self.head.save(folder)
        if self.cross is not None:
            self.cross.save(folder)


def train_head(
    examples: Sequence[Example],
    extractor: FeatureExtractor,
    encoder: Any,
    card: dict[str, Any],
    base: Head | None = None,
    base_cross: CrossHead | None = None,
    held: Sequence[Example] = (),
    seed: int = 0,
) -> TrainedHead:
    """Fit a feature head on ``examples`` (with the base's rows), carry the base's cross head
    along (its classifier refitted on the new human labels), and score both on ``held``.

    Args:
        card: What the new head's card says (name, version, base); its version is the
            adapted cross head's version too (checks record which one judged).
    """
    x = featurize(examples, extractor)
    head, report = fit(examples, x, base=base, seed=seed, card=card)
    trained = TrainedHead(head, report, base_cross)
    if base_cross is not None:
        new_cross = adapt_cross(base_cross, examples, encoder)
        if new_cross is not base_cross:
            new_cross.card["version"] = card.get("version", new_cross.version)
            trained.cross, trained.adapted = new_cross, True
    if held:
        x_held = featurize(held, extractor, progress=False)
        labels = [e.label for e in held]
        mixes: tuple[Any, Any] = (None, None)
        if base_cross is not None and trained.cross is not None:
            # One forward pass; the two classifiers read the same pooled vectors.
            pooled = base_cross.pooled(cross_pairs(held, encoder))
            mixes = (
                (base_cross.classify(pooled), *base_cross.mix),
                (trained.cross.classify(pooled), *trained.cross.mix),
            )
        trained.held = len(held)
        trained.held_out = {
            "before": score(base, x_held, labels, mixes[0]) if base is not None else None,
            "after": score(head, x_held, labels, mixes[1]),
        }
    return trained
