"""MiniLM read as a cross-encoder: the claim and its best evidence sentences in one input.

By default the packaged all-MiniLM-L6-v2 stays frozen and what is learned is
small — low-rank adapters (LoRA) on every linear layer of its six transformer
blocks and a three-way classifier on the mean-pooled output — so a trained
head is a few hundred kilobytes of arrays (``cross.npz``, float16, no pickle)
next to a JSON card, loaded onto the installed weights at start-up. With
``tune="layers"`` the six blocks themselves are trained (the word-piece
embeddings stay the packaged ones): more capacity, and a 21 MB head.

The input is ``claim [SEP] title: sentence title: sentence ...``: the evidence
sentences most similar to the claim (``claims.features``' ranking), best first,
cut at the head's ``max_length`` word pieces (its card says; new heads take
``MAX_LENGTH``).
"""

from __future__ import annotations

import copy
import json
import math
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from claims.features import AlignedSentence
from retrieval import onnx
from retrieval.onnx import Runtime
from retrieval.text import titled

CLASSES: tuple[str, ...] = ("NOT_ENOUGH_INFO", "REFUTED", "SUPPORTED")
# Labels that name a set of classes: a two-way inference pair's "not entailed" is
# REFUTED or NOT_ENOUGH_INFO, and is learned as the two together.
PARTIAL: dict[str, tuple[str, ...]] = {"NOT_SUPPORTED": ("NOT_ENOUGH_INFO", "REFUTED")}
MAX_LENGTH = 128
TOP_SENTENCES = 5
RANK = 16
ALPHA = 32.0
# The linear layers of a BERT block that carry adapters.
TARGETS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)
FORMAT = "cross/1"
TUNINGS = ("adapters", "layers")
LEARNING_RATES = {"adapters": 5e-4, "layers": 3e-5}


@dataclass(frozen=True)
class Pair:
    """One training or scoring input: a claim, its evidence text, and (for training) a label."""

    claim: str
    evidence: str
    label: str = ""
    weight: float = 1.0


def _modules(model_path: Path | None) -> tuple[Any, Any]:
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    from retrieval.embedders import default_model_path

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    path = str(model_path or default_model_path())
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path)


def _build(
    model_path: Path | None, rank: int, alpha: float, tune: str = "adapters"
) -> tuple[Any, Any, Any]:
    """The encoder made ready to learn, and a fresh classifier.

    ``adapters``: frozen, with zero-initialised adapters; ``layers``: its
    transformer blocks trainable, the embeddings frozen.
    """
    import torch
    from torch import nn

    if tune not in TUNINGS:
        raise ValueError(f"tune must be one of {TUNINGS}, got {tune!r}")

    class LoRALinear(nn.Module):
        def __init__(self, base: nn.Linear) -> None:
            super().__init__()
            self.base = base
            self.a = nn.Parameter(torch.empty(rank, base.in_features))
            self.b = nn.Parameter(torch.zeros(base.out_features, rank))
            nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))
            self.scale = alpha / rank

        def forward(self, x: Any) -> Any:
            return self.base(x) + (x @ self.a.T @ self.b.T) * self.scale

    tokenizer, encoder = _modules(model_path)
    encoder.requires_grad_(False)
    classifier = nn.Linear(encoder.config.hidden_size, len(CLASSES))
    if tune == "layers":
        encoder.encoder.requires_grad_(True)
        return tokenizer, encoder, classifier
    for block in encoder.encoder.layer:
        for target in TARGETS:
            *parents, leaf = target.split(".")
            owner = block
            for name in parents:
                owner = getattr(owner, name)
            setattr(owner, leaf, LoRALinear(getattr(owner, leaf)))
    return tokenizer, encoder, classifier


def _merge_adapters(encoder: Any) -> None:
    """Fold each adapter into the layer it adapts: ``W + scale·B·A``, one matmul, not three.

    For inference only: the merged encoder has no adapters left to train.
    """
    import torch

    with torch.no_grad():
        for block in encoder.encoder.layer:
            for target in TARGETS:
                *parents, leaf = target.split(".")
                owner = block
                for name in parents:
                    owner = getattr(owner, name)
                adapted = getattr(owner, leaf)
                if not hasattr(adapted, "base"):
                    continue  # blocks trained whole ("layers"): nothing to fold
                adapted.base.weight += (adapted.b @ adapted.a) * adapted.scale
                setattr(owner, leaf, adapted.base)


