"""The verifier head: exported trees predict exactly what scikit-learn does; no pickle on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from claims import head as heads


def data(classes: tuple[str, ...], n: int = 400, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    score = x[:, 0] + 0.5 * x[:, 1] * x[:, 2]
    cuts = np.quantile(score, np.linspace(0, 1, len(classes) + 1)[1:-1])
    labels = [classes[int(np.searchsorted(cuts, s))] for s in score]
    x[rng.random(n) < 0.05, 3] = np.nan  # missing values take the learned side
    return x, labels


@pytest.mark.parametrize("classes", [heads.CLASSES, ("SUPPORTED", "REFUTED")])
def test_exported_trees_match_scikit_learn(classes: tuple[str, ...]) -> None:
    x, labels = data(classes)
    model = HistGradientBoostingClassifier(max_iter=40, random_state=0).fit(x, labels)
    head = heads.export(model, [f"f{i}" for i in range(5)])
    probs = np.array([[s[c] for c in model.classes_] for s in head.scores(x)])
    np.testing.assert_allclose(probs, model.predict_proba(x), atol=1e-9)


def test_train_calibrates_on_held_out_rows_and_round_trips(tmp_path: Path) -> None:
    x, labels = data(heads.CLASSES, n=600)
    head, report = heads.train(x, labels, features=[f"f{i}" for i in range(5)])
    assert report.fitted_on + report.held_out == 600 and 90 <= report.held_out <= 150
    assert report.ece_after is not None and report.ece_after <= report.ece_before + 1e-9
    head.card["version"] = "t1"
    head.save(tmp_path / "h")
    assert sorted(p.name for p in (tmp_path / "h").iterdir()) == [
        "head.json",
        "training.npz",
        "trees.npz",
    ]
    loaded = heads.load(tmp_path / "h", [f"f{i}" for i in range(5)])
    assert loaded.version == "t1" and loaded.training is not None
    assert loaded.scores(x[:20]) == head.scores(x[:20])
    accuracy = np.mean(
        [max(s, key=s.get) == y for s, y in zip(loaded.scores(x), labels, strict=True)]
    )
    assert accuracy > 0.7


def test_a_head_for_other_features_or_no_head_is_refused(tmp_path: Path) -> None:
    x, labels = data(heads.CLASSES)
    head, _ = heads.train(x, labels, features=[f"f{i}" for i in range(5)])
    head.save(tmp_path / "h")
    with pytest.raises(heads.HeadError, match="other features"):
        heads.load(tmp_path / "h", ["a", "b"])
    with pytest.raises(heads.HeadError, match="no head.json"):
        heads.load(tmp_path / "missing")
    with pytest.raises(heads.HeadError, match="reads 5 features"):
        head.scores(np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="at least two labels"):
        heads.train(x, ["SUPPORTED"] * len(x))


def test_the_shipped_head_loads_and_matches_the_feature_list() -> None:
    from claims.features import FEATURES
    from service.components import default_head_path

    head = heads.load(default_head_path(), FEATURES)
    assert head.card["version"] and head.card["trained_on"]
    assert set(head.classes) == set(heads.CLASSES)
    assert head.calibration is not None
    assert (
        sum((default_head_path() / f).stat().st_size for f in ("trees.npz", "training.npz")) < 4e6
    )
