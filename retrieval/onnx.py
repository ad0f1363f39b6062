"""Transformer encoders run by ONNX Runtime: torch's numbers, in about half the time on CPU.

A torch encoder (a Hugging Face ``BertModel``, adapters folded in or not) is
exported once to an ONNX file named by a digest of its weights, under the
cache folder, and read from there on every later start (about 0.1 s). Only the
last hidden state is computed here (and :func:`masked_mean` pools it as a mean
of the word pieces, as sentence-transformers does); tokenising stays with the
caller, so both runtimes share it. When ``onnxruntime`` (or ``onnx``, which
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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

Runtime = Literal["onnx", "torch"]
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Bump when the exported graph changes for the same weights.
EXPORT_FORMAT = "onnx-encoder/3"
# Exports kept in the cache folder (about 90 MB each), the most recently used.
KEEP = 6


def cache_folder() -> Path:
    """Where exported encoders are kept: ``$CLAIMSIEVE_CACHE_DIR`` or ``~/.cache/claimsieve``."""
    given = os.environ.get("CLAIMSIEVE_CACHE_DIR")
    if given:
        return Path(given) / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "claimsieve" / "onnx"


def encoder(module: Any, wanted: Runtime, int8: bool = False) -> OnnxEncoder | None:
    """``module`` in ONNX Runtime, or None where torch must run it (not wanted, not
    installed, or the cache folder cannot be written)."""
    if runtime(wanted) == "torch":
        return None
    try:
        return OnnxEncoder(module, int8=int8)
    except OSError as exc:
        log.warning("could not export an encoder for ONNX Runtime (%s): it runs in torch", exc)
        return None


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


@contextmanager
def _attention(encoder: Any, kind: str) -> Iterator[None]:
    """The encoder with another attention implementation inside the block."""
    before = getattr(encoder.config, "_attn_implementation", None)
    if before is None or not hasattr(encoder, "set_attn_implementation"):
        yield
        return
    encoder.set_attn_implementation(kind)
    try:
        yield
    finally:
        encoder.set_attn_implementation(before)


def export(encoder: Any, path: Path, int8: bool = False) -> None:
    """Write ``encoder`` as ONNX to ``path`` (atomically: a reader never sees half a file);
    ``int8``: with :func:`_quantize` applied."""
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
        # its tracer warnings are about control flow this encoder does not take. Attention
        # written out ("eager") runs about 12% faster in ONNX Runtime than torch's fused
        # kernel traced, with the same numbers (to 4e-6).
        with torch.no_grad(), warnings.catch_warnings(), _attention(encoder, "eager"):
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
        if int8:
            _quantize(temporary)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _prune(folder: Path, keep: int) -> None:
    """Delete all but the ``keep`` most recently used exports (another process may hold one
    open: on POSIX it reads on from the unlinked file)."""
    exports = sorted(folder.glob("encoder-*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in exports[keep:]:
        old.unlink(missing_ok=True)


def _quantize(path: str) -> None:
    """Weights of each block's attention output and feed-forward layers to int8 in place
    (dynamic quantisation, per channel). The query, key and value projections stay float:
    quantised too, the cross head's pass was slower (133 against 114 ms for 13 pairs)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    names = [
        node.name
        for node in onnx.load(path).graph.node
        if node.op_type == "MatMul" and ("/intermediate/" in node.name or "/output/" in node.name)
    ]
    quantize_dynamic(
        path, path, per_channel=True, weight_type=QuantType.QInt8, nodes_to_quantize=names
    )


def masked_mean(hidden: NDArray[np.float32], attention_mask: Any) -> NDArray[np.float32]:
    """The mean of each row's word-piece vectors, padding left out: ``(batch, width)``."""
    mask = np.asarray(attention_mask, dtype=np.float32)[..., None]
    pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)
    return np.asarray(pooled, dtype=np.float32)


class OnnxEncoder:
    """The last hidden state of a torch encoder, computed by ONNX Runtime.

    Args:
        encoder: A Hugging Face encoder taking ``input_ids``, ``attention_mask``
            and ``token_type_ids`` (its weights as they will be used).
        folder: Where exports are kept (default :func:`cache_folder`).
        threads: ONNX Runtime's threads for one call (default: its own choice, the cores).
        int8: The attention output and feed-forward weights quantised to int8 (about 30%
            faster, and no longer torch's numbers).
    """

    def __init__(
        self, encoder: Any, folder: Path | None = None, threads: int = 0, int8: bool = False
    ) -> None:
        import onnxruntime

        folder = folder or cache_folder()
        path = folder / f"encoder-{weights_digest(encoder)}{'-int8' if int8 else ''}.onnx"
        if path.is_file():
            os.utime(path)  # recently used: kept by the next pruning
        else:
            log.info("exporting an encoder to %s (once)", path)
            export(encoder, path, int8)
            _prune(folder, KEEP)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        # Threads that wait spin by default, taking a core from spaCy running beside them.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
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
