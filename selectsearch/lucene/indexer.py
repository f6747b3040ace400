"""Build one Lucene shard index with Anserini's ``IndexCollection``.

The shard's documents are first written as Anserini JSON lines ``{"id", "contents", "shard"}``
(the same file is kept as the shard's document store). ``IndexCollection`` then indexes that
file with positions and document vectors, the default English analyzer (Porter stemming,
Lucene stop words — what pyserini's BEIR "flat" indexes use), and merges to one segment.

The ``shard`` field holds the shard number as one token. Searching a *subset* of shards of
the sharded collection is a filter on that field (see :mod:`selectsearch.lucene.searcher`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selectsearch.lucene.jvm import jclass, quiet_logging

__all__ = ["CONTENTS_FIELD", "ID_FIELD", "SHARD_FIELD", "index_shard", "read_lucene_ids"]

SHARD_FIELD = "shard"
CONTENTS_FIELD = "contents"
ID_FIELD = "id"


def index_shard(input_dir: Path, index_dir: Path, *, threads: int = 1, memory_mb: int = 512) -> int:
    """Index every ``*.jsonl`` file of ``input_dir`` into a new Lucene index at ``index_dir``.

    Returns the number of documents indexed. ``threads`` > 1 only helps with several input files.
    """
    quiet_logging()
    args = jclass("io.anserini.index.IndexCollection$Args")()
    # args4j parses the same flags as Anserini's command line (array fields cannot be set
    # through jnius); constructing IndexCollection ourselves avoids main()'s System.exit paths.
    argv = [
        "-collection", "JsonCollection",
        "-input", str(input_dir),
        "-index", str(index_dir),
        "-generator", "DefaultLuceneDocumentGenerator",
        "-threads", str(int(threads)),
        "-memoryBuffer", str(int(memory_mb)),
        "-storePositions", "-storeDocvectors",
        "-optimize",  # one segment: smaller, faster, and a stable doc order
        "-quiet",
        "-fields", SHARD_FIELD,
    ]
    jclass("org.kohsuke.args4j.CmdLineParser")(args).parseArgument(*argv)
    indexer = jclass("io.anserini.index.IndexCollection")(args)
    indexer.run()
    counters = indexer.getCounters()
    return int(counters.indexed.get())


def read_lucene_ids(index_dir: Path) -> list[str]:
    """The ``id`` field of every document, in Lucene's internal doc order.

    One match-all search sorted by index order and Anserini's ``ScoredDocs`` bring all ids
    across JNI as one string array (two calls per document through pyjnius would be ~50x slower).
    """
    reader = open_directory_reader(index_dir)  # starts the JVM: import jnius only after this
    from jnius import cast

    try:
        n = int(reader.maxDoc())
        if n == 0:
            return []
        searcher = jclass("org.apache.lucene.search.IndexSearcher")(cast("org.apache.lucene.index.IndexReader", reader))
        top = searcher.search(jclass("org.apache.lucene.search.MatchAllDocsQuery")(), n,
                              jclass("org.apache.lucene.search.Sort").INDEXORDER)
        scored = jclass("io.anserini.search.ScoredDocs").fromTopDocs(top, searcher)
        lucene_docids = list(scored.lucene_docids)
        if lucene_docids != list(range(n)):
            raise RuntimeError(f"{index_dir}: could not read every document id in index order")
        return [str(x) for x in scored.docids]
    finally:
        reader.close()


def open_directory_reader(index_dir: Path) -> Any:
    """A Lucene ``DirectoryReader`` on ``index_dir`` (memory-mapped)."""
    fs_directory = jclass("org.apache.lucene.store.FSDirectory")
    paths = jclass("java.nio.file.Paths")
    reader_cls = jclass("org.apache.lucene.index.DirectoryReader")
    return reader_cls.open(fs_directory.open(paths.get(str(index_dir))))
