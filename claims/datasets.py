"""Labelled sets in the evaluation shape (``../shared/eval``): reading, gold evidence, splits.

A row has ``id``, ``label`` and either ``claim`` or ``response`` (+ optional
``question``), with ``evidence_ids`` into a corpus of ``{"id", "title",
"text"}`` passages; ``candidate_evidence`` (climate_fever) lists every sentence
the annotators judged. Labels: SUPPORTED, REFUTED, NOT_ENOUGH_INFO (``NEI``
accepted), HALLUCINATED (per response) and DISPUTED (skipped when scoring).

Two more shapes are read the same way:

- contrastive rows (``bench/contrast``): a claim with a ``type`` (the kind of
  change that makes the false twin false), its twin's ``pair`` id and a fixed
  ``split``;
- inference pairs (``../shared/nli``): ``premise`` and ``hypothesis``, the
  hypothesis verified as the claim with the premise as its one passage;
  entailment, contradiction and neutral are SUPPORTED, REFUTED and
  NOT_ENOUGH_INFO, and the two-way ``non_entailment`` is NOT_SUPPORTED
  (REFUTED or NOT_ENOUGH_INFO), scored as anything but SUPPORTED.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from claims.types import Passage, Span

LABELS = (
    "SUPPORTED",
    "REFUTED",
    "NOT_ENOUGH_INFO",
    "HALLUCINATED",
    "DISPUTED",
    "NOT_SUPPORTED",
)
_ALIASES = {
    "NEI": "NOT_ENOUGH_INFO",
    "ENTAILMENT": "SUPPORTED",
    "CONTRADICTION": "REFUTED",
    "NEUTRAL": "NOT_ENOUGH_INFO",
    "NON_ENTAILMENT": "NOT_SUPPORTED",
    "NOT ENOUGH INFO": "NOT_ENOUGH_INFO",
    "SUPPORTS": "SUPPORTED",
    "REFUTES": "REFUTED",
}


class DataError(ValueError):
    """A labelled file that cannot be read; the message names the file and line."""


def normalise_label(raw: object) -> str:
    label = str(raw).strip().upper()
    label = _ALIASES.get(label, label)
    if label not in LABELS:
        raise ValueError(f"unknown label {raw!r}; expected one of {', '.join(LABELS)}")
    return label


@dataclass(frozen=True)
class Item:
    """One labelled row.

    Attributes:
        gold_ids: The passages a verifier gets in the gold setting: every
            ``candidate_evidence`` id when the row has them (so the count does not
            leak the label), else ``evidence_ids``.
        group: Rows that share a group are split together (the answers to one question).
        sentence_labels: Per-candidate labels (climate_fever), ``id -> label``.
        reduced: FEVER SufficientFacts variants: ``(label, [(title, sentence)...])``.
        kind: The kind of change a contrastive row's false twin makes (``antonym``…).
        part: A split the row names itself (``split``), which :func:`split` returns.
        passages: Evidence that comes with the row (an inference pair's premise).
    """

    id: str
    label: str
    claim: str | None
    response: str | None
    question: str | None
    evidence_ids: tuple[str, ...]
    gold_ids: tuple[str, ...]
    group: str
    sentence_labels: dict[str, str] = field(default_factory=dict)
    reduced: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    kind: str | None = None
    part: str | None = None
    passages: tuple[Passage, ...] = ()


def _group(row_id: str, row: dict[str, Any]) -> str:
    if row.get("pair"):
        return f"pair:{row['pair']}"
    if row.get("response") is not None and row.get("question"):
        return "q:" + hashlib.sha256(str(row["question"]).encode()).hexdigest()[:16]
    return row_id


def read_items(path: Path) -> Iterator[Item]:
    """Rows of a labelled JSONL file, in order. Raises ``DataError`` on a bad row."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield _item(json.loads(line))
            except (ValueError, TypeError, KeyError) as exc:
                raise DataError(f"{path}:{number}: {exc}") from exc


def _item(row: dict[str, Any]) -> Item:
    if not isinstance(row, dict):
        raise ValueError("a row must be a JSON object")
    row_id = str(row["id"])
    if "premise" in row and "hypothesis" in row:
        return _pair_item(row_id, row)
    claim, response = row.get("claim"), row.get("response")
    if not isinstance(claim, str) and not isinstance(response, str):
        raise ValueError("a row needs a 'claim' or a 'response' string")
    evidence = tuple(str(e) for e in row.get("evidence_ids") or ())
    candidates = row.get("candidate_evidence") or []
    sentence_labels = {
        str(c["id"]): normalise_label(c["label"]) for c in candidates if c.get("label")
    }
    reduced = tuple(
        (
            "NOT_ENOUGH_INFO",
            tuple((str(title), str(text)) for title, text in v.get("reduced_evidence") or ()),
        )
        for v in row.get("sf_variants") or ()
        if str(v.get("label_after", "")).upper() == "NOT ENOUGH" and v.get("reduced_evidence")
    )
    return Item(
        id=row_id,
        label=normalise_label(row["label"]),
        claim=claim if isinstance(claim, str) else None,
        response=response if isinstance(response, str) else None,
        question=str(row["question"]) if row.get("question") else None,
        evidence_ids=evidence,
        gold_ids=tuple(str(c["id"]) for c in candidates) or evidence,
        group=_group(row_id, row),
        sentence_labels=sentence_labels,
        reduced=reduced,
        kind=str(row["type"]) if row.get("type") else None,
        part=str(row["split"]) if row.get("split") else None,
    )


def _pair_item(row_id: str, row: dict[str, Any]) -> Item:
    premise, hypothesis = row["premise"], row["hypothesis"]
    if not isinstance(premise, str) or not isinstance(hypothesis, str):
        raise ValueError("'premise' and 'hypothesis' must be strings")
    passage = Passage(f"{row_id}:premise", f"{row_id}:premise", "", premise, Span(0, len(premise)))
    return Item(
        id=row_id,
        label=normalise_label(row["label"]),
        claim=hypothesis,
        response=None,
        question=None,
        evidence_ids=(),
        gold_ids=(),
        group=row_id,
        part=str(row["split"]) if row.get("split") else None,
        passages=(passage,),
    )


def read_corpus(path: Path) -> dict[str, Passage]:
    """A ``{"id", "title", "text"}`` JSONL corpus as passages keyed by id."""
    passages: dict[str, Passage] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                pid, text = str(row["id"]), str(row["text"])
            except (ValueError, TypeError, KeyError) as exc:
                raise DataError(f"{path}:{number}: {exc}") from exc
            title = str(row.get("title") or "")
            passages[pid] = Passage(pid, pid, title, text, Span(0, len(text)))
    return passages


def gold_evidence(item: Item, corpus: dict[str, Passage]) -> list[Passage]:
    """The row's own passages, or those of ``item.gold_ids`` (an unknown id is a ``DataError``)."""
    if item.passages:
        return list(item.passages)
    missing = [pid for pid in item.gold_ids if pid not in corpus]
    if missing:
        raise DataError(f"row {item.id}: evidence ids not in the corpus: {', '.join(missing[:3])}")
    return [corpus[pid] for pid in item.gold_ids]


def split(item: Item, seed: str = "claimsieve-eval-1") -> str:
    """The split the row names, else ``"train"`` or ``"test"`` by a hash of its group.

    The hash puts about half of the rows in each, and the rows of one group
    (the answers to one question, a true statement and its twin) together.
    """
    if item.part is not None:
        return item.part
    digest = hashlib.sha256(f"{seed}:{item.group}".encode()).digest()
    return "train" if digest[0] % 2 == 0 else "test"
