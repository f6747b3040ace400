"""Shift-aware validation of routers: hold out whole topics of the logs, and shifted test settings.

A random split of the search logs by query validates a learned router on queries that have near
paraphrases among the training queries, so it cannot see what happens when new kinds of queries
arrive: ``knn`` and MICO's query head, which generalise through query-embedding similarity,
score 86-90 coverage AUC on such a split and 60-74 on test queries from another source (issue 19).
This module provides the two remedies:

**Topic-held-out validation** (:func:`topic_split`): logged queries are clustered (spherical
k-means, :func:`selectsearch.cluster.cluster_labels`) and whole clusters are held out
(:func:`selectsearch.mico.logs.split_by_topic`), about ``fraction`` of the queries
(default :data:`~selectsearch.mico.logs.TOPIC_FRACTION`). No query and no cluster is in both
parts, so validation queries are unlike the training logs (the routers' knowledge base). Queries
are clustered ``by``:

- ``embedding`` (default): the query's sentence embedding (by default the packaged
  all-MiniLM-L6-v2, MICO's encoder; ``tune-route`` passes ``knn``'s, which reproduces it). The
  learned routers generalise through this similarity, so
  removing whole regions of it is what removes their near neighbours; it needs no index, so MICO
  training can draw the same split;
- ``shards``: the distribution of the query's clicked documents over the index's shards (as the
  unit vector ``sqrt(p)``, whose inner products are Bhattacharyya coefficients): held-out queries
  click in shards that the training queries rarely reach;
- ``both``: the two unit vectors concatenated with equal weight.

**Shifted test settings** built from a BEIR folder with train qrels (the logs) and test qrels,
written as derived BEIR folders (:func:`write_setting`) for benchmarks (``eval/routing/shift.py``):

- ``new-topics`` (:func:`new_topics_setting`): the train and test queries together are clustered
  by embedding; whole clusters holding about ``fraction`` of them are held out
  (:data:`NEW_TOPICS_FRACTION`). Test queries are the test-split queries of the held-out clusters;
  the logs are the train-split judgements of the other clusters only (train queries of held-out
  clusters are dropped). No test query's cluster has a logged query.
- ``unlogged-docs`` (:func:`unlogged_docs_setting`): every test query; the logs are the train
  judgements minus every judgement of a document that is relevant to some test query. No logged
  pair names a document relevant to a test query.

numpy only at import; the encoder (torch) and FAISS load on first use.

Example:
    >>> import numpy as np
    >>> vectors = np.repeat(np.eye(4), 5, axis=0)      # 20 queries in 4 obvious topics
    >>> split = topic_split(np.arange(20), [f"q{i}" for i in range(20)], fraction=0.25, seed=0,
    ...                     vectors=vectors)
    >>> len(split.val), split.n_held_topics
    (5, 1)
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch.errors import SelectSearchError
from selectsearch.mico.logs import TOPIC_FRACTION, held_out_topics, topic_count
from selectsearch.types import Qrels

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.encode import TextEncoder

__all__ = ["BY", "NEW_TOPICS_FRACTION", "SETTINGS", "SHIFT_FILE", "TOPIC_FRACTION", "ShiftedSetting", "TopicSplit",
           "in_distribution_setting", "new_topics_setting", "query_vectors", "shard_features", "topic_features",
           "topic_split", "unlogged_docs_setting", "write_setting"]

#: what logged queries are clustered by (see the module docs)
BY = ("embedding", "shards", "both")
#: Share of the (train + test) queries whose clusters the ``new-topics`` setting holds out. The
#: held-out clusters' test queries are the whole test set, so this must be large enough for a
#: stable mean over test queries (30% of a test split of 300 queries leaves about 90), while the
#: logs keep 70% of their queries.
NEW_TOPICS_FRACTION = 0.3
#: the test settings: the collection's own split (the reference) and the two shifted ones
SETTINGS = ("in-distribution", "new-topics", "unlogged-docs")
#: parameters and sizes of a derived folder, written last into it
SHIFT_FILE = "shift.json"


@dataclass
class TopicSplit:
    """A topic-held-out split of log pairs (:func:`topic_split`).

    Attributes:
        train: pair indices of the training part (the knowledge base).
        val: pair indices of the validation part; no query and no topic is in both.
        query_topic: ``(n_queries,)`` topic cluster of every logged query.
        held_topics: the held-out topic ids, sorted.
        n_topics: clusters asked of k-means (some may be empty).
        fraction: the held-out share of queries asked for.
        by: what the queries were clustered by (:data:`BY`).
        seed: seeds k-means and the draw of held-out topics.
    """

    train: np.ndarray
    val: np.ndarray
    query_topic: np.ndarray
    held_topics: np.ndarray
    n_topics: int
    fraction: float
    by: str
    seed: int

    @property
    def n_held_topics(self) -> int:
        """Number of held-out topics."""
        return len(self.held_topics)

    def summary(self) -> dict[str, Any]:
        """Parameters and sizes, JSON-able (what ``tune-route`` records)."""
        n_queries = len(self.query_topic)
        held_queries = int(np.isin(self.query_topic, self.held_topics).sum())
        return {"kind": "topics", "by": self.by, "fraction": self.fraction, "seed": self.seed,
                "n_topics": self.n_topics, "n_nonempty_topics": len(np.unique(self.query_topic)),
                "held_topics": [int(t) for t in self.held_topics], "n_queries": n_queries,
                "n_held_queries": held_queries, "held_fraction": held_queries / max(n_queries, 1),
                "n_train_pairs": len(self.train), "n_val_pairs_logged": len(self.val)}


def query_vectors(texts: Sequence[str], encoder: TextEncoder | None = None) -> np.ndarray:
    """``(n, d)`` unit embeddings of query texts (default encoder: the packaged all-MiniLM-L6-v2),
    from the logged-query embedding cache that the ``knn`` router's knowledge base uses."""
    from selectsearch.route.knn import encode_logged_queries

    if encoder is None:
        from selectsearch.encode import TextEncoder

        encoder = TextEncoder()
    vectors = encode_logged_queries(encoder, list(texts))
    out: np.ndarray = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return out


