"""Search logs as training pairs: a qrels split of a BEIR folder or a click-log file.

One pass over the corpus maps logged doc ids to stream positions (the rows of the embedding
cache), keeps the text of the logged documents only, and computes the corpus fingerprint — the
same one the index build records, so the cache built there is reused here.

Example:
    >>> pairs = load_log_pairs(["../shared/data/scifact"], "train")  # doctest: +SKIP
    >>> pairs.n_pairs, len(pairs.query_texts)  # doctest: +SKIP
    (919, 809)
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from selectsearch.errors import DataFormatError, DataNotFoundError, SelectSearchError

__all__ = ["MAX_TOPICS", "QUERIES_PER_TOPIC", "TOPIC_FRACTION", "LogPairs", "held_out_topics", "load_log_pairs",
           "read_log_records", "split_by_query", "split_by_topic", "topic_count"]

#: Share of the logged queries a topic-held-out split holds out by default. Its AUC averages over
#: held-out *topics*, not queries, so its noise is set by how many topics are held out: at
#: :data:`MAX_TOPICS` topics, 0.15 holds out about five (0.1 would be three, where one odd topic
#: decides the estimate). Much more would shrink the knowledge base of log-reading routers (``knn``)
#: well below what they read at search time, biasing the validation against them.
TOPIC_FRACTION = 0.15
#: at most this many topic clusters: topics must be broad regions of the query space. Finer
#: clusters put near-paraphrases of a held-out query into a neighbouring training cluster, and the
#: split would measure interpolation between logged queries again.
MAX_TOPICS = 32
#: at least this many logged queries per topic cluster on average (a topic is a group, not a query)
QUERIES_PER_TOPIC = 10

log = logging.getLogger(__name__)


@dataclass
class LogPairs:
    """Clicked (query, document) pairs, indexed into unique queries and unique logged documents.

    Attributes:
        query_texts: unique query texts.
        doc_texts: contents of the unique logged documents.
        doc_positions: corpus stream position of each logged document (row of the embedding cache).
        pair_query: ``(n_pairs,)`` index into ``query_texts``.
        pair_doc: ``(n_pairs,)`` index into ``doc_texts``.
        clicks: ``(n_pairs,)`` click counts (1 for qrels).
        n_docs: documents in the corpus.
        fingerprint: corpus fingerprint (sha256 of the ordered doc ids).
        size_sample_texts: contents of a seeded uniform sample of corpus documents (shard-size
            estimates in ``full`` mode validation).
        source: where the logs came from.
    """

    query_texts: list[str]
    doc_texts: list[str]
    doc_positions: np.ndarray
    pair_query: np.ndarray
    pair_doc: np.ndarray
    clicks: np.ndarray
    n_docs: int
    fingerprint: str
    size_sample_texts: list[str]
    source: str

    @property
    def n_pairs(self) -> int:
        """Number of pairs."""
        return len(self.pair_query)

    def query_fingerprint(self) -> str:
        """sha256 of the unique query texts (key of the query embedding cache)."""
        return hashlib.sha256("\n".join(self.query_texts).encode("utf-8")).hexdigest()


def read_log_records(data: str | os.PathLike[str], logs: str) -> list[tuple[str, str, float]]:
    """``(query text, doc id, clicks)`` from a qrels split of ``data`` or a click-log file.

    Args:
        data: the BEIR folder whose ``qrels/<logs>.tsv`` and ``queries.jsonl`` are read when
            ``logs`` is a split name.
        logs: a split name (pairs with relevance > 0) or a TSV/JSONL click-log path.

    Raises:
        DataNotFoundError: neither a file nor a split of ``data``.
    """
    from selectsearch.data import iter_logs, load_qrels, load_queries

    if Path(logs).is_file():
        logged = list(iter_logs(logs))
        if not logged:
            raise DataFormatError(logs, None, "no log records (the file is empty or has only a header); write "
                                              "'query<TAB>doc_id[<TAB>clicks]' lines or JSON lines with "
                                              "query and doc_id")
        return logged
    if os.sep in logs or logs.endswith((".tsv", ".jsonl", ".gz", ".json")):
        raise DataNotFoundError(f"click-log file {logs} does not exist; pass a TSV/JSONL log or a qrels split name")
    qrels = load_qrels(data, split=logs)
    queries = load_queries(data)
    records: list[tuple[str, str, float]] = []
    missing = 0
    for query_id, judged in qrels.items():
        text = queries.get(query_id)
        if text is None:
            missing += 1
            continue
        records.extend((text, doc_id, 1.0) for doc_id, grade in judged.items() if grade > 0)
    if missing:
        log.warning("%d judged queries of split %r have no text in the query file; skipped", missing, logs)
    if not records:
        raise DataNotFoundError(f"split {logs!r} of {data} has no pairs with relevance > 0; pass another split")
    return records


def load_log_pairs(sources: Sequence[str | os.PathLike[str]], logs: str, *, size_sample: int = 2048,
                   seed: int = 0) -> LogPairs:
    """Read the logs and resolve their documents in one streaming pass over the corpus.

    Args:
        sources: corpus sources (the first is the BEIR folder that holds qrels/queries).
        logs: a qrels split name or a click-log file (see :func:`read_log_records`).
        size_sample: corpus documents to sample for shard-size estimates.
        seed: seed of that sample.

    Raises:
        DataFormatError: logged documents that are not in the corpus (a few are named).
    """
    from selectsearch.data import corpus_fingerprint, open_corpus

    records = read_log_records(sources[0], logs)
    wanted = {doc_id for _, doc_id, _ in records}
    corpus = open_corpus(list(sources))
    found: dict[str, tuple[int, str]] = {}
    sample: list[str] = []
    rng = random.Random(seed)
    count = [0]

    def stream() -> Iterable[str]:
        for position, doc in enumerate(corpus):
            if doc.doc_id in wanted and doc.doc_id not in found:
                found[doc.doc_id] = (position, doc.contents)
            if position < size_sample:
                sample.append(doc.contents)
            else:
                j = rng.randint(0, position)
                if j < size_sample:
                    sample[j] = doc.contents
            count[0] = position + 1
            yield doc.doc_id

    fingerprint = corpus_fingerprint(stream())
    unknown = sorted(wanted - found.keys())
    if unknown:
        examples = ", ".join(repr(d) for d in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise DataFormatError(logs, None, f"{len(unknown)} logged doc ids are not in the corpus ({examples}{more}); "
                                          "filter the log to the corpus or index those documents")
    query_index: dict[str, int] = {}
    doc_index: dict[str, int] = {}
    pair_query, pair_doc, clicks = [], [], []
    for text, doc_id, weight in records:
        pair_query.append(query_index.setdefault(text, len(query_index)))
        pair_doc.append(doc_index.setdefault(doc_id, len(doc_index)))
        clicks.append(weight)
    doc_ids = list(doc_index)
    return LogPairs(
        query_texts=list(query_index),
        doc_texts=[found[d][1] for d in doc_ids],
        doc_positions=np.asarray([found[d][0] for d in doc_ids], dtype=np.int64),
        pair_query=np.asarray(pair_query, dtype=np.int64),
        pair_doc=np.asarray(pair_doc, dtype=np.int64),
        clicks=np.asarray(clicks, dtype=np.float32),
        n_docs=count[0],
        fingerprint=fingerprint,
        size_sample_texts=sample,
        source=str(logs),
    )


def split_by_query(pair_query: np.ndarray, n_queries: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of pair indices into (train, validation) by query: no query in both.

    numpy only: MICO training and ``tune-route`` (which must draw the same validation queries
    without loading torch) both split here.
    """
    rng = np.random.default_rng(seed)
    n_val = min(max(1, round(fraction * n_queries)), n_queries - 1)
    val_queries = np.zeros(n_queries, dtype=bool)
    val_queries[rng.permutation(n_queries)[:n_val]] = True
    is_val = val_queries[pair_query]
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def topic_count(n_queries: int) -> int:
    """Default number of topic clusters for ``n_queries`` logged queries: one per
    :data:`QUERIES_PER_TOPIC` queries, between 2 and :data:`MAX_TOPICS`.

    Example:
        >>> topic_count(40), topic_count(809), topic_count(9424)
        (4, 32, 32)
    """
    return int(min(MAX_TOPICS, max(2, n_queries // QUERIES_PER_TOPIC)))


def held_out_topics(topic_sizes: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted ids of the topics a seeded draw holds out so that they hold about ``fraction`` of the queries.

    Topics are visited in a seeded random order; one is taken when that brings the held-out share
    closer to ``fraction`` (a topic larger than what is missing is skipped, so one huge cluster
    does not swallow the split). At least one non-empty topic is held out and at least one kept.

    Raises:
        SelectSearchError: fewer than two non-empty topics, or ``fraction`` outside (0, 1).

    Example:
        >>> held_out_topics(np.array([10, 10, 10, 10]), 0.25, seed=0).tolist()
        [2]
    """
    sizes = np.asarray(topic_sizes, dtype=np.int64)
    if not 0.0 < fraction < 1.0:
        raise SelectSearchError(f"the held-out fraction of a topic split must be in (0, 1), got {fraction}")
    nonempty = np.flatnonzero(sizes > 0)
    if len(nonempty) < 2:
        raise SelectSearchError(f"a topic split needs at least two non-empty topic clusters of logged queries, got "
                                f"{len(nonempty)}; log more (varied) queries or use a random split")
    target = fraction * sizes.sum()
    order = nonempty[np.random.default_rng(seed).permutation(len(nonempty))]
    held: list[int] = []
    total = 0
    for topic in order.tolist():
        if len(held) == len(nonempty) - 1:
            break
        if abs(total + sizes[topic] - target) < abs(total - target):
            held.append(topic)
            total += int(sizes[topic])
    if not held:  # every topic overshoots by more than it fills: the smallest one
        held.append(int(nonempty[np.argmin(sizes[nonempty])]))
    return np.sort(np.asarray(held, dtype=np.int64))


def split_by_topic(pair_query: np.ndarray, query_topic: np.ndarray, fraction: float,
                   seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of pair indices into (train, validation) that holds out WHOLE topics.

    Like :func:`split_by_query` (no query in both parts), and moreover no topic in both: every
    query of a held-out topic (:func:`held_out_topics`, about ``fraction`` of the queries) is in
    validation, so validation queries are unlike every training query the way new kinds of
    queries are unlike the logs. ``query_topic`` gives each query's topic cluster (e.g.
    :func:`selectsearch.cluster.cluster_labels` of the query embeddings). numpy only.
    """
    topics = np.asarray(query_topic, dtype=np.int64)
    held = held_out_topics(np.bincount(topics), fraction, seed)
    is_val = np.isin(topics, held)[np.asarray(pair_query, dtype=np.int64)]
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)
