"""Taily and CORI: shard selection from per-shard term statistics (no sample index).

Both read the statistics of :mod:`selectsearch.index.termstats` (built once per index) and
analyse the query with the index's own analyzer.

**CORI** (Callan, Lu & Croft, SIGIR 1995), per query term ``t`` and shard ``i``::

    T = df_i(t) / (df_i(t) + 50 + 150 * cw_i / avg_cw)
    I = log((K + 0.5) / cf(t)) / log(K + 1.0)
    p(t | i) = b + (1 - b) * T * I                 (b = 0.4, the default belief)

and ``score(i)`` is the mean of ``p(t | i)`` over the query terms (``cw_i``: tokens in shard i,
``cf(t)``: shards containing t, K shards), summed in the query's term order. Where the Java
helpers are compiled, a batch is scored in the JVM in one call (``selectsearch.CoriScorer``,
:mod:`selectsearch.lucene.cori_java`), to the same bits as the Python path.

**Taily** (Aly, Hiemstra & Demeester, SIGIR 2013): a document's score is the sum of its query
term scores; in shard ``i`` that sum is modelled by a Gamma distribution with mean
``sum_t E_i[s_t]`` and variance ``sum_t Var_i[s_t]`` (moments of the BM25 term score over the
shard's documents containing ``t``), over ``n_i = |D_i| * prod_t df_i(t) / |D_i|`` documents
(those expected to contain all the query terms). The same model over the whole collection gives
the score ``s_c`` above which about ``v`` documents lie (default ``v`` = 50); a shard's estimate
is ``n_i * P_i(score > s_c)`` and shards are ranked by it. Its cut-off (spec ``taily`` without
``@M``) searches shards whose estimate is at least ``n_min`` (default 1). Terms unknown to the
collection are ignored; a query with no known term ranks shards by size.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch.index.termstats import Analyzer, TermStats, dense_columns, ensure_term_stats
from selectsearch.route.base import Router, RouteSpec, rank_by_scores
from selectsearch.route.registry import ROUTERS
from selectsearch.types import Query

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.index.sharded import ShardedIndex

__all__ = ["CoriRouter", "TailyRouter", "gamma_isf", "gamma_sf", "make_stats_router"]


class _StatsRouter(Router):
    def __init__(self, stats: TermStats) -> None:
        self.stats = stats
        self.analyzer = Analyzer(stats.analyzer_class)
        sizes = stats.shard_docs.astype(np.float64)
        self._prior = 1e-12 * sizes / max(sizes.max(), 1.0)  # ties: larger shards first
        self._last: tuple[tuple[str, ...], np.ndarray] | None = None

    @abstractmethod
    def query_scores(self, term_ids: np.ndarray) -> np.ndarray:
        """``(K,)`` scores of the shards for a query's known term ids."""

    def scores(self, queries: Sequence[Query]) -> np.ndarray:
        key = tuple(q.text for q in queries)
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        out = self._text_scores(key)
        self._last = (key, out)
        return out

    def _text_scores(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), K)``: the size prior plus :meth:`batch_scores` of the texts' known terms."""
        out = np.tile(self._prior, (len(texts), 1))
        ids = [self.stats.term_ids(self.analyzer(t)) for t in texts]
        known = [i for i, x in enumerate(ids) if len(x)]
        if known:
            out[known] += self.batch_scores([ids[i] for i in known])
        return out

    def batch_scores(self, term_ids: Sequence[np.ndarray]) -> np.ndarray:
        """``(len(term_ids), K)``: :meth:`query_scores` of each query (a non-empty id array each).
        A router may score a batch at once, with results equal to the query-by-query ones."""
        return np.stack([self.query_scores(ids) for ids in term_ids])

    def rank(self, queries: Sequence[Query]) -> np.ndarray:
        return rank_by_scores(self.scores(queries))