def shard_features(pair_query: np.ndarray, pair_shard: np.ndarray, n_queries: int, n_shards: int,
                   weights: np.ndarray | None = None) -> np.ndarray:
    """``(n_queries, n_shards)`` rows ``sqrt(p)``, ``p`` the query's click distribution over shards.

    Pairs with a negative shard (document not in the index) are ignored; a query with none gets a
    zero row.

    Example:
        >>> shard_features(np.array([0, 0, 1]), np.array([0, 1, 1]), 2, 2).astype(float).round(3).tolist()
        [[0.707, 0.707], [0.0, 1.0]]
    """
    pq = np.asarray(pair_query, dtype=np.int64)
    ps = np.asarray(pair_shard, dtype=np.int64)
    w = np.ones(len(pq)) if weights is None else np.asarray(weights, dtype=np.float64)
    keep = ps >= 0
    counts = np.zeros((n_queries, n_shards))
    np.add.at(counts, (pq[keep], ps[keep]), np.maximum(w[keep], 0.0))
    totals = counts.sum(axis=1, keepdims=True)
    p = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    out: np.ndarray = np.sqrt(p).astype(np.float32)
    return out


def topic_features(by: str, *, texts: Sequence[str] | None = None, vectors: np.ndarray | None = None,
                   shards: np.ndarray | None = None, encoder: TextEncoder | None = None) -> np.ndarray:
    """The rows the queries are clustered on for ``by`` (see the module docs).

    Args:
        by: ``embedding``, ``shards`` or ``both``.
        texts: query texts (embedded when ``vectors`` is not given and ``by`` needs them).
        vectors: precomputed query embeddings (any unit-length rows; tests pass synthetic ones).
        shards: :func:`shard_features` rows (needed by ``shards`` and ``both``).
        encoder: the query encoder (default: the packaged all-MiniLM-L6-v2).

    Raises:
        SelectSearchError: unknown ``by``, or the features it needs are missing.
    """
    if by not in BY:
        raise SelectSearchError(f"cluster logged queries by one of {', '.join(BY)}, not {by!r}")
    parts = []
    if by in ("embedding", "both"):
        if vectors is None:
            if texts is None:
                raise SelectSearchError("clustering queries by embedding needs their texts or vectors")
            vectors = query_vectors(texts, encoder)
        v = np.asarray(vectors, dtype=np.float32)
        parts.append(v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12))
    if by in ("shards", "both"):
        if shards is None:
            raise SelectSearchError(f"clustering queries by {by!r} needs the shards of their clicked documents "
                                    "(an index)")
        parts.append(np.asarray(shards, dtype=np.float32))
    if len(parts) == 1:
        return parts[0]
    return np.hstack([p / np.sqrt(len(parts)) for p in parts]).astype(np.float32)


