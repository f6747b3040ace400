"""``knn@m``: route a query to the shards where similar logged queries found their documents.

Retrieval-augmented routing from the search logs MICO learns from: the knowledge base is every
logged query (embedded once with a sentence encoder, cached on disk) with the distribution of its
clicked / relevant documents over the index's shards. A new query's shard scores are the
similarity-weighted mean of its ``k`` nearest logged queries' distributions::

    score(q, i) = sum_{j in kNN(q)} softmax_j(cos(q, x_j) / T) * p_j(i)  +  eps * p(i)

where ``p(i)`` is the share of all logged clicks in shard ``i`` (it only orders the shards no
neighbour touched). On Home Depot's MICO shards it covers more relevant products at budget 1 than
MICO's linear query head (eval/results/mico/README.md); it is a scoring router, so
``hybrid@m`` fuses it with ``mico``, ``cori`` and ``taily``.

Options (``--router-option knn.KEY=VALUE``):

- ``logs``: qrels split of ``data`` or a TSV/JSONL click-log file (default ``train``);
- ``data``: the BEIR folder of the split (default: the folder the index was built from);
- ``k`` (default 100) and ``temperature`` (default 0.1): chosen on Home Depot's held-out logged
  queries (``eval/mico/hybrid.py``);
- ``encoder``: query encoder (default :data:`DEFAULT_KNN_ENCODER`, ``adapted``: the packaged
  all-MiniLM-L6-v2 distilled into a static token table by model2vec (``minilm-static``) and
  refitted on the index's own documents to reproduce the transformer's embeddings
  (:mod:`selectsearch.models.adapted_encoder`, :func:`adapted_encoder_folder`: built once per
  index on first use; tens of microseconds per query). ``minilm-static`` is the table without
  adaptation, ``all-MiniLM-L6-v2`` the transformer itself (5-8 ms of CPU per query, more than the
  search it routes); any model2vec or transformers folder works
  (:class:`selectsearch.encode.TextEncoder`).
  The logged queries are embedded by the same encoder (cached per encoder). The default is a
  static table because a router must cost less than the search it saves:
  ``eval/results/routing/adapted-encoder.md`` and ``cost-sfwiki32.md`` measure what each costs
  and routes.

Never pass the evaluation split as ``logs``: the router would read the answers.

Example:
    >>> dist = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    >>> knn_scores(np.array([[1.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 1.0]]), dist, k=1,
    ...            temperature=0.1).round(2).tolist()
    [[1.0, 0.0, 0.0]]
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch.errors import RouteSpecError
from selectsearch.route.base import RouteSpec, ScoringRouter
from selectsearch.route.registry import ROUTERS
from selectsearch.types import EncodedQueries, Qrels, Query

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.encode import TextEncoder
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.models.adapted_encoder import AdaptRecipe

__all__ = ["DEFAULT_KNN_ENCODER", "FAMILIARITY_NEIGHBOURS", "LoggedQueryRouter", "adapted_encoder_folder",
           "document_texts", "encode_logged_queries", "familiarity", "knn_encoder", "knn_scores",
           "log_shard_distributions", "make_knn_router", "nearest_logged", "router_from_records"]

log = logging.getLogger(__name__)

#: weight of the global click prior (only breaks ties among shards no neighbour touched)
PRIOR_WEIGHT = 1e-6
#: the query encoder of ``knn`` (and so of the fused ``hybrid``) when ``knn.encoder`` is not given:
#: a static table adapted to the index, so that routing costs a fraction of the search it saves
#: (module docs)
DEFAULT_KNN_ENCODER = "adapted"
#: neighbours averaged by :func:`familiarity`: a few, so that one near-duplicate logged query
#: does not make a whole unfamiliar topic look familiar, and few enough to stay local
FAMILIARITY_NEIGHBOURS = 5


def knn_scores(queries: np.ndarray, kb: np.ndarray, distributions: np.ndarray, *, k: int,
               temperature: float) -> np.ndarray:
    """``(n, K)`` similarity-weighted mean of the ``k`` nearest KB rows' shard distributions.

    Args:
        queries: ``(n, d)`` query vectors (normalised here).
        kb: ``(N, d)`` logged-query vectors, unit length.
        distributions: ``(N, K)`` each logged query's shard distribution (rows sum to 1).
        k: neighbours per query (capped at ``N``).
        temperature: softmax temperature over the neighbours' cosine similarities.
    """
    top, sims = nearest_logged(queries, kb, k)
    return _mix_neighbours(top, sims, distributions, temperature)


def nearest_logged(queries: np.ndarray, kb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest KB rows of each query (``(n, k)`` indices, unordered) and their cosine
    similarities (``(n, k)``); ``k`` is capped at ``N``.

    Written for one routed query as much as for a batch: each step is one numpy call on the
    whole ``(n, ...)`` array (no negated copy, rows picked by a broadcast index rather than
    ``take_along_axis``), which halved the time of a single query's neighbours.
    """
    q = np.asarray(queries, dtype=np.float32)
    q = q / np.maximum(np.sqrt(np.einsum("ij,ij->i", q, q))[:, None], 1e-12)
    sims = q @ kb.T
    n_kb = kb.shape[0]
    k = min(k, n_kb)
    top = np.argpartition(sims, n_kb - k, axis=1)[:, n_kb - k :] if k < n_kb else np.tile(np.arange(k), (len(q), 1))
    return top, sims[np.arange(len(q))[:, None], top].astype(np.float64)