class CoriRouter(_StatsRouter):
    """CORI shard ranking (see module docs)."""

    name = "cori"

    def __init__(self, stats: TermStats, *, belief: float = 0.4, java: bool = True) -> None:
        """``java``: score in the JVM (``selectsearch.CoriScorer``) when the Java helpers are
        compiled here; the same numbers as the Python path, without a dozen numpy calls per query."""
        super().__init__(stats)
        self.belief = belief
        self._cw_ratio = stats.shard_tokens / max(stats.shard_tokens.mean(), 1.0)
        self._beliefs = self._term_beliefs()
        self._java = self._java_scorer() if java else None

    def _java_scorer(self) -> Any | None:
        """The Java scorer over this router's tables, or ``None`` without the compiled helper."""
        from selectsearch.lucene.java_helpers import CORI_CLASS
        from selectsearch.lucene.jvm import JNI_LOCK, optional_jclass

        scorer = optional_jclass(CORI_CLASS)
        if scorer is None:
            return None
        df = self.stats.df
        if df.nnz >= 2**31:
            return None  # int32 entry pointers in Java: the Python path has no such limit
        words = sorted(self.stats.vocabulary, key=self.stats.vocabulary.__getitem__)
        with JNI_LOCK:
            return scorer(self.analyzer.java, "\n".join(words).encode("utf-8"),
                          df.indptr.astype("<i4").tobytes(), df.indices.astype("<i4").tobytes(),
                          self._beliefs.astype("<f8").tobytes(), float(self.belief),
                          self._prior.astype("<f8").tobytes())

    @property
    def engine_scorer(self) -> Any | None:
        """The Java scorer (``selectsearch.CoriScorer``), with which the Lucene engine routes and
        searches a query in one call (:meth:`selectsearch.search.SelectiveSearcher.batch_search`);
        ``None`` on the Python path."""
        return self._java

    def _text_scores(self, texts: Sequence[str]) -> np.ndarray:
        if self._java is None:
            return super()._text_scores(texts)
        from selectsearch.lucene.jvm import JNI_LOCK

        with JNI_LOCK:  # one text as a String: building a String[] across JNI costs more than scoring
            raw = (self._java.score(texts[0]) if len(texts) == 1 else self._java.scores(list(texts))).tostring()
        return np.frombuffer(raw, dtype="<f8").reshape(len(texts), len(self._prior)).astype(np.float64)

    def _term_beliefs(self) -> np.ndarray:
        """``p(t | i)`` of every stored (shard, term) pair, aligned with the CSC ``df``'s data.

        Computed once per index, with exactly the operations (and dtypes) the per-query formula
        would apply to those entries, so a query only gathers its terms' columns: routing costs
        a few microseconds per query term instead of a dozen numpy calls per query (on 32 shards
        the formula alone was about half of CORI's per-query time).
        """
        df = self.stats.df
        k = df.shape[0]
        data = df.data
        counts = np.diff(df.indptr)  # entries per term
        present = np.concatenate([[0], np.cumsum(data > 0)])
        cf = present[df.indptr[1:]] - present[df.indptr[:-1]]  # shards containing t (stored zeros aside)
        idf = np.log((k + 0.5) / np.maximum(cf, 1)) / np.log(k + 1.0)
        t = data / (data + 50.0 + 150.0 * self._cw_ratio[df.indices])
        return np.asarray(self.belief + (1.0 - self.belief) * t * np.repeat(idf, counts))

    def query_scores(self, term_ids: np.ndarray) -> np.ndarray:
        df = self.stats.df  # p(t | i) = b where df_i(t) = 0
        beliefs = dense_columns(df.indptr, df.indices, self._beliefs, term_ids, df.shape[0], fill=self.belief)
        return _mean_left_to_right(beliefs)

    def batch_scores(self, term_ids: Sequence[np.ndarray]) -> np.ndarray:
        """Every query's terms gathered in one call, then each query's mean over its own columns:
        the same numbers as :meth:`query_scores` (the same reduction over the same values, so a
        query routes alike alone and in a batch), without a gather per query."""
        df = self.stats.df
        gathered = dense_columns(df.indptr, df.indices, self._beliefs, np.concatenate(term_ids), df.shape[0],
                                 fill=self.belief)
        ends = np.cumsum([len(ids) for ids in term_ids]).tolist()
        return np.stack([_mean_left_to_right(gathered[:, end - len(ids):end])
                         for ids, end in zip(term_ids, ends, strict=True)])


def _mean_left_to_right(columns: np.ndarray) -> np.ndarray:
    """Row means of a ``(K, T)`` array, each row summed left to right (``np.cumsum``'s order; numpy's
    ``mean`` sums pairwise) then divided by ``T``: the order ``selectsearch.CoriScorer`` sums in,
    so that the Python and Java paths give the same bits and route a query alike."""
    return np.asarray(np.cumsum(columns, axis=1)[:, -1] / columns.shape[1])


