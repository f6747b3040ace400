"""``mico@m``: route each query to the top-m shards of the MICO query-routing head.

The model comes from the index's partition (an index built with ``--partitioner mico``) or from
the ``mico_model=DIR`` option for an index partitioned otherwise (its K must match). Only the
encoder and the query head are loaded — never the document head.

Example:
    >>> from selectsearch.index.sharded import ShardedIndex  # doctest: +SKIP
    >>> router = make_mico_router(parse_route("mico@2"), ShardedIndex.open("indexes/hd-mico16"),  # doctest: +SKIP
    ...                           qrels=None, seed=0)
    >>> router.rank([Query("q1", "cordless drill")]).shape  # doctest: +SKIP
    (1, 16)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch.errors import ModelError, RouteSpecError
from selectsearch.route.base import RouteSpec, ScoringRouter
from selectsearch.route.registry import ROUTERS
from selectsearch.types import EncodedQueries, Qrels, Query

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.index.sharded import ShardedIndex

__all__ = ["MicoRouter", "make_mico_router", "mico_model_dir"]


class MicoRouter(ScoringRouter):
    """Ranks shards by the query head's logits ``W_q f(x) + b_q`` (ties by shard id).

    Args:
        model_dir: a MICO model folder.
    """

    name = "mico"

    def __init__(self, model_dir: str | Path) -> None:
        from selectsearch.mico.model import MicoModelFolder

        self.model = MicoModelFolder(model_dir)
        self.n_shards = self.model.n_clusters
        self.scorer = self.model.query_router()
        self._encoded: EncodedQueries | None = None

    def scores(self, queries: Sequence[Query]) -> np.ndarray:
        """``(n, K)`` routing logits."""
        texts = [q.text for q in queries]
        if not texts:
            return np.zeros((0, self.n_shards), np.float32)
        encoder = self.scorer.text_encoder()
        vectors = encoder.encode(texts)
        self._encoded = EncodedQueries(encoder.name, encoder.max_length, encoder.precision, tuple(texts), vectors)
        out: np.ndarray = self.scorer.scores_from_embeddings(vectors)
        return out

    def encoded_queries(self) -> EncodedQueries | None:
        return self._encoded


def mico_model_dir(index: ShardedIndex, mico_model: str | Path | None = None) -> Path:
    """Where the MICO model of ``index`` is (see the module docs).

    Raises:
        RouteSpecError: no model, or one whose K differs from the index's shard count.
    """
    if mico_model is not None:
        folder = Path(mico_model)
    else:
        part = index.manifest.partition
        if part is None or part.kind != "mico":
            raise RouteSpecError(
                f"'mico' needs a MICO model: {index.path} was partitioned with {index.manifest.partition_kind!r}; "
                "rebuild it with --partitioner mico --mico-model DIR, or pass the option mico_model=DIR (same shard "
                "count)")
        folder = index.path / "partition" / part.model_dir
    from selectsearch.mico.model import MicoModelFolder

    try:
        k = MicoModelFolder(folder).n_clusters
    except ModelError as exc:
        raise RouteSpecError(f"'mico' cannot load its model: {exc}") from exc
    if k != index.n_shards:
        raise RouteSpecError(f"MICO model {folder} has {k} clusters but {index.path} has {index.n_shards} shards; "
                             "use a model trained with the same --shards, or index with --partitioner mico")
    return folder


def make_mico_router(spec: RouteSpec, index: ShardedIndex, *, qrels: Qrels | None = None, seed: int = 0,
                     mico_model: str | Path | None = None, **options: Any) -> MicoRouter:
    """The ``mico`` router for ``index`` (factory called by :func:`selectsearch.route.make_router`).

    Raises:
        RouteSpecError: no usable model (see :func:`mico_model_dir`) or an unknown option.
    """
    ROUTERS.check(spec.name, options)  # refuses what is left, naming the valid options
    return MicoRouter(mico_model_dir(index, mico_model))
