"""``claimsieve eval``: scoring a verifier on a labelled set, with gold or retrieved evidence.

Rows are in the shape of ``../shared/eval`` (``claims.datasets``). Claim rows
are verified as they are; response rows are split into claims by the
extractor (the question as the prompt) and the response is HALLUCINATED when
any checkworthy claim comes back with a label in ``hallucinated_on``. In the
``retrieval`` setting the whole corpus is indexed in a temporary snapshot and
each claim gets the top passages of a hybrid search; recall@1/5/10 and MRR of
the gold passages are reported too. The corpus may be several files (their
ids are prefixed per set, so they merge) or, for the retrieval setting, the
built-in Python reference (``builtin=True``). Contrastive rows (a ``type`` per
row, ``bench/contrast``) are also reported per type: how many false statements
were caught (anything but SUPPORTED) and refuted, and how many true ones were
kept SUPPORTED or wrongly called REFUTED. Inference pairs (``../shared/nli``)
carry their premise as their evidence and need no corpus; two-way sets
(``non_entailment``) are scored SUPPORTED against the rest.

Writes ``predictions.jsonl``, ``report.json``, ``confusion.png`` and
``reliability.png`` into the output folder.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from claims import metrics
from claims.datasets import Item, gold_evidence, read_corpus, read_items, split
from claims.extraction import Extractor
from claims.types import Claim, Label, Passage, Span, as_passage
from claims.verification import Verifier
from retrieval.embedders import Embedder
from retrieval.types import Document

Setting = Literal["gold", "retrieval"]
RESPONSE_LABELS = ("SUPPORTED", "HALLUCINATED")
TWO_WAY_LABELS = ("SUPPORTED", "NOT_SUPPORTED")
RETRIEVE_DEPTH = 10


@dataclass
class Prediction:
    id: str
    gold: str
    pred: str
    confidence: float
    scores: dict[str, float]
    retrieved: list[str] | None = None
    claims: list[dict[str, Any]] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "gold": self.gold,
            "pred": self.pred,
            "confidence": round(self.confidence, 6),
            "scores": {k: round(v, 6) for k, v in self.scores.items()},
        }
        if self.retrieved is not None:
            out["retrieved"] = self.retrieved
        if self.claims:
            out["claims"] = self.claims
        return out


def response_verdict(
    labels: Sequence[str], supported_scores: Sequence[float], hallucinated_on: frozenset[str]
) -> tuple[str, dict[str, float]]:
    """A response's label from its checkworthy claims' labels.

    HALLUCINATED when any claim's label is in ``hallucinated_on``. The chance it
    is SUPPORTED is taken as the lowest of its claims' SUPPORTED scores (a
    response is as good as its weakest claim); no claims: SUPPORTED.
    """
    if not labels:
        return "SUPPORTED", {"SUPPORTED": 1.0, "HALLUCINATED": 0.0}
    p = min(supported_scores)
    label = "HALLUCINATED" if any(lab in hallucinated_on for lab in labels) else "SUPPORTED"
    return label, {"SUPPORTED": p, "HALLUCINATED": 1.0 - p}


def retrieval_figures(gold: list[set[str]], ranked: list[list[str]]) -> dict[str, float]:
    """recall@1/5/10 (share of a claim's gold passages found) and MRR, over claims with gold."""
    pairs = [(g, r) for g, r in zip(gold, ranked, strict=True) if g]
    if not pairs:
        return {}
    out = {
        f"recall@{k}": sum(len(g & set(r[:k])) / len(g) for g, r in pairs) / len(pairs)
        for k in (1, 5, 10)
    }
    out["mrr"] = sum(
        next((1 / (i + 1) for i, pid in enumerate(r) if pid in g), 0.0) for g, r in pairs
    ) / len(pairs)
    out["claims_with_gold"] = len(pairs)
    return out


class _Retriever:
    """The whole corpus in a temporary snapshot; hybrid search as the service does it."""

    def __init__(self, documents: Iterable[Document], embedder: Embedder, work: Path) -> None:
        from retrieval import snapshots

        self._embedder = embedder
        with snapshots.Builder(work, "eval", 1, embedder, progress=True) as builder:
            builder.add(documents)
            self._snapshot = snapshots.load(builder.finish())

    def search(self, texts: list[str], k: int) -> list[list[Passage]]:
        hits = self._snapshot.search(self._embedder.encode(texts), texts, k, "hybrid")
        return [[as_passage(h) for h in row] for row in hits]


def evaluate(
    claims_path: Path,
    corpus_paths: Sequence[Path],
    out_dir: Path,
    verifier: Verifier,
    extractor: Extractor | None = None,
    embedder: Embedder | None = None,
    setting: Setting = "gold",
    part: Literal["all", "train", "test"] = "all",
    top_k: int = 5,
    hallucinated_on: frozenset[str] = frozenset({"REFUTED", "NOT_ENOUGH_INFO"}),
    limit: int | None = None,
    batch: int = 64,
    progress: bool = True,
    builtin: bool = False,
) -> dict[str, Any]:
    """Score ``verifier`` on the rows of ``claims_path``; write and return the report.

    Args:
        corpus_paths: Passage files, merged (none for inference pairs or ``builtin``).
        part: ``train`` or ``test`` keeps one half of the fixed split
            (``claims.datasets.split``), e.g. the half a head was not trained on.
        top_k: Passages handed to the verifier per claim in the retrieval setting.
        hallucinated_on: Claim labels that make a response HALLUCINATED.
        limit: Score only the first ``limit`` rows (after the split).
        builtin: Retrieve from the built-in Python reference (retrieval setting only).
    """
    from tqdm import tqdm

    corpus: dict[str, Passage] = {}
    for path in corpus_paths:
        corpus.update(read_corpus(path))
    if builtin and setting != "retrieval":
        raise ValueError("the built-in corpus is searched: use the retrieval setting")
    items = [
        item
        for item in read_items(claims_path)
        if item.label != "DISPUTED" and (part == "all" or split(item) == part)
    ][:limit]
    if not items:
        raise ValueError(f"{claims_path}: no rows to score (after skipping DISPUTED, part={part})")
    if any(item.response is not None for item in items) and extractor is None:
        raise ValueError("response rows need an extractor")
    retriever: _Retriever | None = None
    work = tempfile.TemporaryDirectory()
    try:
        if setting == "retrieval":
            if embedder is None:
                raise ValueError("the retrieval setting needs an embedder")
            if builtin:
                from retrieval.builtin import python_reference

                documents: Iterable[Document] = python_reference()
            else:
                documents = (
                    Document(p.passage_id, p.title or p.passage_id, p.text) for p in corpus.values()
                )
            retriever = _Retriever(documents, embedder, Path(work.name))
        predictions: list[Prediction] = []
        n_claims, verify_s = 0, 0.0
        with tqdm(
            total=len(items), desc="eval", unit="row", file=sys.stderr, disable=not progress
        ) as bar:
            for start in range(0, len(items), batch):
                chunk = items[start : start + batch]
                made, seconds = _score(
                    chunk, corpus, verifier, extractor, retriever, top_k, hallucinated_on
                )
                predictions += made
                n_claims += sum(max(len(p.claims), 1) for p in made)
                verify_s += seconds
                bar.update(len(chunk))
    finally:
        work.cleanup()
    report = _report(items, predictions, n_claims, verify_s, verifier, setting, part)
    if any(item.kind for item in items):
        report["by_type"] = contrast_figures(items, predictions)
    if retriever is not None:
        gold = [set(item.evidence_ids) for item in items]
        report["retrieval"] = retrieval_figures(gold, [p.retrieved or [] for p in predictions])
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "predictions.jsonl").open("w", encoding="utf-8") as handle:
        for p in predictions:
            handle.write(json.dumps(p.row(), ensure_ascii=False) + "\n")
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _plots(report, predictions, out_dir)
    return report


