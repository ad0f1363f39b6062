"""The learned head of the ``features`` verifier: gradient-boosted trees, stored without pickle.

Training uses scikit-learn's ``HistGradientBoostingClassifier``; the fitted
trees are exported to plain arrays (``trees.npz``) and a JSON card
(``head.json``: features, classes, calibration, training data, figures), and
predicted here with numpy, so loading a head never runs code from a file.
The feature matrix it was trained on can travel with it (``training.npz``), so
trainer reviews can be added and the head refitted (``claimsieve train
--from-reviews``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from claims import calibration as calibration_mod
from claims.calibration import Calibration
from claims.types import Label

CLASSES = tuple(str(label) for label in Label)
FORMAT = 1


class HeadError(ValueError):
    """A head folder that is missing, from another format, or does not fit the features."""


@dataclass
class Head:
    """Trees, their classes, the calibration fitted on held-out data, and the model card.

    ``tree_output[i]`` is the class (column of the raw scores) tree ``i`` adds to.
    With two classes scikit-learn fits one tree per round on the logit of the
    second class; that is stored as a column of zeros and one column of trees.
    """

    features: tuple[str, ...]
    classes: tuple[str, ...]
    baseline: NDArray[np.float64]
    feature: NDArray[np.int32]
    threshold: NDArray[np.float64]
    missing_left: NDArray[np.bool_]
    left: NDArray[np.int32]
    right: NDArray[np.int32]
    leaf: NDArray[np.bool_]
    value: NDArray[np.float64]
    roots: NDArray[np.int32]
    tree_output: NDArray[np.int32]
    calibration: Calibration | None = None
    card: dict[str, Any] = field(default_factory=dict)
    training: tuple[NDArray[np.float32], list[str], NDArray[np.float32]] | None = None

    @property
    def version(self) -> str:
        return str(self.card.get("version", "0"))

    def raw(self, x: NDArray[np.float32]) -> NDArray[np.float64]:
        """Summed tree outputs per class (logits before softmax)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise HeadError(f"the head reads {len(self.features)} features, got shape {x.shape}")
        out = np.tile(self.baseline, (len(x), 1))
        # Every tree at once, a level at a time: (trees, rows) of current nodes.
        nodes = np.repeat(self.roots[:, None].astype(np.int64), len(x), axis=1)
        rows = np.broadcast_to(np.arange(len(x))[None, :], nodes.shape)
        inner = ~self.leaf[nodes]
        while inner.any():
            n = nodes[inner]
            values = x[rows[inner], self.feature[n]]
            go_left = np.where(np.isnan(values), self.missing_left[n], values <= self.threshold[n])
            nodes[inner] = np.where(go_left, self.left[n], self.right[n])
            inner = ~self.leaf[nodes]
        leaves = self.value[nodes]
        for column in range(out.shape[1]):
            out[:, column] += leaves[self.tree_output == column].sum(axis=0)
        return out

    def scores(self, x: NDArray[np.float32]) -> list[dict[str, float]]:
        """Calibrated probabilities per class; classes the head never saw get 0."""
        raw = self.raw(x)
        raw -= raw.max(axis=1, keepdims=True)
        probs = np.exp(raw)
        probs /= probs.sum(axis=1, keepdims=True)
        out = []
        for row in probs:
            scores = dict.fromkeys(CLASSES, 0.0)
            scores.update({c: float(p) for c, p in zip(self.classes, row, strict=True)})
            if self.calibration is not None:
                scores = self.calibration.apply(scores)
            out.append(scores)
        return out

    def save(self, folder: Path) -> None:
        """Write ``head.json``, ``trees.npz`` (and ``training.npz``) atomically into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        card = {
            **self.card,
            "format": FORMAT,
            "features": list(self.features),
            "classes": list(self.classes),
            "calibration": (
                {"method": self.calibration.method, "params": self.calibration.params}
                if self.calibration
                else None
            ),
        }
        arrays = {
            "baseline": self.baseline,
            "feature": self.feature,
            "threshold": self.threshold,
            "missing_left": self.missing_left,
            "left": self.left,
            "right": self.right,
            "leaf": self.leaf,
            "value": self.value,
            "roots": self.roots,
            "tree_output": self.tree_output,
        }
        _write_npz(folder / "trees.npz", arrays)
        if self.training is not None:
            x, labels, weights = self.training
            _write_npz(
                folder / "training.npz",
                {"x": x.astype(np.float32), "labels": np.array(labels), "weights": weights},
            )
        tmp = folder / "head.json.tmp"
        tmp.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, folder / "head.json")


def _write_npz(path: Path, arrays: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def load(folder: Path, features: Sequence[str] | None = None) -> Head:
    """Read a head folder; ``features`` (the extractor's names) must match the head's."""
    card_path = folder / "head.json"
    if not card_path.is_file():
        raise HeadError(f"{folder} is not a verifier head (no head.json)")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    if card.get("format") != FORMAT:
        raise HeadError(f"{folder}: head format {card.get('format')}, expected {FORMAT}")
    if features is not None and tuple(card["features"]) != tuple(features):
        raise HeadError(
            f"{folder} was trained on other features than this version computes; retrain it"
        )
    with np.load(folder / "trees.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    training = None
    if (folder / "training.npz").is_file():
        with np.load(folder / "training.npz", allow_pickle=False) as z:
            training = (z["x"], [str(v) for v in z["labels"]], z["weights"])
    raw_cal = card.pop("calibration", None)
    calibration = Calibration(raw_cal["method"], raw_cal["params"]) if raw_cal else None
    return Head(
        features=tuple(card.pop("features")),
        classes=tuple(card.pop("classes")),
        calibration=calibration,
        card=card,
        training=training,
        **arrays,
    )


def export(model: Any, features: Sequence[str]) -> Head:
    """Turn a fitted ``HistGradientBoostingClassifier`` into a ``Head``."""
    classes = tuple(str(c) for c in model.classes_)
    baseline = np.asarray(model._baseline_prediction, dtype=np.float64).ravel()
    binary = len(classes) == 2
    if binary:
        baseline = np.array([0.0, baseline[0]])
    parts: dict[str, list[Any]] = {
        k: [] for k in ("feature", "threshold", "missing_left", "left", "right", "leaf", "value")
    }
    roots, outputs = [], []
    offset = 0
    for round_ in model._predictors:
        for k, predictor in enumerate(round_):
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise HeadError("categorical splits are not supported")
            roots.append(offset)
            outputs.append(1 if binary else k)
            parts["feature"].append(nodes["feature_idx"].astype(np.int32))
            parts["threshold"].append(nodes["num_threshold"].astype(np.float64))
            parts["missing_left"].append(nodes["missing_go_to_left"].astype(bool))
            parts["left"].append(nodes["left"].astype(np.int32) + offset)
            parts["right"].append(nodes["right"].astype(np.int32) + offset)
            parts["leaf"].append(nodes["is_leaf"].astype(bool))
            parts["value"].append(nodes["value"].astype(np.float64))
            offset += len(nodes)
    joined = {k: np.concatenate(v) for k, v in parts.items()}
    return Head(
        features=tuple(features),
        classes=classes,
        baseline=baseline,
        roots=np.array(roots, dtype=np.int32),
        tree_output=np.array(outputs, dtype=np.int32),
        **joined,  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class TrainReport:
    """What one training run fitted on and how calibration moved on held-out rows."""

    fitted_on: int
    held_out: int
    calibration: str
    ece_before: float | None
    ece_after: float | None
    label_counts: dict[str, int]


def held_out_rows(n: int, seed: int = 0, holdout: float = 0.2) -> NDArray[np.bool_]:
    """Which of ``n`` training rows :func:`train` keeps out of the trees, for calibration.

    Each row's side is drawn in row order from the seed, so rows appended later
    (reviews) leave the earlier rows where they were.
    """
    return np.random.default_rng(seed).random(n) < holdout


def train(
    x: NDArray[np.float32],
    labels: Sequence[str],
    weights: NDArray[np.float32] | None = None,
    features: Sequence[str] = (),
    holdout: float = 0.2,
    seed: int = 0,
    calibrate: bool = True,
) -> tuple[Head, TrainReport]:
    """Fit gradient-boosted trees on ``1 - holdout`` of the rows; calibrate on the rest.

    Classes are weighted to equal total weight (times ``weights``), so a head
    trained on mostly-SUPPORTED data does not learn to say SUPPORTED for
    everything. Calibration (``auto``: identity, temperature or isotonic) is fitted
    on the held-out rows, which the trees never saw.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    labels = [str(label) for label in labels]
    unknown = set(labels) - set(CLASSES)
    if unknown:
        raise ValueError(f"labels must be among {CLASSES}, got {sorted(unknown)}")
    if len(set(labels)) < 2:
        raise ValueError("training needs examples of at least two labels")
    n = len(labels)
    given = (
        np.ones(n, dtype=np.float64) if weights is None else np.asarray(weights, dtype=np.float64)
    )
    w = given
    counts = {c: labels.count(c) for c in CLASSES if c in labels}
    balance = {c: (w[[label == c for label in labels]].sum()) for c in counts}
    w = w * np.array([w.sum() / (len(counts) * balance[label]) for label in labels])
    held = held_out_rows(n, seed, holdout) if calibrate and n >= 50 else np.zeros(n, dtype=bool)
    fit_rows = [int(i) for i in np.flatnonzero(~held)]
    held_rows = [int(i) for i in np.flatnonzero(held)]
    model = HistGradientBoostingClassifier(
        max_iter=250,
        learning_rate=0.06,
        max_leaf_nodes=15,
        min_samples_leaf=20,
        l2_regularization=1.0,
        random_state=seed,
    )
    model.fit(x[fit_rows], [labels[i] for i in fit_rows], sample_weight=w[fit_rows])
    head = export(model, features or [f"f{i}" for i in range(x.shape[1])])
    head.training = (np.asarray(x, dtype=np.float32), labels, given.astype(np.float32))
    report = TrainReport(len(fit_rows), len(held_rows), "none", None, None, counts)
    if held_rows:
        samples = [
            (s, labels[i]) for s, i in zip(head.scores(x[held_rows]), held_rows, strict=True)
        ]
        chosen = calibration_mod.choose(samples)
        head.calibration = calibration_mod.fit_method(samples, chosen)
        report = TrainReport(
            len(fit_rows),
            len(held_rows),
            chosen,
            calibration_mod.ece(samples),
            calibration_mod.ece(samples, head.calibration),
            counts,
        )
    return head, report
