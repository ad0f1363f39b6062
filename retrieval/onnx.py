"""Transformer encoders run by ONNX Runtime: torch's numbers, in about half the time on CPU.

A torch encoder (a Hugging Face ``BertModel``, adapters folded in or not) is
exported once to an ONNX file named by a digest of its weights, under the
cache folder, and read from there on every later start (about 0.1 s). Only the
last hidden state is computed here; tokenising and pooling stay with the
caller, so both runtimes share them. When ``onnxruntime`` (or ``onnx``, which
the export needs) is not installed, :func:`runtime` says so and callers keep
torch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

Runtime = Literal["onnx", "torch"]
RUNTIMES: tuple[Runtime, ...] = ("onnx", "torch")
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Bump when the exported graph changes for the same weights.
EXPORT_FORMAT = "onnx-encoder/1"


def cache_folder() -> Path:
    """Where exported encoders are kept: ``$CLAIMSIEVE_CACHE_DIR`` or ``~/.cache/claimsieve``."""
    given = os.environ.get("CLAIMSIEVE_CACHE_DIR")
    if given:
        return Path(given) / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "claimsieve" / "onnx"


def runtime(wanted: Runtime) -> Runtime:
    """``wanted``, or torch when ONNX Runtime is wanted but not installed."""
    if wanted == "torch":
        return "torch"
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        log.warning("onnxruntime or onnx is not installed: the encoders run in torch")
        return "torch"
    return "onnx"


def weights_digest(encoder: Any) -> str:
    """A digest of the encoder's parameters and buffers, in order, with the export format."""
    import torch

    digest = hashlib.sha256(f"{EXPORT_FORMAT} torch {torch.__version__}".encode())
    with torch.no_grad():
        for name, tensor in encoder.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()[:24]


def _last_hidden(encoder: Any) -> Any:
    """The encoder with positional inputs and one output, as the exporter traces it."""
    import torch

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    return LastHidden().eval()


def export(encoder: Any, path: Path) -> None:
    """Write ``encoder`` as ONNX to ``path`` (atomically: a reader never sees half a file)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    sample = {
        "input_ids": torch.tensor([[101, 1037, 102], [101, 102, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1], [1, 1, 0]]),
        "token_type_ids": torch.zeros((2, 3), dtype=torch.long),
    }
    axes = {name: {0: "batch", 1: "pieces"} for name in (*INPUTS, "hidden")}
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".onnx.part")
    os.close(handle)
    try:
        # The TorchScript exporter (deprecated since torch 2.9, still in 2.13, which is
        # pinned) needs no onnxscript and traces a BERT encoder with dynamic axes as is;
        # its tracer warnings are about control flow this encoder does not take.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _last_hidden(encoder),
                tuple(sample[name] for name in INPUTS),
                temporary,
                input_names=list(INPUTS),
                output_names=["hidden"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


class OnnxEncoder:
    """The last hidden state of a torch encoder, computed by ONNX Runtime.

    Args:
        encoder: A Hugging Face encoder taking ``input_ids``, ``attention_mask``
            and ``token_type_ids`` (its weights as they will be used).
        folder: Where exports are kept (default :func:`cache_folder`).
        threads: ONNX Runtime's threads for one call (default: its own choice, the cores).
    """

    def __init__(self, encoder: Any, folder: Path | None = None, threads: int = 0) -> None:
        import onnxruntime

        path = (folder or cache_folder()) / f"encoder-{weights_digest(encoder)}.onnx"
        if not path.is_file():
            log.info("exporting an encoder to %s (once)", path)
            export(encoder, path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self.path = path
        self._session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self._lock = threading.Lock()

    def hidden(self, batch: Mapping[str, Any]) -> NDArray[np.float32]:
        """Last hidden states, ``(batch, pieces, width)``, of a tokenised batch (numpy or torch)."""
        feed = {}
        for name in INPUTS:
            given = batch.get(name)
            if given is None and name == "token_type_ids":
                given = np.zeros_like(np.asarray(batch["input_ids"]))
            feed[name] = np.asarray(given, dtype=np.int64)
        with self._lock:
            (hidden,) = self._session.run(["hidden"], feed)
        return np.asarray(hidden, dtype=np.float32)
