"""Build one Lucene shard index with Anserini's ``IndexCollection`` (and merge shard indexes into one).

The shard's documents are first written as Anserini JSON lines ``{"id", "contents", "shard"}``
(the same file is kept as the shard's document store). ``IndexCollection`` then indexes that
file with positions and document vectors, the default English analyzer (Porter stemming,
Lucene stop words — what pyserini's BEIR "flat" indexes use), and merges to one segment.

The ``shard`` field holds the shard number as one token. Searching a *subset* of shards of
the sharded collection is a filter on that field (see :mod:`selectsearch.lucene.searcher`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from selectsearch.errors import CorruptIndexError, SelectSearchError
from selectsearch.lucene.jvm import jclass, quiet_logging

__all__ = ["CONTENTS_FIELD", "ID_FIELD", "SHARD_FIELD", "check_lucene_index", "index_collection_argv", "index_shard",
           "index_shards_in_jvm", "is_java_exception", "java_problem", "merge_shard_indexes", "open_directory_reader",
           "read_lucene_ids"]

log = logging.getLogger(__name__)

SHARD_FIELD = "shard"
CONTENTS_FIELD = "contents"
ID_FIELD = "id"


def index_collection_argv(input_dir: Path, index_dir: Path, *, threads: int = 1, memory_mb: int = 512) -> list[str]:
    """Anserini ``IndexCollection``'s arguments for one shard: every ``*.jsonl`` file of
    ``input_dir`` into a new Lucene index at ``index_dir`` (see the module docstring)."""
    return [
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


def index_shard(input_dir: Path, index_dir: Path, *, threads: int = 1, memory_mb: int = 512) -> int:
    """Index every ``*.jsonl`` file of ``input_dir`` into a new Lucene index at ``index_dir``.

    Returns the number of documents indexed. ``threads`` > 1 only helps with several input files.
    """
    quiet_logging()
    args = jclass("io.anserini.index.IndexCollection$Args")()
    # args4j parses the same flags as Anserini's command line (array fields cannot be set
    # through jnius); constructing IndexCollection ourselves avoids main()'s System.exit paths.
    argv = index_collection_argv(input_dir, index_dir, threads=threads, memory_mb=memory_mb)
    jclass("org.kohsuke.args4j.CmdLineParser")(args).parseArgument(*argv)
    indexer = jclass("io.anserini.index.IndexCollection")(args)
    indexer.run()
    counters = indexer.getCounters()
    return int(counters.indexed.get())


def index_shards_in_jvm(jobs: Sequence[tuple[int, Path, Path]], *, threads: int,
                        memory_mb: int) -> Generator[tuple[int, int, list[str]], None, None] | None:
    """Index several shards at once on ``threads`` Java threads of this process's JVM.

    ``jobs`` are ``(shard, input_dir, index_dir)``, started in that order; yields ``(shard,
    documents indexed, ids)`` as each finishes, ``ids`` being what :func:`read_lucene_ids` reads
    (read on the same Java thread, so that is parallel too). Each shard is indexed as
    :func:`index_shard` does (one ``IndexCollection``), so the indexes are the same as a serial
    build's. Unlike worker processes, no JVM is started per thread: on a small collection that
    start costs more than the indexing.

    Close the generator (``contextlib.closing``) when not reading it to the end: that stops
    the shards still being indexed. Returns ``None`` when the compiled helper is not available
    (no ``javac``; see :mod:`selectsearch.lucene.java_helpers`): the caller then indexes another
    way.

    Raises:
        SelectSearchError: a shard failed (Lucene's message); the other shards are stopped first.
    """
    from selectsearch.lucene.java_helpers import INDEXER_CLASS
    from selectsearch.lucene.jvm import optional_jclass, start_jvm

    start_jvm()
    helper = optional_jclass(INDEXER_CLASS)
    if helper is None:
        return None
    quiet_logging()
    return _run_in_jvm(helper(int(threads)), list(jobs), memory_mb)


def _run_in_jvm(indexer: Any, jobs: list[tuple[int, Path, Path]],
                memory_mb: int) -> Generator[tuple[int, int, list[str]], None, None]:
    from selectsearch.lucene.jvm import JNI_LOCK  # pyjnius calls are not thread-safe (see JNI_LOCK)

    try:
        with JNI_LOCK:
            for shard, input_dir, index_dir in jobs:
                argv = index_collection_argv(input_dir, index_dir, threads=1, memory_mb=memory_mb)
                indexer.submit(int(shard), argv, str(index_dir))
        for _ in jobs:
            line = None
            while line is None:  # short waits: Ctrl-C (a KeyboardInterrupt here) is seen between them
                with JNI_LOCK:
                    line = indexer.poll(200)
            fields = str(line).split("\t", 2)
            shard, count = int(fields[0]), int(fields[1])
            if count < 0:
                reason = fields[2] if len(fields) > 2 else "?"
                raise SelectSearchError(f"shard {shard:03d}: Lucene could not index it: {reason}")
            yield shard, count, fields[2].split("\n")[:-1]
    finally:
        # a failure or an interrupt: stop the other shards before the build removes their folder
        with JNI_LOCK:
            stopped = indexer.stop(60_000)
        if not stopped:
            log.warning("Lucene indexing threads were still running 60 s after being stopped")


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


def is_java_exception(exc: BaseException) -> bool:
    """Whether ``exc`` is a Java throwable raised through pyjnius."""
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
        if not is_java_exception(exc):
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
        if not is_java_exception(exc):
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


def merge_shard_indexes(shard_dirs: Sequence[Path], out_dir: Path) -> int:
    """Copy the shard indexes, in order, into ONE new Lucene index at ``out_dir`` (one segment).

    Documents keep their order: shard ``i``'s documents are the doc ids ``[base_i, base_i +
    size_i)`` of the new index, ``base_i`` the sizes of the shards before it — the global doc ids
    of the shards opened together (:class:`~selectsearch.lucene.searcher.ShardedLuceneSearcher`).
    Postings, norms, stored fields and document vectors are copied as they are (a merge: nothing is
    analysed again). Returns the number of documents.

    Raises:
        SelectSearchError: a shard has deleted documents (doc ids would shift), or the merged index
            holds another number of documents (:func:`selectsearch.index.ranges.add_lucene_ranges`
            then checks every doc id's place).
    """
    quiet_logging()
    readers = [open_directory_reader(Path(d)) for d in shard_dirs]
    try:
        for d, reader in zip(shard_dirs, readers, strict=True):
            if int(reader.numDeletedDocs()):
                raise SelectSearchError(f"{d}: {int(reader.numDeletedDocs())} deleted documents; a shard index "
                                        "with deletions cannot be merged without shifting doc ids")
        total = sum(int(r.maxDoc()) for r in readers)
    finally:
        for r in readers:
            r.close()
    fs = jclass("org.apache.lucene.store.FSDirectory")
    paths = jclass("java.nio.file.Paths")
    sources = [fs.open(paths.get(str(d))) for d in shard_dirs]
    directory = fs.open(paths.get(str(out_dir)))
    config = jclass("org.apache.lucene.index.IndexWriterConfig")()
    config.setOpenMode(jclass("org.apache.lucene.index.IndexWriterConfig$OpenMode").CREATE)
    # a log merge policy merges adjacent segments only, so the one segment keeps the order in
    # which the shards' segments were added; one merge of all of them (a merge factor above their number)
    policy = jclass("org.apache.lucene.index.LogByteSizeMergePolicy")()
    policy.setMergeFactor(max(2, len(sources) * 4))
    policy.setMaxMergeMBForForcedMerge(float(1 << 40))
    config.setMergePolicy(policy)
    writer = jclass("org.apache.lucene.index.IndexWriter")(directory, config)
    try:
        writer.addIndexes(*sources)  # the shards' segment files, appended in shard order
        writer.forceMerge(1)
        writer.commit()
    finally:
        writer.close()
        directory.close()
        for d in sources:
            d.close()
    merged = open_directory_reader(out_dir)
    try:
        if int(merged.maxDoc()) != total:
            raise SelectSearchError(f"{out_dir}: the merged index holds {int(merged.maxDoc())} documents, the shards "
                                    f"{total}")
    finally:
        merged.close()
    return total
