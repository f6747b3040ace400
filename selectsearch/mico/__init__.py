"""MICO: learn the shards and the query router from search logs (Wang et al., COLING 2022).

One shared encoder ``f`` embeds queries and documents (mean pooling, L2-normalised); a
document-assignment head ``p(z|y) = softmax(W_d f(y) + b_d)`` and a query-routing head
``q(z|x) = softmax(W_q f(x) + b_q)`` share K clusters; a learnable marginal
``r(z) = softmax(theta)`` tracks the cluster sizes and is fitted by its own inner Adam step.
The loss is ``H(p, q) - beta * CE(pbar, r)`` (see :mod:`selectsearch.mico.loss`).

Modules (one job each): :mod:`~selectsearch.mico.config` (the frozen training config),
:mod:`~selectsearch.mico.loss`, :mod:`~selectsearch.mico.heads` (heads and marginal),
:mod:`~selectsearch.mico.logs` (log pairs from qrels or click files),
:mod:`~selectsearch.mico.features` (frozen cached embeddings or a trainable encoder),
:mod:`~selectsearch.mico.validation`, :mod:`~selectsearch.mico.trainer`,
:mod:`~selectsearch.mico.model` (the saved folder: load only what a task needs).

Importing this package loads no torch.

Example:
    >>> from selectsearch.mico import MicoConfig
    >>> MicoConfig(n_clusters=16).beta
    2.0
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from selectsearch.mico.config import MicoConfig

__all__ = ["MicoConfig", "MicoModelFolder", "TrainResult", "load_log_pairs", "train_mico"]

_LAZY = {
    "MicoModelFolder": "selectsearch.mico.model",
    "TrainResult": "selectsearch.mico.trainer",
    "train_mico": "selectsearch.mico.trainer",
    "load_log_pairs": "selectsearch.mico.logs",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
