"""Data readers: corpora, queries, qrels, runs and click logs.

Everything streams; nothing here imports pandas, torch or ir_datasets at import time
(``irds:`` sources load ir_datasets on first use).

Formats: BEIR folders (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``), JSONL
(plain or ``.gz``), TSV, TREC SGML documents, TREC topics, TREC qrels and runs, and
ir_datasets ids written ``"irds:<id>"``.

Example:
    >>> from selectsearch.data import open_corpus, load_queries, load_qrels, resolve_data_dir
    >>> scifact = resolve_data_dir() / "scifact"  # doctest: +SKIP
    >>> corpus = open_corpus(scifact)  # doctest: +SKIP
    >>> queries = load_queries(scifact, split="test")  # doctest: +SKIP
    >>> qrels = load_qrels(scifact, split="test")  # doctest: +SKIP
"""

from __future__ import annotations

from selectsearch.data.beir import splits
from selectsearch.data.corpus import Corpus, CorpusFile, CorpusSource, open_corpus
from selectsearch.data.ids import (
    DocIdRegistry,
    DuplicateDocIdError,
    check_unique_ids,
    corpus_fingerprint,
)
from selectsearch.data.logs import iter_logs
from selectsearch.data.qrels import load_qrels
from selectsearch.data.queries import load_queries
from selectsearch.data.runs import read_run, write_run
from selectsearch.data.sources import resolve_data_dir

__all__ = [
    "Corpus",
    "CorpusFile",
    "CorpusSource",
    "DocIdRegistry",
    "DuplicateDocIdError",
    "check_unique_ids",
    "corpus_fingerprint",
    "iter_logs",
    "load_qrels",
    "load_queries",
    "open_corpus",
    "read_run",
    "resolve_data_dir",
    "splits",
    "write_run",
]
