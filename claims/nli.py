"""The ``nli`` backend: a sentence-transformers CrossEncoder NLI model from a local folder.

Each claim is paired with every sentence of its passages (read with the
passage title); the model's entailment, contradiction and neutral
probabilities are read in the label order the model was trained with
(configurable, e.g. ``contradiction,entailment,neutral``). The claim is
SUPPORTED by its most entailing sentence, REFUTED by its most contradicting
one, and NOT_ENOUGH_INFO when neither stands out. A hub id is never accepted:
nothing is downloaded at run time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from claims.errors import ClaimsError
from claims.types import Claim, EvidenceJudgement, Label, Passage, Reason, Span, Stance, Verdict
from retrieval.text import split_sentences, titled

NLI_LABELS = ("entailment", "contradiction", "neutral")


class NLIModelError(ClaimsError):
    code = "nli_model_error"


def parse_label_order(order: str) -> tuple[str, ...]:
    """``"contradiction,entailment,neutral"`` → a tuple; each NLI label exactly once."""
    labels = tuple(part.strip().lower() for part in order.split(","))
    if sorted(labels) != sorted(NLI_LABELS):
        raise ValueError(
            f"the NLI label order must name entailment, contradiction and neutral once each, "
            f"got {order!r}"
        )
    return labels


class NLIVerifier:
    """Verdicts from a local CrossEncoder NLI model.

    Args:
        path: A folder saved by sentence-transformers or transformers (never a hub id).
        label_order: The model's output order, e.g. ``("contradiction", "entailment", "neutral")``.
        batch_size: Pairs per forward pass.
    """

    name = "nli"

    def __init__(
        self, path: Path, label_order: Sequence[str] = NLI_LABELS, batch_size: int = 32
    ) -> None:
        if not Path(path).is_dir():
            raise NLIModelError(
                f"{path}: no such model folder (the nli backend loads local paths only)"
            )
        os.environ["HF_HUB_OFFLINE"] = "1"
        from sentence_transformers import CrossEncoder

        self._model: Any = CrossEncoder(str(path), device="cpu")
        outputs = int(getattr(self._model.model.config, "num_labels", 3))
        if outputs != 3:
            raise NLIModelError(f"{path} has {outputs} outputs; an NLI model has 3")
        self._order = tuple(label_order)
        self._batch = batch_size
        self.version = Path(path).name

    def verify(
        self, claims: Sequence[Claim], evidence: Sequence[Sequence[Passage]]
    ) -> list[Verdict]:
        if len(claims) != len(evidence):
            raise ValueError("verify() needs one evidence list per claim")
        units = [
            [
                (p, Span(s, e))
                for p in passages
                for s, e in (split_sentences(p.text) or [(0, len(p.text))])
            ]
            for passages in evidence
        ]
        pairs = [
            (claim.text, titled(p.title, span.slice(p.text)))
            for claim, per_claim in zip(claims, units, strict=True)
            for p, span in per_claim
        ]
        probs = (
            np.asarray(
                self._model.predict(
                    pairs, batch_size=self._batch, apply_softmax=True, show_progress_bar=False
                )
            )
            if pairs
            else np.zeros((0, 3))
        )
        column = {label: self._order.index(label) for label in NLI_LABELS}
        out, cursor = [], 0
        for per_claim in units:
            rows = probs[cursor : cursor + len(per_claim)]
            cursor += len(per_claim)
            out.append(self._decide(per_claim, rows, column))
        return out

    @staticmethod
    def _decide(
        units: list[tuple[Passage, Span]], rows: np.ndarray, column: dict[str, int]
    ) -> Verdict:
        if not units:
            reason = Reason("no_evidence", "retrieval found no passage for this claim")
            scores = {Label.SUPPORTED: 0.0, Label.REFUTED: 0.0, Label.NOT_ENOUGH_INFO: 1.0}
            return Verdict(Label.NOT_ENOUGH_INFO, 1.0, scores, (reason,), ())
        entail = rows[:, column["entailment"]]
        contra = rows[:, column["contradiction"]]
        best_e, best_c = int(entail.argmax()), int(contra.argmax())
        p_sup, p_ref = float(entail[best_e]), float(contra[best_c])
        p_nei = max(0.0, 1.0 - max(p_sup, p_ref))
        total = p_sup + p_ref + p_nei or 1.0
        scores = {
            Label.SUPPORTED: p_sup / total,
            Label.REFUTED: p_ref / total,
            Label.NOT_ENOUGH_INFO: p_nei / total,
        }
        label = max(scores, key=lambda k: scores[k])
        index = best_c if label is Label.REFUTED else best_e
        passage, span = units[index]
        stance = {
            Label.SUPPORTED: Stance.SUPPORTS,
            Label.REFUTED: Stance.REFUTES,
            Label.NOT_ENOUGH_INFO: Stance.NEUTRAL,
        }[label]
        code = {
            Label.SUPPORTED: "entailed",
            Label.REFUTED: "contradicted",
            Label.NOT_ENOUGH_INFO: "unsupported_content",
        }[label]
        reason = Reason(
            code,
            f"NLI: entailment {p_sup:.2f}, contradiction {p_ref:.2f} at best",
            evidence_text=span.slice(passage.text),
            evidence_span=span,
            passage_id=passage.passage_id,
        )
        judgements: dict[str, EvidenceJudgement] = {}
        for k in [index, *range(len(units))]:
            p, sp = units[k]
            if p.passage_id not in judgements:
                judgements[p.passage_id] = EvidenceJudgement(
                    p, sp, stance if k == index else Stance.NEUTRAL, float(entail[k])
                )
        return Verdict(label, scores[label], scores, (reason,), tuple(judgements.values()))