def _score(
    items: list[Item],
    corpus: dict[str, Passage],
    verifier: Verifier,
    extractor: Extractor | None,
    retriever: _Retriever | None,
    top_k: int,
    hallucinated_on: frozenset[str],
) -> tuple[list[Prediction], float]:
    per_item: list[list[Claim]] = []
    for item in items:
        if item.claim is not None:
            per_item.append([Claim(item.claim, item.claim, (Span(0, len(item.claim)),))])
        else:
            assert extractor is not None and item.response is not None
            found = extractor.extract(item.response, item.question)
            per_item.append([c for c in found.claims if c.checkworthy])
    flat = [(i, c) for i, claims in enumerate(per_item) for c in claims]
    retrieved: list[list[str]] = [[] for _ in items]
    started = time.perf_counter()
    if retriever is not None:
        # Recall is measured on the row's own text (the claim, or the question with its answer).
        queries = [
            item.claim or f"{item.question or ''} {item.response or ''}".strip() for item in items
        ]
        # One search per distinct text (a claim row's claim is its own query); hybrid fusion
        # draws the same candidates for any k up to its depth, so the top_k are a prefix.
        texts = list(dict.fromkeys([*queries, *(c.text for _, c in flat)]))
        hits = dict(zip(texts, retriever.search(texts, max(RETRIEVE_DEPTH, top_k)), strict=True))
        for i, query in enumerate(queries):
            retrieved[i] = list(dict.fromkeys(p.document_id for p in hits[query][:RETRIEVE_DEPTH]))
        evidence = [hits[c.text][:top_k] for _, c in flat]
    else:
        gold = [gold_evidence(item, corpus) for item in items]
        evidence = [gold[i] for i, _ in flat]
    verdicts = verifier.verify([c for _, c in flat], evidence) if flat else []
    seconds = time.perf_counter() - started
    by_item: list[list[tuple[Claim, Any]]] = [[] for _ in items]
    for (i, claim), verdict in zip(flat, verdicts, strict=True):
        by_item[i].append((claim, verdict))
    out = []
    for i, item in enumerate(items):
        pairs = by_item[i]
        claims_out = [
            {"text": c.text, "pred": v.label.value, "confidence": round(v.confidence, 6)}
            for c, v in pairs
        ]
        if item.claim is not None:
            if pairs:
                verdict = pairs[0][1]
                scores = {k.value: float(v) for k, v in verdict.scores.items()}
                pred, confidence = verdict.label.value, verdict.confidence
            else:
                scores, pred, confidence = (
                    {Label.NOT_ENOUGH_INFO.value: 1.0},
                    "NOT_ENOUGH_INFO",
                    1.0,
                )
            claims_out = []
        else:
            pred, scores = response_verdict(
                [v.label.value for _, v in pairs],
                [v.scores.get(Label.SUPPORTED, 0.0) for _, v in pairs],
                hallucinated_on,
            )
            confidence = scores[pred]
        out.append(
            Prediction(
                item.id,
                item.label,
                pred,
                float(confidence),
                scores,
                retrieved[i] if retriever is not None else None,
                claims_out,
            )
        )
    return out, seconds


