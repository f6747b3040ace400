"""BM25 candidates from our own sharded index, and (query, document, grade) training pairs.

Candidates are the exhaustive BM25 top-``depth`` of a query (route ``all``: every shard, with
collection-wide statistics — exactly what ``selectsearch eval ... --route all`` ranks), cached as
a TREC run file so a second call with the same index, queries and depth is free.

Training pairs for a cross-encoder (:func:`training_pairs`) come from the training qrels: every
judged pair keeps its grade (judged grade-0 pairs are hard negatives), and BM25 candidates
that are not judged relevant are added as grade-0 negatives. Queries and pairs are subsampled
with a seed, so a run is reproducible.

Example:
    >>> cands = bm25_candidates("indexes/homedepot-mico16", {"q1": "cordless drill"}, depth=100)  # doctest: +SKIP
    >>> cands["q1"][:2]  # doctest: +SKIP
    [('205144', 12.3), ('100877', 11.9)]
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from selectsearch.errors import SelectSearchError
from selectsearch.ranking import sort_scored
from selectsearch.types import Qrels, Query

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.index.sharded import ShardedIndex

__all__ = ["Candidates", "PairConfig", "TrainingPair", "bm25_candidates", "doc_texts", "training_pairs"]

log = logging.getLogger(__name__)

#: ``{query_id: [(doc_id, bm25_score), ...]}`` best first
Candidates = dict[str, list[tuple[str, float]]]


class TrainingPair(NamedTuple):
    """One labelled (query, document) pair; ``grade`` 0 is not relevant."""

    query_id: str
    query: str
    doc_id: str
    doc: str
    grade: int


@dataclass(frozen=True)
class PairConfig:
    """How training pairs are drawn from training qrels and BM25 candidates.

    Attributes:
        depth: BM25 candidates per query that negatives are drawn from.
        max_queries: training queries sampled (0: all).
        max_positives: judged-relevant pairs kept per query (grade > 0; 0: all).
        max_judged_negatives: judged grade-0 pairs kept per query (0: none).
        bm25_negatives: unjudged BM25 candidates added per query as grade-0 negatives.
        seed: seeds every sample.
    """

    depth: int = 100
    max_queries: int = 0
    max_positives: int = 3
    max_judged_negatives: int = 1
    bm25_negatives: int = 2
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields."""
        return asdict(self)


def _open(index: ShardedIndex | str | os.PathLike[str]) -> ShardedIndex:
    from selectsearch.index.sharded import ShardedIndex

    return index if isinstance(index, ShardedIndex) else ShardedIndex.open(index)


def _cache_key(index: ShardedIndex, queries: Mapping[str, str], depth: int) -> str:
    h = hashlib.sha256()
    h.update(str(index.manifest.corpus.fingerprint or index.path).encode())
    h.update(f"|{depth}|".encode())
    for qid, text in queries.items():
        h.update(f"{qid}\t{text}\n".encode())
    return h.hexdigest()[:16]


def bm25_candidates(index: ShardedIndex | str | os.PathLike[str], queries: Mapping[str, str], *, depth: int = 100,
                    cache_dir: str | os.PathLike[str] | None = None, progress: bool = False,
                    chunk: int = 256) -> Candidates:
    """Exhaustive BM25 top-``depth`` of every query (``{query_id: [(doc_id, score), ...]}``).

    Args:
        index: an opened :class:`~selectsearch.index.sharded.ShardedIndex` or its folder.
        queries: ``{query_id: text}``.
        depth: candidates per query.
        cache_dir: where to keep the run file (keyed by corpus, queries and depth); ``None``: no cache.
        progress: a tqdm bar over query chunks.
        chunk: queries searched per batch.
    """
    from selectsearch.data import read_run, write_run
    from selectsearch.route.simple import ExhaustiveRouter
    from selectsearch.search import SelectiveSearcher

    idx = _open(index)
    cache: Path | None = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"bm25-{_cache_key(idx, queries, depth)}.run"
        if cache.is_file():
            run = read_run(cache)
            return {qid: sort_scored(run.get(qid, {}).items()) for qid in queries}
    searcher = SelectiveSearcher(idx, ExhaustiveRouter(idx.n_shards), None, route_name="all")
    qs = [Query(qid, text) for qid, text in queries.items()]
    out: Candidates = {}
    from tqdm import tqdm

    for start in tqdm(range(0, len(qs), chunk), desc="bm25", unit="chunk", disable=not progress):
        results = searcher.batch_search(qs[start:start + chunk], k=depth)
        for qid, res in results.items():
            out[qid] = [(h.doc_id, float(h.score)) for h in res.hits]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_run(out, cache, tag="bm25")
    return out


def doc_texts(index: ShardedIndex | str | os.PathLike[str], doc_ids: Sequence[str]) -> dict[str, str]:
    """``{doc_id: contents}`` as stored in the index (the text a reranker sees at search time)."""
    idx = _open(index)
    return {d: str(idx.doc(d)["contents"]) for d in dict.fromkeys(doc_ids)}


def training_pairs(index: ShardedIndex | str | os.PathLike[str], queries: Mapping[str, str], qrels: Qrels,
                   config: PairConfig = PairConfig(), *, cache_dir: str | os.PathLike[str] | None = None,
                   progress: bool = False) -> list[TrainingPair]:
    """Labelled pairs of the judged ``queries`` (see the module docs), in a seeded shuffled order.

    Raises:
        SelectSearchError: no query of ``queries`` has a relevant judgement.
    """
    idx = _open(index)
    rng = random.Random(config.seed)
    judged = [qid for qid in queries if any(g > 0 for g in qrels.get(qid, {}).values())]
    if not judged:
        raise SelectSearchError("no training query has a relevant judgement; check the qrels split")
    if config.max_queries and len(judged) > config.max_queries:
        judged = sorted(rng.sample(judged, config.max_queries), key=judged.index)
    chosen = {qid: queries[qid] for qid in judged}
    cands = bm25_candidates(idx, chosen, depth=config.depth, cache_dir=cache_dir, progress=progress)
    known = idx.shard_of_doc
    raw: list[tuple[str, str, int]] = []
    for qid in judged:
        rels = {d: g for d, g in qrels[qid].items() if d in known}
        pos = sorted(d for d, g in rels.items() if g > 0)
        neg = sorted(d for d, g in rels.items() if g <= 0)
        if config.max_positives and len(pos) > config.max_positives:
            pos = rng.sample(pos, config.max_positives)
        neg = rng.sample(neg, min(len(neg), config.max_judged_negatives))
        pool = [d for d, _ in cands.get(qid, []) if d not in rels]
        bm25_neg = rng.sample(pool, min(len(pool), config.bm25_negatives))
        raw += [(qid, d, int(rels[d])) for d in pos] + [(qid, d, 0) for d in neg] + [(qid, d, 0) for d in bm25_neg]
    rng.shuffle(raw)
    texts = doc_texts(idx, [d for _, d, _ in raw])
    log.info("%d training pairs from %d queries", len(raw), len(judged))
    return [TrainingPair(qid, queries[qid], d, texts[d], g) for qid, d, g in raw]


def save_pairs(pairs: Sequence[TrainingPair], path: str | os.PathLike[str]) -> None:
    """Write pairs as JSON lines (for inspection and reuse)."""
    with Path(path).open("w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps(p._asdict()) + "\n")