def _trained_names(encoder: Any) -> list[str]:
    return [name for name, p in encoder.named_parameters() if p.requires_grad]


def _tokenized(tokenizer: Any, pairs: Sequence[Pair], max_length: int) -> Any:
    return tokenizer(
        [p.claim for p in pairs],
        [p.evidence for p in pairs],
        truncation="only_second",
        max_length=max_length,
        padding=True,
        return_tensors="pt",
    )


def _pooled(tokenizer: Any, encoder: Any, pairs: Sequence[Pair], max_length: int) -> Any:
    """The mean-pooled encoder output of each pair (what the classifier reads)."""
    batch = _tokenized(tokenizer, pairs, max_length).to(encoder.device)
    hidden = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def _logits(
    tokenizer: Any, encoder: Any, classifier: Any, pairs: Sequence[Pair], max_length: int
) -> Any:
    return classifier(_pooled(tokenizer, encoder, pairs, max_length))


class CrossHead:
    """A trained cross-encoder head on the packaged MiniLM; ``scores`` gives probabilities.

    Args:
        arrays: Adapter and classifier arrays by parameter name.
        card: What it was trained on, its format and hyper-parameters.
        model_path: The MiniLM folder the adapters were trained on (default: packaged).
        batch_size: Pairs per forward pass (in ONNX Runtime at most 4, see below).
        merge: Fold the adapters into the layers they adapt (same scores, faster).
        runtime: ``onnx`` runs the merged encoder in ONNX Runtime (same scores, about
            twice as fast on CPU), ``torch`` in torch; unmerged heads run in torch.
        int8: In ONNX Runtime, with the encoder's weights quantised to int8 (one pair per
            forward pass).
    """

    def __init__(
        self,
        arrays: dict[str, NDArray[Any]],
        card: dict[str, Any],
        model_path: Path | None = None,
        batch_size: int = 32,
        merge: bool = True,
        runtime: Runtime = "onnx",
        int8: bool = False,
    ) -> None:
        import torch

        self.card = card
        self.arrays = arrays
        # The classifier is applied in numpy (classify); only the encoder runs in torch.
        self._tokenizer, self._encoder, _ = _build(
            model_path, int(card["rank"]), float(card["alpha"]), card.get("tuned", "adapters")
        )
        state = dict(self._encoder.named_parameters())
        with torch.no_grad():
            for name in _trained_names(self._encoder):
                state[name].copy_(torch.from_numpy(arrays[f"encoder.{name}"].astype(np.float32)))
        if merge:
            _merge_adapters(self._encoder)
        self._encoder.eval()
        self._onnx = onnx.encoder(self._encoder, runtime, int8) if merge else None
        # int8 activations are scaled per call (dynamic quantisation): a pair scored alone
        # keeps its own scores whatever else is scored, and costs no more time. In float32,
        # four pairs of like length a pass pad less than 32: 175 -> 160 ms for a 150-word
        # check's 13 pairs, the same scores.
        if self._onnx is not None:
            batch_size = 1 if int8 else min(batch_size, 4)
        self._batch_size = batch_size
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        return str(self.card.get("version", "0"))

    @property
    def mix(self) -> tuple[float, float]:
        """(weight, temperature) for :func:`combine`, as fitted on held-out rows."""
        mix = self.card.get("mix") or {}
        return float(mix.get("weight", 0.5)), float(mix.get("temperature", 1.0))

    def pooled(self, pairs: Sequence[Pair]) -> NDArray[np.float32]:
        """The vector the classifier reads, one row per pair."""
        import torch

        out = np.zeros((len(pairs), self._encoder.config.hidden_size), dtype=np.float32)
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i].claim + pairs[i].evidence))
        length = int(self.card["max_length"])
        with self._lock, torch.inference_mode():
            for start in range(0, len(order), self._batch_size):
                rows = order[start : start + self._batch_size]
                chosen = [pairs[i] for i in rows]
                if self._onnx is None:
                    out[rows] = _pooled(self._tokenizer, self._encoder, chosen, length).numpy()
                    continue
                batch = _tokenized(self._tokenizer, chosen, length)
                out[rows] = onnx.masked_mean(self._onnx.hidden(batch), batch["attention_mask"])
        return out

    def classify(self, pooled: NDArray[np.float32]) -> NDArray[np.float64]:
        """Probabilities from pooled vectors, columns in ``CLASSES`` order."""
        logits = pooled.astype(np.float64) @ self.arrays["classifier.weight"].T.astype(
            np.float64
        ) + self.arrays["classifier.bias"].astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return np.asarray(exp / exp.sum(axis=1, keepdims=True), dtype=np.float64)

    def scores(self, pairs: Sequence[Pair]) -> NDArray[np.float64]:
        """Probabilities, one row per pair, columns in ``CLASSES`` order."""
        return self.classify(self.pooled(pairs))

    def adapted(self, pooled: NDArray[np.float32], pairs: Sequence[Pair]) -> CrossHead:
        """This head with its classifier refitted on reviewed pairs (see :func:`adapt`).

        The encoder and its adapters are shared, not copied.
        """
        weight, bias, strength = adapt(
            self.arrays["classifier.weight"],
            self.arrays["classifier.bias"],
            pooled,
            [p.label for p in pairs],
            np.array([p.weight for p in pairs], dtype=np.float64),
        )
        clone = copy.copy(self)
        clone.arrays = {**self.arrays, "classifier.weight": weight, "classifier.bias": bias}
        adaptations = [*self.card.get("adapted", []), {"pairs": len(pairs), "strength": strength}]
        clone.card = {**self.card, "adapted": adaptations}
        return clone

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        stored: dict[str, Any] = {
            k: v.astype(np.float16) if k.startswith("encoder.") else v
            for k, v in self.arrays.items()
        }
        with (folder / "cross.npz").open("wb") as handle:
            np.savez_compressed(handle, **stored)
        (folder / "cross.json").write_text(json.dumps(self.card, indent=2) + "\n")