def _report(
    items: list[Item],
    predictions: list[Prediction],
    n_claims: int,
    verify_s: float,
    verifier: Verifier,
    setting: str,
    part: str,
) -> dict[str, Any]:
    responses = any(item.response is not None for item in items)
    two_way = any(item.label == "NOT_SUPPORTED" for item in items)
    labels = RESPONSE_LABELS if responses else TWO_WAY_LABELS if two_way else metrics.LABELS
    gold = [p.gold for p in predictions]
    pred = [p.pred for p in predictions]
    if two_way:
        gold = [g if g == "SUPPORTED" else "NOT_SUPPORTED" for g in gold]
        pred = [p if p == "SUPPORTED" else "NOT_SUPPORTED" for p in pred]
    matrix = metrics.confusion(gold, pred, labels)
    summary = metrics.summary(matrix)
    binary = metrics.confusion(
        [g if g == "SUPPORTED" else "OTHER" for g in gold],
        [p if p == "SUPPORTED" else "OTHER" for p in pred],
        ("SUPPORTED", "OTHER"),
    )
    return {
        "setting": setting,
        "part": part,
        "unit": "response" if responses else "claim",
        "verifier": f"{verifier.name}/{verifier.version}",
        "n": len(predictions),
        "labels_present": sorted(set(gold)),
        "accuracy": summary["accuracy"],
        "macro_f1": summary["macro_f1"],
        "balanced_accuracy": summary["balanced_accuracy"],
        "binary_balanced_accuracy": metrics.summary(binary)["balanced_accuracy"],
        "per_label": summary["per_label"],
        "confusion": matrix,
        "ece": metrics.expected_calibration_error(
            [p.confidence for p in predictions],
            [g == q for g, q in zip(gold, pred, strict=True)],
        ),
        "claims": n_claims,
        "claims_per_s": n_claims / verify_s if verify_s else None,
    }


