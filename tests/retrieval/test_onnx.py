"""ONNX Runtime: exported once per set of weights, read back after, torch when it is missing."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval import onnx


@pytest.mark.models
def test_an_encoder_is_exported_once_and_gives_torch_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from retrieval.embedders import default_model_path

    monkeypatch.setenv("CLAIMSIEVE_CACHE_DIR", str(tmp_path))
    path = str(default_model_path())
    encoder, tokenizer = AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
    first = onnx.OnnxEncoder(encoder)
    assert first.path.parent == tmp_path / "onnx" and first.path.is_file()
    made = first.path.stat().st_ino
    exported: list[Path] = []
    monkeypatch.setattr(onnx, "export", lambda e, p, q: exported.append(p))
    again = onnx.OnnxEncoder(encoder)
    assert again.path == first.path and exported == [] and made == again.path.stat().st_ino
    batch = tokenizer(["Paris is in France.", "A longer sentence about rivers."], padding=True)
    with torch.inference_mode():
        expected = encoder(**{k: torch.tensor(v) for k, v in batch.items()}).last_hidden_state
    np.testing.assert_allclose(again.hidden(batch), expected.numpy(), atol=1e-5)
    # Other weights, another file.
    with torch.no_grad():
        encoder.pooler.dense.bias += 1.0
    assert onnx.weights_digest(encoder) not in first.path.name


def test_torch_is_used_when_onnxruntime_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    real = builtins.__import__

    def without(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("onnxruntime"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without)
    assert onnx.runtime("onnx") == "torch"
    assert onnx.runtime("torch") == "torch"


def test_torch_is_used_when_the_cache_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("CLAIMSIEVE_CACHE_DIR", str(blocked))

    def refuse(module: Any, path: Path, int8: bool) -> None:
        path.parent.mkdir(parents=True)

    monkeypatch.setattr(onnx, "export", refuse)
    monkeypatch.setattr(onnx, "weights_digest", lambda module: "d")
    assert onnx.encoder(object(), "onnx") is None


def test_only_the_most_recently_used_exports_are_kept(tmp_path: Path) -> None:
    import os

    for age, name in enumerate(["a", "b", "c", "d", "e", "f"]):
        made = tmp_path / f"encoder-{name}.onnx"
        made.write_bytes(b"x")
        os.utime(made, (1000 - age, 1000 - age))
    (tmp_path / "other.txt").write_text("kept")
    onnx._prune(tmp_path, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "encoder-a.onnx",
        "encoder-b.onnx",
        "encoder-c.onnx",
        "encoder-d.onnx",
        "other.txt",
    ]