def _mix_neighbours(top: np.ndarray, sims: np.ndarray, distributions: np.ndarray, temperature: float) -> np.ndarray:
    s = sims / temperature
    w = np.exp(s - s.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    # one (1, k) x (k, K) product per query, the same for a query alone or in a batch
    out: np.ndarray = np.matmul(w[:, None, :], distributions[top])[:, 0, :]
    return out


def familiarity(neighbour_sims: np.ndarray, n: int = FAMILIARITY_NEIGHBOURS) -> np.ndarray:
    """``(n_queries,)`` mean cosine similarity of each query to its ``n`` nearest logged queries.

    How familiar the logs are with a query: a paraphrase of logged queries scores near 1, a new
    kind of query scores like a random pair of queries. ``hybrid@m`` gates on it
    (:mod:`selectsearch.route.gating`). ``neighbour_sims`` is :func:`nearest_logged`'s output.
    """
    if neighbour_sims.shape[1] == 0:
        return np.zeros(len(neighbour_sims))
    m = neighbour_sims.shape[1]
    n = min(n, m)
    top = np.partition(neighbour_sims, m - n, axis=1)[:, m - n :]
    return np.asarray(np.add.reduce(top, axis=1) / n, dtype=np.float64)


def log_shard_distributions(records: Sequence[tuple[str, str, float]], shard_of_doc: dict[str, int],
                            n_shards: int) -> tuple[list[str], np.ndarray, int]:
    """Logged query texts, their ``(N, K)`` click distributions over shards, and the number of
    log records whose document is not in the index (skipped)."""
    rows: dict[str, int] = {}
    counts: list[np.ndarray] = []
    skipped = 0
    for text, doc_id, clicks in records:
        shard = shard_of_doc.get(doc_id)
        if shard is None:
            skipped += 1
            continue
        row = rows.setdefault(text, len(rows))
        if row == len(counts):
            counts.append(np.zeros(n_shards))
        counts[row][shard] += max(float(clicks), 0.0)
    texts = list(rows)
    dist = np.stack(counts) if counts else np.zeros((0, n_shards))
    totals = dist.sum(axis=1, keepdims=True)
    keep = totals[:, 0] > 0
    return [t for t, ok in zip(texts, keep, strict=True) if ok], dist[keep] / totals[keep], skipped


class LoggedQueryRouter(ScoringRouter):
    """Ranks shards by :func:`knn_scores` over a knowledge base of logged queries (module docs).

    Args:
        encoder: embeds queries (the same encoder embedded the KB).
        kb: ``(N, d)`` logged-query vectors.
        distributions: ``(N, K)`` their shard distributions.
        k: neighbours per query.
        temperature: softmax temperature over cosine similarities.
    """

    name = "knn"

    def __init__(self, encoder: TextEncoder, kb: np.ndarray, distributions: np.ndarray, *, k: int = 100,
                 temperature: float = 0.1) -> None:
        if len(kb) == 0 or len(kb) != len(distributions):
            raise RouteSpecError(f"'knn' needs logged queries with documents in the index; got {len(kb)} vectors "
                                 f"and {len(distributions)} distributions")
        if k < 1 or temperature <= 0:
            raise RouteSpecError(f"'knn' needs k >= 1 and temperature > 0, got k={k}, temperature={temperature}")
        self.encoder = encoder
        kb = np.asarray(kb, dtype=np.float32)
        self.kb = kb / np.maximum(np.linalg.norm(kb, axis=1, keepdims=True), 1e-12)
        self.distributions = np.asarray(distributions, dtype=np.float64)
        self.prior = self.distributions.mean(axis=0)
        self.n_shards = self.distributions.shape[1]
        self.k = int(k)
        self.temperature = float(temperature)
        self._encoded: EncodedQueries | None = None
        self._offered: EncodedQueries | None = None
        self._familiarity: np.ndarray | None = None

    def offer_encoded(self, encoded: EncodedQueries | None) -> None:
        """Query vectors another router just computed; the next :meth:`scores` call uses them
        instead of encoding when they come from the same encoder for the same texts (``hybrid@m``
        passes on the frozen MICO head's, so a fused query is embedded once)."""
        self._offered = encoded

    def scores(self, queries: Sequence[Query]) -> np.ndarray:
        """``(n, K)`` neighbour-weighted shard distributions (plus the tiny click prior)."""
        texts = [q.text for q in queries]
        if not texts:
            return np.zeros((0, self.n_shards))
        enc, offered, self._offered = self.encoder, self._offered, None
        same = offered is not None and offered.texts == tuple(texts) and (
            offered.model, offered.max_length, offered.precision) == (enc.name, enc.max_length, enc.precision)
        vectors = offered.vectors if same and offered is not None else enc.encode(texts)
        self._encoded = EncodedQueries(enc.name, enc.max_length, enc.precision, tuple(texts), vectors)
        top, sims = nearest_logged(vectors, self.kb, max(self.k, FAMILIARITY_NEIGHBOURS))
        if top.shape[1] > self.k:  # the familiarity needed more neighbours than the scores use
            keep = np.argsort(-sims, axis=1, kind="stable")[:, : self.k]
            top_k, sims_k = np.take_along_axis(top, keep, axis=1), np.take_along_axis(sims, keep, axis=1)
        else:
            top_k, sims_k = top, sims
        self._familiarity = familiarity(sims)
        out = _mix_neighbours(top_k, sims_k, self.distributions, self.temperature)
        return out + PRIOR_WEIGHT * self.prior

    def familiarity(self) -> np.ndarray | None:
        """:func:`familiarity` of the queries of the last :meth:`scores` call (``None`` before any)."""
        return self._familiarity

    def encoded_queries(self) -> EncodedQueries | None:
        return self._encoded


def _default_data(index: ShardedIndex) -> str:
    sources = index.manifest.corpus.sources
    formats = index.manifest.corpus.formats
    if len(sources) == 1 and formats == ["beir"]:
        return str(sources[0])
    raise RouteSpecError(f"'knn' cannot tell which BEIR folder {index.path} was built from; pass the option "
                         "knn.data=DIR (or knn.logs=FILE with a click log)")


def encode_logged_queries(encoder: TextEncoder, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
    """``(N, d)`` embeddings of logged queries, from the embedding cache when the same texts were
    embedded before by the same encoder (key: encoder, max length, hash of the texts)."""
    from selectsearch.encode import corpus_cache

    fingerprint = "logs-" + hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()
    cache = corpus_cache(encoder.name, encoder.max_length, fingerprint, precision=encoder.precision)
    if cache.matches(model=encoder.name, fingerprint=fingerprint, n=len(texts), precision=encoder.precision):
        return np.asarray(cache.load())
    return np.asarray(cache.build(encoder, iter(texts), n=len(texts), fingerprint=fingerprint, progress=progress))


def make_knn_router(spec: RouteSpec, index: ShardedIndex, *, qrels: Qrels | None = None, seed: int = 0,
                    logs: str = "train", data: str | Path | None = None, k: int | str = 100,
                    temperature: float | str = 0.1, encoder: str | None = None, **options: Any) -> LoggedQueryRouter:
    """The ``knn`` router for ``index`` (factory called by :func:`selectsearch.route.make_router`).

    Raises:
        RouteSpecError: unknown option, no data folder, or no logged document in the index.
    """
    ROUTERS.check(spec.name, options)  # refuses what is left, naming the valid options
    from selectsearch.errors import DataNotFoundError
    from selectsearch.mico.logs import read_log_records

    folder = str(data) if data is not None else (None if Path(logs).is_file() else _default_data(index))
    try:
        records = read_log_records(folder or ".", logs)
    except DataNotFoundError as exc:
        raise RouteSpecError(f"'knn' cannot read its logs: {exc}") from exc
    try:
        k, temperature = int(k), float(temperature)
    except ValueError as exc:
        raise RouteSpecError(f"'knn' options k and temperature must be numbers: {exc}") from exc
    return router_from_records(records, index, knn_encoder(encoder, index), k=k, temperature=temperature)


def knn_encoder(name: str | None, index: ShardedIndex) -> TextEncoder:
    """The ``knn`` router's query encoder on ``index``: ``name`` (the ``knn.encoder`` option), or
    :data:`DEFAULT_KNN_ENCODER` when it is not given; ``adapted`` is the static table adapted to
    ``index`` (built on first use, :func:`adapted_encoder_folder`)."""
    from selectsearch.encode import TextEncoder

    name = name or DEFAULT_KNN_ENCODER
    if name == "adapted":
        return TextEncoder(str(adapted_encoder_folder(index)))
    return TextEncoder(name)


def adapted_encoder_folder(index: ShardedIndex, recipe: AdaptRecipe | None = None, *,
                           progress: bool | None = None) -> Path:
    """The static encoder adapted to ``index`` (``knn.encoder=adapted``), built on first use from a
    seeded sample of its documents (:mod:`selectsearch.models.adapted_encoder`); keyed by the
    index's manifest, so a copy or a hard-linked clone of the index shares it."""
    from selectsearch.models.adapted_encoder import DEFAULT_ADAPT_RECIPE, adapt_static_encoder

    chosen = recipe or DEFAULT_ADAPT_RECIPE
    return adapt_static_encoder(lambda: document_texts(index, chosen.docs, chosen.seed), index.n_docs,
                                (index.path / "manifest.json").read_bytes(), label=str(index.path), recipe=chosen,
                                progress=progress)


def document_texts(index: ShardedIndex, docs: int, seed: int) -> list[str]:
    """Two short texts (:func:`~selectsearch.models.adapted_encoder.short_texts`) from each of
    ``docs`` documents of ``index`` drawn with ``seed``."""
    from selectsearch.models.adapted_encoder import short_texts

    ids = sorted(index.shard_of_doc)
    picked = np.sort(np.random.default_rng(seed).choice(len(ids), size=min(docs, len(ids)), replace=False))
    return [text for i in picked.tolist() for text in short_texts(str(index.doc(ids[i]).get("contents", "")))]


def router_from_records(records: Sequence[tuple[str, str, float]], index: ShardedIndex, encoder: TextEncoder, *,
                        k: int = 100, temperature: float = 0.1) -> LoggedQueryRouter:
    """A :class:`LoggedQueryRouter` whose KB is ``records`` (``(query, doc id, clicks)``) on ``index``.

    Raises:
        RouteSpecError: no record's document is in the index.
    """
    texts, dist, skipped = log_shard_distributions(records, index.shard_of_doc, index.n_shards)
    if skipped:
        log.warning("knn: %d of %d log records name documents not in %s; skipped", skipped, len(records), index.path)
    if not texts:
        raise RouteSpecError(f"'knn': none of the {len(records)} logged documents is in {index.path}")
    return LoggedQueryRouter(encoder, encode_logged_queries(encoder, texts), dist, k=k, temperature=temperature)
