"""The saved MICO model folder, and loading only what a task needs.

Layout (``config.json`` is written last)::

    config.json            format, K, dim, pooling, max_length, encoder, training config, metrics
    query_head.safetensors routing head  (weight, bias)
    doc_head.safetensors   assignment head (weight, bias)
    marginal.safetensors   theta of r(z) = softmax(theta)
    encoder/               tokenizer (always) + config and weights (when fine-tuned or not the
                           packaged all-MiniLM-L6-v2)

:meth:`MicoModelFolder.query_router` loads the encoder and the query head only;
:meth:`MicoModelFolder.document_assigner` the encoder and the document head only.

Example:
    >>> folder = MicoModelFolder("models/hd-mico16")  # doctest: +SKIP
    >>> folder.query_router().scores(["cordless drill"]).shape  # doctest: +SKIP
    (1, 16)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.errors import ModelError
from selectsearch.models.encoder import DEFAULT_ENCODER
from selectsearch.models.folder import manifest_version, write_model_manifest

__all__ = ["FORMAT", "VERSION", "HeadScorer", "MicoModelFolder", "save_model"]

FORMAT = "selectsearch-mico"
VERSION = 1
_HEAD_FILES = {"query": "query_head.safetensors", "document": "doc_head.safetensors"}


def save_model(folder: str | os.PathLike[str], *, config: Any, dim: int, doc_head: Any, query_head: Any,
               marginal: Any, tokenizer: Any, encoder_model: Any | None, extra: dict[str, Any] | None = None) -> Path:
    """Write a model folder's files, the manifest ``config.json`` last (``encoder_model=None``: the
    encoder is the unchanged packaged default). Call it inside
    :func:`selectsearch.models.folder.model_folder`, which makes the write atomic.

    Args:
        folder: output folder (created; files are overwritten).
        config: the :class:`~selectsearch.mico.config.MicoConfig` of the run.
        dim: embedding dimension.
        doc_head: document-assignment :class:`~selectsearch.mico.heads.ClusterHead`.
        query_head: query-routing head.
        marginal: the :class:`~selectsearch.mico.heads.Marginal`.
        tokenizer: the encoder's tokenizer (always saved).
        encoder_model: encoder weights to save, or ``None`` for the packaged default.
        extra: more JSON fields (metrics, corpus fingerprint, timings).
    """
    from safetensors.torch import save_file

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for name, head in (("document", doc_head), ("query", query_head)):
        tensors = {"weight": head.linear.weight.detach().contiguous(), "bias": head.linear.bias.detach().contiguous()}
        save_file(tensors, str(out / _HEAD_FILES[name]))
    save_file({"theta": marginal.theta.detach().contiguous()}, str(out / "marginal.safetensors"))
    tokenizer.save_pretrained(str(out / "encoder"))
    if encoder_model is not None:
        encoder_model.save_pretrained(str(out / "encoder"), safe_serialization=True)
    data = {
        "kind": "mico",
        "n_clusters": int(config.n_clusters),
        "dim": int(dim),
        "pooling": "mean",
        "normalize": True,
        "max_length": int(config.max_length),
        "encoder": "encoder" if encoder_model is not None else DEFAULT_ENCODER,
        "encoder_source": config.encoder,
        "encoder_frozen": config.mode == "frozen",
        "training": config.to_dict(),
        **(extra or {}),
    }
    write_model_manifest(out, data, format=FORMAT, version=VERSION)
    return out


class HeadScorer:
    """One head on top of the encoder: cluster logits for texts or for precomputed embeddings."""

    def __init__(self, head: Any, model: MicoModelFolder) -> None:
        self.head = head
        self.folder = model
        self._encoder: Any = None

    def text_encoder(self) -> Any:
        """The (lazily loaded) :class:`~selectsearch.encode.TextEncoder`."""
        if self._encoder is None:
            self._encoder = self.folder.text_encoder()
        return self._encoder

    def scores_from_embeddings(self, vectors: np.ndarray) -> np.ndarray:
        """``(n, K)`` logits of normalised embeddings."""
        import torch

        with torch.inference_mode():
            out = self.head(torch.as_tensor(np.ascontiguousarray(vectors, dtype=np.float32)))
        return np.asarray(out.numpy(), dtype=np.float32)

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), K)`` logits."""
        if not len(texts):
            return np.zeros((0, self.folder.n_clusters), np.float32)
        return self.scores_from_embeddings(self.text_encoder().encode(list(texts)))


class MicoModelFolder:
    """A saved MICO model (read-only).

    Raises:
        ModelError: not a MICO model folder, or a newer format.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.path = Path(folder)
        config_path = self.path / "config.json"
        if not config_path.is_file():
            raise ModelError(f"{self.path} is not a MICO model (no config.json); train one with "
                             "`selectsearch train-mico DATA --logs train --shards K --out DIR`")
        self.config: dict[str, Any] = json.loads(config_path.read_text())
        if self.config.get("format") != FORMAT:
            raise ModelError(f"{self.path} is not a MICO model folder (format {self.config.get('format')!r})")
        if manifest_version(self.config) > VERSION:
            raise ModelError(f"{self.path} was written by a newer selectsearch (format version "
                             f"{manifest_version(self.config)}); upgrade selectsearch")

    @property
    def n_clusters(self) -> int:
        """K."""
        return int(self.config["n_clusters"])

    @property
    def max_length(self) -> int:
        """Tokens per text."""
        return int(self.config["max_length"])

    @property
    def encoder_frozen(self) -> bool:
        """Whether the encoder was left as it was (frozen mode): cached embeddings apply."""
        return bool(self.config.get("encoder_frozen", False))

    @property
    def encoder_source(self) -> str:
        """The encoder the run started from (key of the embedding cache)."""
        return str(self.config.get("encoder_source", DEFAULT_ENCODER))

    def encoder_location(self) -> str | None:
        """``None`` for the packaged default, else the folder holding the encoder weights."""
        if self.config.get("encoder") == DEFAULT_ENCODER:
            return None
        return str(self.path / str(self.config["encoder"]))

    def text_encoder(self, batch_size: int = 64) -> Any:
        """A :class:`~selectsearch.encode.TextEncoder` for this model (mean pooling, normalised)."""
        from selectsearch.encode import TextEncoder

        return TextEncoder(self.encoder_location(), max_length=self.max_length, batch_size=batch_size)

    def load_head(self, which: str) -> Any:
        """The ``query`` or ``document`` head (a :class:`~selectsearch.mico.heads.ClusterHead`)."""
        from safetensors.torch import load_file

        from selectsearch.mico.heads import ClusterHead

        path = self.path / _HEAD_FILES[which]
        if not path.is_file():
            raise ModelError(f"{self.path} lacks {path.name}; the model folder is incomplete — retrain or re-copy it")
        tensors = load_file(str(path))
        head = ClusterHead(int(self.config["dim"]), self.n_clusters)
        head.linear.load_state_dict({"weight": tensors["weight"], "bias": tensors["bias"]})
        head.eval()
        return head

    def query_router(self) -> HeadScorer:
        """Encoder + query head (the document head is not loaded)."""
        return HeadScorer(self.load_head("query"), self)

    def document_assigner(self) -> HeadScorer:
        """Encoder + document head (the query head is not loaded)."""
        return HeadScorer(self.load_head("document"), self)