def load(
    folder: Path, model_path: Path | None = None, runtime: Runtime = "onnx", int8: bool = False
) -> CrossHead | None:
    """The cross head stored in ``folder``, or None when the folder has none."""
    if not (folder / "cross.npz").is_file():
        return None
    card = json.loads((folder / "cross.json").read_text())
    if card.get("format") != FORMAT:
        raise ValueError(f"{folder}: cross head format {card.get('format')!r}, need {FORMAT}")
    with np.load(folder / "cross.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return CrossHead(arrays, card, model_path, runtime=runtime, int8=int8)


def train(
    pairs: Sequence[Pair],
    epochs: int = 2,
    batch_size: int = 16,
    lr: float | None = None,
    seed: int = 0,
    model_path: Path | None = None,
    card: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
    init: CrossHead | None = None,
    tune: str = "adapters",
    device: str | None = None,
    max_length: int = MAX_LENGTH,
) -> CrossHead:
    """Fit the encoder's trainable part and the classifier on labelled pairs.

    Classes are balanced, times each pair's weight. A label of :data:`PARTIAL`
    is learned as its classes together (the loss is ``-log`` of their summed
    probability) and counts half to each when classes are balanced. ``init``: a head (of the
    same ``tune``) whose weights training continues from (e.g. one trained on
    generated pairs first); by default they start afresh. ``tune``: see
    :data:`TUNINGS`. ``lr``: the peak learning rate (default: :data:`LEARNING_RATES`
    of ``tune``). ``device``: where to train (default: CUDA when there is
    one); the head returned runs on the CPU. ``max_length``: word pieces per input,
    kept in the card, so the head is scored as it was trained.
    """
    import torch

    unknown = {p.label for p in pairs} - set(CLASSES) - set(PARTIAL)
    if unknown:
        raise ValueError(f"labels must be among {CLASSES}, got {sorted(unknown)}")
    if init is not None and init.card.get("tuned", "adapters") != tune:
        raise ValueError(f"init was tuned as {init.card.get('tuned', 'adapters')}, not {tune}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    lr = LEARNING_RATES[tune] if lr is None else lr
    tokenizer, encoder, classifier = _build(model_path, RANK, ALPHA, tune)
    if init is not None:
        trained = {f"encoder.{n}": p for n, p in encoder.named_parameters() if p.requires_grad}
        trained |= {f"classifier.{n}": p for n, p in classifier.named_parameters()}
        with torch.no_grad():
            for name, parameter in trained.items():
                parameter.copy_(torch.from_numpy(init.arrays[name].astype(np.float32)))
    encoder.to(device)
    classifier.to(device)
    params = [p for p in encoder.parameters() if p.requires_grad] + list(classifier.parameters())
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps = epochs * math.ceil(len(pairs) / batch_size)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    members = {c: (c,) for c in CLASSES} | PARTIAL
    counts = dict.fromkeys(CLASSES, 0.0)
    for p in pairs:
        for c in members[p.label]:
            counts[c] += p.weight / len(members[p.label])
    total = sum(counts.values())
    present = [c for c in CLASSES if counts[c] > 0]
    balance = {c: total / (len(present) * counts[c]) for c in present}
    allowed = torch.tensor([[c in members[p.label] for c in CLASSES] for p in pairs], device=device)
    weight = torch.tensor(
        [p.weight * float(np.mean([balance[c] for c in members[p.label]])) for p in pairs],
        dtype=torch.float32,
        device=device,
    )
    encoder.train()
    for _ in range(epochs):
        # Shuffled, then sorted by length inside windows of 50 batches: little padding.
        order = rng.permutation(len(pairs))
        window = batch_size * 50
        batches = []
        for start in range(0, len(order), window):
            chunk = sorted(
                order[start : start + window], key=lambda i: len(pairs[i].claim + pairs[i].evidence)
            )
            batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
        rng.shuffle(batches)
        for part in batches:
            rows = torch.as_tensor(np.asarray(part), device=device)
            logits = _logits(tokenizer, encoder, classifier, [pairs[i] for i in part], max_length)
            log_p = torch.log_softmax(logits, dim=-1).masked_fill(~allowed[rows], -math.inf)
            losses = -torch.logsumexp(log_p, dim=-1)
            loss = (losses * weight[rows]).sum() / weight[rows].sum()
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            schedule.step()
            if progress is not None:
                progress(len(part))
    encoder.to("cpu")
    classifier.to("cpu")
    state = dict(encoder.named_parameters())
    arrays: dict[str, NDArray[Any]] = {
        f"encoder.{n}": state[n].detach().numpy().copy() for n in _trained_names(encoder)
    }
    arrays["classifier.weight"] = classifier.weight.detach().numpy().copy()
    arrays["classifier.bias"] = classifier.bias.detach().numpy().copy()
    full = {
        "format": FORMAT,
        "tuned": tune,
        "rank": RANK,
        "alpha": ALPHA,
        "max_length": max_length,
        "epochs": epochs,
        "lr": lr,
        "pairs": len(pairs),
        "classes": list(CLASSES),
        **({"continued_from": init.card} if init is not None else {}),
        **(card or {}),
    }
    print(f"cross head: {len(pairs)} pairs, {epochs} epochs, {tune} on {device}", file=sys.stderr)
    # Trained heads are read in torch: most are saved and loaded again, or scored once.
    return CrossHead(arrays, full, model_path, runtime="torch")


def evidence_text(sentences: Sequence[AlignedSentence], top: int = TOP_SENTENCES) -> str:
    """The evidence half of the input: the best sentences, titled, best first."""
    return " ".join(titled(s.passage.title, s.text) for s in sentences[:top])


def combine(
    head: Sequence[dict[str, float]],
    cross: NDArray[np.float64],
    weight: float,
    temperature: float = 1.0,
) -> list[dict[str, float]]:
    """Log-linear mix of the feature head's and the cross head's probabilities.

    ``weight`` is the cross head's share; the mix is divided by ``temperature``.
    """
    out = []
    for mine, row in zip(head, cross, strict=True):
        mixed = {
            c: (
                (1 - weight) * math.log(max(mine.get(c, 0.0), 1e-6))
                + weight * math.log(max(float(p), 1e-6))
            )
            / temperature
            for c, p in zip(CLASSES, row, strict=True)
        }
        top = max(mixed.values())
        exp = {c: math.exp(v - top) for c, v in mixed.items()}
        total = sum(exp.values())
        out.append({c: v / total for c, v in exp.items()})
    return out


def fit_mix(
    head: Sequence[dict[str, float]], cross: NDArray[np.float64], labels: Sequence[str]
) -> dict[str, float]:
    """The weight and temperature of :func:`combine` with the least log loss on ``labels``.

    Fit on rows that neither head was trained on (the feature head's calibration rows).
    """
    best = (math.inf, 0.5, 1.0)
    for weight in np.linspace(0.0, 1.0, 11):
        for temperature in np.linspace(0.4, 2.0, 33):
            mixed = combine(head, cross, float(weight), float(temperature))
            loss = -sum(
                math.log(max(m[y], 1e-9)) for m, y in zip(mixed, labels, strict=True)
            ) / len(labels)
            if loss < best[0]:
                best = (loss, float(weight), float(temperature))
    return {"weight": round(best[1], 3), "temperature": round(best[2], 3), "log_loss": best[0]}


STRENGTHS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def _refit(
    w0: NDArray[np.float64],
    b0: NDArray[np.float64],
    pooled: NDArray[np.float64],
    target: NDArray[np.int64],
    weight: NDArray[np.float64],
    strength: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    from scipy.optimize import minimize

    rows, classes, dim = len(target), w0.shape[0], w0.shape[1]
    share = weight / weight.sum()

    def loss(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        w, b = theta[: classes * dim].reshape(classes, dim), theta[classes * dim :]
        logits = pooled @ w.T + b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        dw, db = w - w0, b - b0
        value = -float(share @ np.log(p[np.arange(rows), target] + 1e-12))
        value += strength / 2 * float((dw**2).sum() + (db**2).sum())
        grad = p
        grad[np.arange(rows), target] -= 1.0
        grad *= share[:, None]
        return value, np.concatenate(
            [(grad.T @ pooled + strength * dw).ravel(), grad.sum(axis=0) + strength * db]
        )

    found = minimize(
        loss,
        np.concatenate([w0.ravel(), b0]),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 500},
    )
    return found.x[: classes * dim].reshape(classes, dim), found.x[classes * dim :]


def adapt(
    weight: NDArray[Any],
    bias: NDArray[Any],
    pooled: NDArray[np.float32],
    labels: Sequence[str],
    weights: NDArray[np.float64] | None = None,
    strength: float | None = None,
    folds: int = 5,
) -> tuple[NDArray[np.float32], NDArray[np.float32], float]:
    """Refit a classifier on a few labelled pooled vectors, held near the one it was.

    Minimises the weighted, class-balanced cross-entropy on the rows plus
    ``strength / 2 · ‖θ − θ₀‖²``: few rows move it a little, many rows more.
    ``strength`` None: the one of :data:`STRENGTHS` with the least log loss in
    ``folds``-fold cross-validation on the rows themselves.

    Returns:
        The new weight and bias, and the strength used.
    """
    unknown = set(labels) - set(CLASSES)
    if unknown:
        raise ValueError(f"labels must be among {CLASSES}, got {sorted(unknown)}")
    if not len(labels):
        raise ValueError("no rows to adapt on")
    target = np.array([CLASSES.index(label) for label in labels], dtype=np.int64)
    given = np.ones(len(target)) if weights is None else np.asarray(weights, dtype=np.float64)
    counts = np.bincount(target, weights=given, minlength=len(CLASSES))
    present = int((counts > 0).sum())
    balanced = given * (given.sum() / (present * counts[target]))
    w0, b0 = np.asarray(weight, np.float64), np.asarray(bias, np.float64)
    x = np.asarray(pooled, np.float64)
    if strength is None and len(target) < 2 * folds:
        strength = STRENGTHS[-1]  # too few rows to choose: move least
    if strength is None:
        fold = np.arange(len(target)) % folds
        best = (math.inf, STRENGTHS[-1])
        for candidate in STRENGTHS:
            loss = 0.0
            for k in range(folds):
                fit, held = fold != k, fold == k
                w, b = _refit(w0, b0, x[fit], target[fit], balanced[fit], candidate)
                logits = x[held] @ w.T + b
                logits -= logits.max(axis=1, keepdims=True)
                log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
                loss -= float(log_p[np.arange(int(held.sum())), target[held]].sum())
            if loss < best[0]:
                best = (loss, candidate)
        strength = best[1]
    w, b = _refit(w0, b0, x, target, balanced, strength)
    return w.astype(np.float32), b.astype(np.float32), strength
