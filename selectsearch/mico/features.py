"""Embeddings for training: frozen cached vectors, or a trainable encoder (mean pooling).

Both featurisers embed texts the same way as :class:`selectsearch.encode.TextEncoder`: mean
pooling under the attention mask, then L2 normalisation — so a head trained on either sees the
vectors the partitioner and the router will compute later.

The encoder is a parameter (``MicoConfig.encoder``, ``train-mico --encoder``): besides a
transformer it may be a static encoder (``minilm-static`` or a model2vec folder, see
:mod:`selectsearch.models.static_encoder`). Frozen features then come from its token table — the
corpus encodes in seconds and the MICO query head routes a query in microseconds instead of a
transformer pass — and the saved model carries that encoder in ``encoder/``, so the router and the
partitioner embed with it too. A static encoder has nothing to fine-tune: ``full`` mode refuses it.

Example:
    >>> feats = FrozenFeatures(doc_vectors, query_vectors)  # doctest: +SKIP
    >>> feats.documents(np.array([0, 1])).shape  # doctest: +SKIP
    torch.Size([2, 384])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selectsearch import settings
from selectsearch.encode import EmbeddingCache, TextEncoder, corpus_cache
from selectsearch.models.encoder import DEFAULT_ENCODER, mean_pool

__all__ = ["EncoderFeatures", "FrozenFeatures", "corpus_cache", "corpus_vectors", "embed_queries", "encoder_arg"]


def encoder_arg(encoder: str) -> str | None:
    """``None`` for the packaged default (what :class:`TextEncoder` expects), else the folder or
    the static encoder's short name (:class:`TextEncoder` returns a static encoder for those)."""
    return None if encoder == DEFAULT_ENCODER else encoder


def _cache_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    return Path(cache_dir) if cache_dir else settings.cache_dir() / "embeddings"


def embed_queries(texts: Sequence[str], key: str, encoder: TextEncoder,
                  cache_dir: str | os.PathLike[str] | None = None, *, progress: bool = False) -> np.ndarray:
    """Embeddings of logged query texts, cached under ``queries-<key>``."""
    tag = Path(encoder.name).name
    cache = EmbeddingCache(_cache_root(cache_dir) / f"queries-{tag}-{encoder.max_length}-{key[:16]}")
    if cache.matches(model=encoder.name, fingerprint=key, n=len(texts)):
        return np.asarray(cache.load())
    return np.asarray(cache.build(encoder, iter(texts), n=len(texts), fingerprint=key, progress=progress))


class FrozenFeatures:
    """Rows of precomputed (normalised) embeddings; nothing to train.

    Args:
        doc_vectors: ``(n_logged_docs, dim)`` embeddings of the logged documents.
        query_vectors: ``(n_queries, dim)`` embeddings of the logged queries.
    """

    trainable = False

    def __init__(self, doc_vectors: np.ndarray, query_vectors: np.ndarray) -> None:
        self.doc_vectors = torch.from_numpy(np.array(doc_vectors, dtype=np.float32))
        self.query_vectors = torch.from_numpy(np.array(query_vectors, dtype=np.float32))

    def documents(self, rows: np.ndarray) -> torch.Tensor:
        """Embeddings of logged documents ``rows``."""
        return self.doc_vectors[torch.as_tensor(rows)]

    def queries(self, rows: np.ndarray) -> torch.Tensor:
        """Embeddings of logged queries ``rows``."""
        return self.query_vectors[torch.as_tensor(rows)]

    def parameters(self) -> list[torch.nn.Parameter]:
        """No trainable parameters."""
        return []


class EncoderFeatures:
    """A trainable transformer encoder over the logged texts (``full`` mode).

    Args:
        tokenizer: the encoder's tokenizer.
        model: a transformers ``AutoModel``.
        doc_texts: texts of the logged documents.
        query_texts: texts of the logged queries.
        max_length: tokens per text.
    """

    trainable = True

    def __init__(self, tokenizer: Any, model: Any, doc_texts: Sequence[str], query_texts: Sequence[str],
                 max_length: int) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.doc_texts = doc_texts
        self.query_texts = query_texts
        self.max_length = max_length

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """Mean-pooled, L2-normalised embeddings (with gradient when the model trains)."""
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        hidden = self.model(**enc).last_hidden_state
        return torch.nn.functional.normalize(mean_pool(hidden, enc["attention_mask"]), dim=-1)

    def documents(self, rows: np.ndarray) -> torch.Tensor:
        """Embeddings of logged documents ``rows``."""
        return self.embed([self.doc_texts[i] for i in rows.tolist()])

    def queries(self, rows: np.ndarray) -> torch.Tensor:
        """Embeddings of logged queries ``rows``."""
        return self.embed([self.query_texts[i] for i in rows.tolist()])

    def embed_all(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embeddings without gradient, in batches (validation)."""
        was_training = self.model.training
        self.model.eval()
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                out.append(self.embed(texts[start:start + batch_size]).numpy())
        self.model.train(was_training)
        return np.concatenate(out) if out else np.zeros((0, int(self.model.config.hidden_size)), np.float32)

    def parameters(self) -> list[torch.nn.Parameter]:
        """The encoder's parameters."""
        return list(self.model.parameters())


def corpus_vectors(sources: Sequence[str | os.PathLike[str]] | None, *, encoder: str, max_length: int,
                   fingerprint: str, n_docs: int, cache_dir: str | os.PathLike[str] | None = None,
                   progress: bool = False) -> np.ndarray:
    """The corpus embedding cache for ``encoder``, built (one streamed pass) when missing.

    Args:
        sources: corpus sources to stream when the cache must be built.
        encoder: encoder name/folder (the cache key).
        max_length: tokens per document.
        fingerprint: corpus fingerprint (the cache key).
        n_docs: documents in the corpus.
        cache_dir: cache root.
        progress: show a progress bar while encoding.
    """
    cache = corpus_cache(encoder, max_length, fingerprint, cache_dir)
    name = encoder
    if cache.matches(model=name, fingerprint=fingerprint, n=n_docs):
        return cache.load()
    from selectsearch.data import open_corpus
    from selectsearch.errors import DataNotFoundError

    if not sources:
        raise DataNotFoundError(f"no embedding cache at {cache.folder} and no corpus to build it from")
    text_encoder = TextEncoder(encoder_arg(encoder), max_length=max_length)
    docs = (d.contents for d in open_corpus(list(sources)))
    return cache.build(text_encoder, docs, n=n_docs, fingerprint=fingerprint, progress=progress)