def gamma_isf(q: float, shape: float, scale: float) -> float:
    """``scipy.stats.gamma.isf(q, a=shape, scale=scale)`` for ``0 < q < 1`` and a positive shape
    and scale, by the special function it calls: the same bits without its argument handling,
    which cost about as much as the rest of a Taily query (``tests/core/test_classic_routers.py``
    compares them)."""
    from scipy import special

    return float(special.gammainccinv(shape, q) * scale)


def gamma_sf(x: float, shape: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``scipy.stats.gamma.sf(x, a=shape, scale=scale)`` for ``x >= 0`` and positive shapes and
    scales, by the special function it calls (see :func:`gamma_isf`)."""
    from scipy import special

    z = np.float64(x) / scale  # in float64 as scipy.stats divides, whatever the scale's dtype
    return np.where(z <= 0, 1.0, special.gammaincc(shape, z))


class TailyRouter(_StatsRouter):
    """Taily shard ranking and cut-off (see module docs)."""

    name = "taily"

    def __init__(self, stats: TermStats, *, v: float = 50.0, n_min: float = 1.0) -> None:
        super().__init__(stats)
        self.v = v
        self.n_min = n_min

    @staticmethod
    def _moments(df: np.ndarray, s: np.ndarray, s2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        safe = np.maximum(df, 1.0)
        mean = s / safe
        var = np.maximum(s2 / safe - mean**2, 0.0)
        return mean.sum(axis=-1), var.sum(axis=-1)

    def query_scores(self, term_ids: np.ndarray) -> np.ndarray:
        term_ids = np.unique(term_ids)
        df, s, s2 = self.stats.columns(term_ids)  # (K, T)
        sizes = np.maximum(self.stats.shard_docs.astype(np.float64), 1.0)
        # documents expected to contain all query terms (independence), per shard and overall
        with np.errstate(divide="ignore"):
            n_shard = np.exp(np.log(sizes) + np.log(df / sizes[:, None]).sum(axis=1))
            total = sizes.sum()
            df_c = df.sum(axis=0)
            n_coll = float(np.exp(np.log(total) + np.log(df_c / total).sum()))
        mean_i, var_i = self._moments(df, s, s2)
        mean_c, var_c = self._moments(df_c[None, :], s.sum(axis=0)[None, :], s2.sum(axis=0)[None, :])
        mean_c_f, var_c_f = float(mean_c[0]), float(var_c[0])
        if n_coll <= self.v or mean_c_f <= 0 or var_c_f <= 0:
            cutoff = 0.0  # fewer candidates than wanted: every candidate counts
        else:
            cutoff = gamma_isf(self.v / n_coll, mean_c_f**2 / var_c_f, var_c_f / mean_c_f)
        est = np.zeros(len(sizes))
        ok = (mean_i > 0) & (var_i > 0) & (n_shard > 0)
        est[ok] = n_shard[ok] * gamma_sf(cutoff, mean_i[ok] ** 2 / var_i[ok], var_i[ok] / mean_i[ok])
        # shards where every matching document has the same score: all above or all below
        flat = (mean_i > 0) & (var_i == 0) & (n_shard > 0)
        est[flat] = np.where(mean_i[flat] >= cutoff, n_shard[flat], 0.0)
        # keep the ranking informative when estimates underflow: fall back on n_i, far below
        return np.asarray(est + 1e-9 * n_shard / max(n_shard.max(), 1e-300))

    def cutoffs(self, queries: Sequence[Query]) -> np.ndarray | None:
        return np.maximum(1, (self.scores(queries) >= self.n_min).sum(axis=1))


def make_stats_router(spec: RouteSpec, index: ShardedIndex, *, qrels: Any = None, seed: int = 0,
                      taily_v: float = 50.0, taily_n_min: float = 1.0, cori_belief: float = 0.4,
                      **options: Any) -> Router:
    """Factory used by :func:`selectsearch.route.make_router` for ``taily`` and ``cori``.

    Raises:
        RouteSpecError: an unknown option (the message names the valid ones).
    """
    ROUTERS.check(spec.name, options)  # refuses what is left, naming the valid options
    stats = ensure_term_stats(index)
    if spec.name == "cori":
        return CoriRouter(stats, belief=cori_belief)
    return TailyRouter(stats, v=taily_v, n_min=taily_n_min)