def topic_split(pair_query: np.ndarray, query_texts: Sequence[str], *, fraction: float = TOPIC_FRACTION,
                seed: int = 0, n_topics: int | None = None, by: str = "embedding",
                pair_shard: np.ndarray | None = None, n_shards: int | None = None,
                vectors: np.ndarray | None = None, encoder: TextEncoder | None = None) -> TopicSplit:
    """Split log pairs into (train, validation) by holding out whole topic clusters of queries.

    Pair-level like :func:`selectsearch.mico.logs.split_by_query`: ``pair_query[i]`` is the row in
    ``query_texts`` of pair ``i``; ``split.train`` and ``split.val`` are pair indices, and no
    query and no topic cluster has pairs in both.

    Args:
        pair_query: ``(n_pairs,)`` query row of each pair.
        query_texts: the unique logged queries.
        fraction: held-out share of the queries (whole topics, so approximately; module docs).
        seed: seeds k-means and the draw of held-out topics.
        n_topics: k-means clusters (default :func:`~selectsearch.mico.logs.topic_count`).
        by: ``embedding`` (default), ``shards`` or ``both`` (module docs).
        pair_shard: ``(n_pairs,)`` shard of each pair's document, -1 when not in the index
            (needed by ``shards``/``both``).
        n_shards: shards of the index (with ``pair_shard``).
        vectors: precomputed query embeddings (else ``query_texts`` are embedded).
        encoder: the query encoder (default: the packaged all-MiniLM-L6-v2).

    Raises:
        SelectSearchError: bad ``by``/``fraction``, or fewer than two non-empty topics.
    """
    from selectsearch.cluster import cluster_labels
    from selectsearch.mico.logs import split_by_topic

    if not 0.0 < fraction < 1.0:
        raise SelectSearchError(f"the held-out fraction of a topic split must be in (0, 1), got {fraction}")
    n_queries = len(query_texts)
    if n_queries < 2:
        raise SelectSearchError(f"a topic split needs at least two logged queries, got {n_queries}")
    shards = None
    if by in ("shards", "both") and pair_shard is not None:
        shards = shard_features(pair_query, pair_shard, n_queries, int(n_shards or (np.max(pair_shard) + 1)))
    features = topic_features(by, texts=query_texts, vectors=vectors, shards=shards, encoder=encoder)
    k = int(n_topics) if n_topics else topic_count(n_queries)
    labels = cluster_labels(features, k, seed=seed)
    train, val = split_by_topic(pair_query, labels, fraction, seed)
    held = held_out_topics(np.bincount(labels), fraction, seed)  # the draw split_by_topic made
    return TopicSplit(train, val, labels, held, k, float(fraction), by, int(seed))


@dataclass
class ShiftedSetting:
    """A shifted test setting: the logs (train qrels) and the test qrels of a derived BEIR folder.

    Attributes:
        name: ``new-topics`` or ``unlogged-docs``.
        logs: judgements written as ``qrels/train.tsv`` (the search logs routers may read).
        test: judgements written as ``qrels/test.tsv`` (the shifted test queries).
        info: parameters and sizes (written to :data:`SHIFT_FILE`).
    """

    name: str
    logs: Qrels
    test: Qrels
    info: dict[str, Any] = field(default_factory=dict)


