"""Build one Lucene shard index with Anserini's ``IndexCollection``.

The shard's documents are first written as Anserini JSON lines ``{"id", "contents", "shard"}``
(the same file is kept as the shard's document store). ``IndexCollection`` then indexes that
file with positions and document vectors, the default English analyzer (Porter stemming,
Lucene stop words — what pyserini's BEIR "flat" indexes use), and merges to one segment.

The ``shard`` field holds the shard number as one token. Searching a *subset* of shards of
the sharded collection is a filter on that field (see :mod:`selectsearch.lucene.searcher`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from selectsearch.errors import CorruptIndexError
from selectsearch.lucene.jvm import jclass, quiet_logging

__all__ = ["CONTENTS_FIELD", "ID_FIELD", "SHARD_FIELD", "check_lucene_index", "index_shard", "java_problem",
           "open_directory_reader", "read_lucene_ids"]

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


_JAVA_PATH = re.compile(r'path="([^"]+)"')
_JAVA_CLASS = re.compile(r"((?:[a-z]\w*\.)+[A-Z]\w*(?:Exception|Error))")


def _shard_label(index_dir: Path) -> str:
    """``shard 005`` for ``<index>/shards/005/lucene``, else the folder itself."""
    index_dir = Path(index_dir)
    if index_dir.parent.parent.name == "shards":
        return f"shard {index_dir.parent.name}"
    return str(index_dir)


def java_problem(index_dir: Path, exc: BaseException) -> str:
    """One line for a Lucene exception about ``index_dir``: exception class, file and Lucene's reason."""
    text = " ".join(str(exc).split())
    text = text.removeprefix("JVM exception occurred:").strip()
    found = _JAVA_CLASS.search(text)
    kind = found.group(1).rsplit(".", 1)[-1] if found else type(exc).__name__
    if found and text.startswith(found.group(1)):
        text = text[len(found.group(1)):].lstrip(": ")
    path = _JAVA_PATH.search(text)
    if path:
        file = Path(path.group(1)).name
    elif kind == "IndexNotFoundException":
        file = "segments_N"
        text = "no segments_N file: the Lucene index is missing or was deleted"
    else:
        file = "?"
    reason = _JAVA_PATH.sub("", text).split(" (resource=")[0].split(": files: [")[0].strip(" (),")
    return f"{index_dir / file if file != '?' else index_dir}: {kind}: {reason[:200]}"


def _is_java_exception(exc: BaseException) -> bool:
    return hasattr(exc, "classname") or type(exc).__name__ == "JavaException"


def open_directory_reader(index_dir: Path) -> Any:
    """A Lucene ``DirectoryReader`` on ``index_dir`` (memory-mapped).

    Raises:
        CorruptIndexError: Lucene cannot open the index (``IndexNotFoundException``,
            ``CorruptIndexException``, ...); the message names the shard and the file.
    """
    if not Path(index_dir).is_dir():  # FSDirectory.open would create it
        raise CorruptIndexError(f"{_shard_label(index_dir)}: the Lucene folder {index_dir} is missing; the index is "
                                "damaged — rebuild it with `selectsearch index ... --overwrite`")
    fs_directory = jclass("org.apache.lucene.store.FSDirectory")
    paths = jclass("java.nio.file.Paths")
    reader_cls = jclass("org.apache.lucene.index.DirectoryReader")
    try:
        return reader_cls.open(fs_directory.open(paths.get(str(index_dir))))
    except Exception as exc:  # jnius raises JavaException (an Exception) for any Java throwable
        if not _is_java_exception(exc):
            raise
        raise CorruptIndexError(
            f"{_shard_label(index_dir)}: Lucene cannot open {java_problem(index_dir, exc)}; the index is damaged — "
            "rebuild it with `selectsearch index ... --overwrite` (`selectsearch verify INDEX` lists every problem)"
        ) from None


def check_lucene_index(index_dir: Path) -> tuple[list[str], list[str] | None]:
    """Lucene's own checks of one index: ``CheckIndex`` (every file's checksum, then structure).

    Nothing is written into ``index_dir`` (no lock file is taken).

    Returns:
        ``(problems, ids)``: one line per problem, naming the file; and the ``id`` of every
        document in Lucene's doc order (``None`` when the index cannot be read).
    """
    quiet_logging()
    problems: list[str] = []
    if not Path(index_dir).is_dir():  # FSDirectory.open would create it
        return [f"{index_dir}: the Lucene folder is missing"], None
    directory = jclass("org.apache.lucene.store.FSDirectory").open(
        jclass("java.nio.file.Paths").get(str(index_dir)), jclass("org.apache.lucene.store.NoLockFactory").INSTANCE)
    try:
        checker = jclass("org.apache.lucene.index.CheckIndex")(directory)
        try:
            status = checker.checkIndex()
        finally:
            checker.close()
        if status.missingSegments:
            problems.append(f"{index_dir}: no segments_N file: the Lucene index is missing or was deleted")
        segments = status.segmentInfos
        for i in range(segments.size() if segments is not None else 0):
            error = segments.get(i).error
            if error is not None:
                problems.append(java_problem(index_dir, Exception(error.toString())))
        if not status.clean and not problems:
            problems.append(f"{index_dir}: CheckIndex found {status.numBadSegments} damaged segment(s)")
    except Exception as exc:
        if not _is_java_exception(exc):
            raise
        problems.append(java_problem(index_dir, exc))
    finally:
        directory.close()
    if problems:
        return problems, None
    try:
        return problems, read_lucene_ids(index_dir)
    except CorruptIndexError as exc:
        return [str(exc)], None