def contrast_figures(
    items: Sequence[Item], predictions: Sequence[Prediction]
) -> dict[str, dict[str, Any]]:
    """Per kind of change (and ``all``): false statements caught and refuted, true ones kept.

    A false statement is caught when it comes back anything but SUPPORTED;
    ``binary_balanced_accuracy`` is the mean of that recall and the share of
    true statements kept SUPPORTED.
    """
    groups: dict[str, list[tuple[str, str]]] = {}
    for item, p in zip(items, predictions, strict=True):
        if item.kind is None:
            continue
        for key in (item.kind, "all"):
            groups.setdefault(key, []).append((p.gold, p.pred))
    out: dict[str, dict[str, Any]] = {}
    for kind in sorted(groups, key=lambda k: (k == "all", k)):
        rows = groups[kind]
        false = [pred for gold, pred in rows if gold != "SUPPORTED"]
        true = [pred for gold, pred in rows if gold == "SUPPORTED"]
        caught = sum(pred != "SUPPORTED" for pred in false) / len(false) if false else None
        kept = sum(pred == "SUPPORTED" for pred in true) / len(true) if true else None
        out[kind] = {
            "false": len(false),
            "false_caught": caught,
            "false_refuted": sum(pred == "REFUTED" for pred in false) / len(false)
            if false
            else None,
            "true": len(true),
            "true_supported": kept,
            "true_refuted": sum(pred == "REFUTED" for pred in true) / len(true) if true else None,
            "binary_balanced_accuracy": (caught + kept) / 2
            if caught is not None and kept is not None
            else None,
        }
    return out


def _plots(report: dict[str, Any], predictions: list[Prediction], out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = report["confusion"]
    labels = list(matrix)
    values = [[matrix[g][p] for p in labels] for g in labels]
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.imshow(values, cmap="Blues")
    ax.set_xticks(range(len(labels)), [label[:12] for label in labels], rotation=30)
    ax.set_yticks(range(len(labels)), [label[:12] for label in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    for r, row in enumerate(values):
        for c, v in enumerate(row):
            ax.text(c, r, str(v), ha="center", va="center")
    ax.set_title(f"{report['verifier']} · {report['setting']} · acc {report['accuracy']:.3f}")
    fig.tight_layout()
    fig.savefig(out_dir / "confusion.png", dpi=110)
    plt.close(fig)

    bins = 10
    xs, accs, counts = [], [], []
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        members = [
            p
            for p in predictions
            if low < p.confidence <= high or (b == 0 and p.confidence <= high)
        ]
        if members:
            xs.append(sum(p.confidence for p in members) / len(members))
            accs.append(sum(p.gold == p.pred for p in members) / len(members))
            counts.append(len(members))
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.plot(xs, accs, marker="o")
    for x, y, n in zip(xs, accs, counts, strict=True):
        ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ece = report["ece"]
    ax.set_title(f"reliability · ECE {ece:.3f}" if ece is not None else "reliability")
    fig.tight_layout()
    fig.savefig(out_dir / "reliability.png", dpi=110)
    plt.close(fig)


def summary_text(report: dict[str, Any]) -> str:
    """The readable summary ``claimsieve eval`` prints."""
    lines = [
        f"{report['verifier']} · {report['setting']} evidence · {report['n']} {report['unit']}s"
        f" (part: {report['part']})",
    ]
    for key in ("accuracy", "macro_f1", "balanced_accuracy", "binary_balanced_accuracy", "ece"):
        value = report.get(key)
        lines.append(f"  {key:<26}{value:.4f}" if value is not None else f"  {key:<26}-")
    lines.append(f"  {'claims/s':<26}{report['claims_per_s'] or 0:.1f}")
    lines.append("  label            precision  recall   f1      support")
    for label, row in report["per_label"].items():
        if not row["support"] and not row["precision"]:
            continue
        cells = [row["precision"], row["recall"], row["f1"]]
        shown = "".join(f"{c:<9.3f}" if c is not None else f"{'-':<9}" for c in cells)
        lines.append(f"  {label:<17}{shown}{row['support']}")
    if report.get("by_type"):
        lines.append(
            "  type              false  caught  refuted  true  kept    true→REFUTED  bal.acc"
        )

        def cell(value: float | None) -> str:
            return f"{value:<8.3f}" if value is not None else f"{'-':<8}"

        for kind, row in report["by_type"].items():
            lines.append(
                f"  {kind:<18}{row['false']:<7}{cell(row['false_caught'])}"
                f"{cell(row['false_refuted'])} {row['true']:<6}{cell(row['true_supported'])}"
                f"{cell(row['true_refuted'])}      {cell(row['binary_balanced_accuracy'])}"
            )
    for key, value in report.get("retrieval", {}).items():
        lines.append(
            f"  {key:<26}{value:.4f}" if isinstance(value, float) else f"  {key:<26}{value}"
        )
    return "\n".join(lines)