def _relevant_pairs(qrels: Mapping[str, Mapping[str, int]]) -> int:
    return sum(1 for rels in qrels.values() for grade in rels.values() if grade > 0)


def _sizes(logs: Qrels, test: Qrels) -> dict[str, int]:
    return {"n_log_queries": sum(1 for r in logs.values() if any(g > 0 for g in r.values())),
            "n_log_pairs": _relevant_pairs(logs), "n_test_queries": len(test),
            "n_test_pairs": _relevant_pairs(test)}


def _load(data: str | os.PathLike[str], logs: str, test: str) -> tuple[dict[str, str], Qrels, Qrels]:
    from selectsearch.data import load_qrels, load_queries

    return load_queries(data), load_qrels(data, split=logs), load_qrels(data, split=test)


def new_topics_setting(data: str | os.PathLike[str], *, fraction: float = NEW_TOPICS_FRACTION, seed: int = 0,
                       n_topics: int | None = None, logs: str = "train", test: str = "test",
                       encoder: TextEncoder | None = None,
                       vectors: Mapping[str, np.ndarray] | None = None) -> ShiftedSetting:
    """Setting (a), *new topics*: test queries from held-out query clusters, logs from the others.

    The logged queries (``logs`` split, at least one relevant document) and the judged ``test``
    queries with text are clustered together by embedding (:func:`topic_split` machinery, seeded);
    whole clusters holding about ``fraction`` of them are held out.

    Args:
        vectors: ``{query text: embedding}`` instead of encoding (tests).

    Raises:
        SelectSearchError: too few queries, or no test query lands in a held-out cluster.
    """
    from selectsearch.cluster import cluster_labels

    queries, log_qrels, test_qrels = _load(data, logs, test)
    log_ids = [q for q, rels in log_qrels.items() if q in queries and any(g > 0 for g in rels.values())]
    test_ids = [q for q in test_qrels if q in queries]
    texts = [queries[q] for q in log_ids] + [queries[q] for q in test_ids]
    if len(texts) < 2:
        raise SelectSearchError(f"{data}: need logged and test queries with text to build the new-topics setting")
    unique = list(dict.fromkeys(texts))
    if vectors is not None:
        emb = np.stack([np.asarray(vectors[t], dtype=np.float32) for t in unique])
    else:
        emb = query_vectors(unique, encoder)
    k = int(n_topics) if n_topics else topic_count(len(texts))
    labels_of_text = dict(zip(unique, cluster_labels(emb, k, seed=seed).tolist(), strict=True))
    labels = np.asarray([labels_of_text[t] for t in texts], dtype=np.int64)
    held = held_out_topics(np.bincount(labels), fraction, seed)
    held_set = set(held.tolist())
    n_log = len(log_ids)
    kept_logs = {q: dict(log_qrels[q]) for q, t in zip(log_ids, labels[:n_log].tolist(), strict=True)
                 if t not in held_set}
    shifted_test = {q: dict(test_qrels[q]) for q, t in zip(test_ids, labels[n_log:].tolist(), strict=True)
                    if t in held_set}
    if not shifted_test:
        raise SelectSearchError(f"{data}: no test query falls in the held-out clusters; raise the fraction or "
                                "change the seed")
    encoder_name = "vectors given" if vectors is not None else (encoder.name if encoder is not None else
                                                                 "all-MiniLM-L6-v2")
    info = {"setting": "new-topics", "source": str(Path(data).expanduser().resolve()), "logs_split": logs,
            "test_split": test, "by": "embedding", "encoder": encoder_name, "fraction": float(fraction),
            "seed": int(seed), "n_topics": k, "held_topics": [int(t) for t in held],
            "held_fraction": float(np.isin(labels, held).mean()),
            "original": _sizes({q: log_qrels[q] for q in log_ids}, {q: test_qrels[q] for q in test_ids}),
            **_sizes(kept_logs, shifted_test),
            "n_dropped_log_queries": n_log - len(kept_logs)}
    return ShiftedSetting("new-topics", kept_logs, shifted_test, info)


