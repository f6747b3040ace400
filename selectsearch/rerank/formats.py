"""The reranker registry: the model-folder formats ``--rerank DIR`` and
:func:`~selectsearch.rerank.load_reranker` accept.

Each format has a loader (its factory, called with ``folder``, ``retrieval`` and ``batch_size``
when it names them) and, in ``meta["detect"]``, a cheap test ``detect(folder) -> bool`` that must
not load the model. A folder is of the first format, in registration order, whose test accepts
it. Importing this module imports no model code.

Add a format in one line, or through the ``selectsearch.rerankers`` entry-point group (the entry
point names the loader, and the loader's ``detect`` attribute is the test)::

    from selectsearch.rerank.formats import register_reranker
    register_reranker("onnx", load_onnx_reranker, detect=lambda folder: (folder / "model.onnx").is_file())
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from selectsearch.errors import ModelError
from selectsearch.registry import Registry

__all__ = ["RERANKERS", "register_reranker"]

#: every reranker folder format, built in or added
RERANKERS = Registry("reranker format", group="selectsearch.rerankers", context=("folder", "retrieval", "batch_size"),
                     error=ModelError)


def register_reranker(name: str, loader: Any, *, detect: Callable[[Path], bool] | str, description: str | None = None,
                      replace: bool = False) -> Any:
    """Register a reranker folder format: ``loader(folder, ...)`` returns an object with
    ``rerank(query, hits, texts)``, ``stats`` and ``first_stage_weight`` (as
    :class:`~selectsearch.rerank.CrossEncoderReranker`); ``detect(folder)`` tells its folders."""
    return RERANKERS.register(name, loader, description=description, params=[], replace=replace, detect=detect)


register_reranker("student", "selectsearch.rerank.rerankers:load_student",
                  detect="selectsearch.rerank.rerankers:is_student",
                  description="ReAugKD student of a cross-encoder (train-reranker --teacher)")
register_reranker("cross-encoder", "selectsearch.rerank.rerankers:load_cross_encoder",
                  detect="selectsearch.rerank.rerankers:is_cross_encoder",
                  description="pair text classifier: cross-encoder teacher or DynaMaR relevance model")