def in_distribution_setting(data: str | os.PathLike[str], *, logs: str = "train", test: str = "test"
                            ) -> ShiftedSetting:
    """The reference setting, *in distribution*: the collection's own logs and test split, as
    they are (the judged test queries with text), so that the shifted settings and the usual
    evaluation run through one protocol."""
    queries, log_qrels, test_qrels = _load(data, logs, test)
    test_kept = {q: dict(rels) for q, rels in test_qrels.items() if q in queries}
    kept = {q: dict(rels) for q, rels in log_qrels.items()}
    info = {"setting": "in-distribution", "source": str(Path(data).expanduser().resolve()), "logs_split": logs,
            "test_split": test, "original": _sizes(kept, test_kept), **_sizes(kept, test_kept)}
    return ShiftedSetting("in-distribution", kept, test_kept, info)


def unlogged_docs_setting(data: str | os.PathLike[str], *, logs: str = "train", test: str = "test") -> ShiftedSetting:
    """Setting (b), *unlogged documents*: every judged test query; the logs lose every judgement of
    a document relevant (grade > 0) to some test query."""
    queries, log_qrels, test_qrels = _load(data, logs, test)
    test_kept = {q: dict(rels) for q, rels in test_qrels.items() if q in queries}
    relevant = {d for rels in test_kept.values() for d, g in rels.items() if g > 0}
    kept: Qrels = {}
    for q, rels in log_qrels.items():
        left = {d: g for d, g in rels.items() if d not in relevant}
        if left:
            kept[q] = left
    info = {"setting": "unlogged-docs", "source": str(Path(data).expanduser().resolve()), "logs_split": logs,
            "test_split": test, "n_test_relevant_docs": len(relevant),
            "original": _sizes(log_qrels, test_kept), **_sizes(kept, test_kept),
            "n_removed_log_pairs": _relevant_pairs(log_qrels) - _relevant_pairs(kept)}
    return ShiftedSetting("unlogged-docs", kept, test_kept, info)


def _write_qrels(path: Path, qrels: Qrels) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.partial")
    with tmp.open("w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for qid, rels in qrels.items():
            for doc_id, grade in rels.items():
                f.write(f"{qid}\t{doc_id}\t{grade}\n")
    os.replace(tmp, path)


def _link(target: Path, link: Path) -> None:
    """``link`` -> ``target`` (a symlink; a copy where symlinks are not allowed)."""
    if link.is_symlink() or link.exists():
        link.unlink()
    try:
        link.symlink_to(target)
    except OSError:
        shutil.copyfile(target, link)


def write_setting(setting: ShiftedSetting, data: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write ``setting`` as a BEIR folder ``out``: the corpus and query files of ``data`` linked,
    ``qrels/train.tsv`` (the logs), ``qrels/test.tsv`` and :data:`SHIFT_FILE` (written last).

    A folder written before is rewritten; any other non-empty folder is refused.

    Raises:
        SelectSearchError: ``out`` holds something else.
    """
    from selectsearch.data.beir import corpus_path, queries_path

    folder = Path(out).expanduser()
    if folder.exists() and any(folder.iterdir()) and not (folder / SHIFT_FILE).exists():
        raise SelectSearchError(f"{folder} is not empty and holds no {SHIFT_FILE}; choose another folder for the "
                                "shifted setting")
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    (folder / SHIFT_FILE).unlink(missing_ok=True)  # an interrupted rewrite leaves no stale record
    for source in (corpus_path(data), queries_path(data)):
        _link(source.resolve(), folder / source.name)
    _write_qrels(folder / "qrels" / "train.tsv", setting.logs)
    _write_qrels(folder / "qrels" / "test.tsv", setting.test)
    tmp = folder / f"{SHIFT_FILE}.{os.getpid()}.partial"
    tmp.write_text(json.dumps(setting.info, indent=1) + "\n")
    os.replace(tmp, folder / SHIFT_FILE)
    return folder
