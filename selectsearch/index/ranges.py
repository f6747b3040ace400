"""Add ONE Lucene index to a sharded index, in which every shard is a range of doc ids.

Why: separate shard indexes cost, per query, one term-dictionary lookup per query term in every
shard searched and one scorer per term per shard. Over 32 shards that was half of a k=10 query
searching them all, so exhaustive search over shards cost 1.5x (k=1000) to 2.5x (k=10) what one
unsharded index costs, whatever the engine did with the postings
(``eval/results/cost/engine-profile.md``). In one index holding the shards shard after shard, a
query term is looked up once whatever the shards searched, and a shard is only where the
scorer starts and stops (:class:`~selectsearch.lucene.searcher.ShardedLuceneSearcher`,
``one_index``).

What it costs: a second copy of the postings on disk (the merge copies the shard indexes as they
are: nothing is analysed again), and a merge after the build (seconds at 200k documents). The
shard indexes stay: they are what a Ray cluster distributes, what ``verify`` checks shard by
shard, and what an index without this copy searches.

The layout: ``<index>/lucene/`` (one Lucene segment) and the manifest's ``lucene_ranges``
section (:class:`~selectsearch.index.manifest.LuceneRangesSection`), written last, so an index
has the copy completely or not at all. :meth:`~selectsearch.index.sharded.ShardedIndex.lucene`
searches it when it is there and checks at open that it holds the shards' documents in order.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path

from selectsearch.atomic import replace_dir
from selectsearch.errors import IndexExistsError, ShardedIndexError
from selectsearch.index.manifest import LuceneRangesSection, Manifest, command_line

__all__ = ["RANGES_DIR", "add_lucene_ranges"]

#: folder of the one index, under the index folder
RANGES_DIR = "lucene"


def add_lucene_ranges(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Merge the Lucene shards of the index at ``path`` into one index (see the module docs).

    Atomic: built in ``lucene.partial``, checked, renamed, and the manifest rewritten last.

    Raises:
        IndexExistsError: the index has the one index already and ``overwrite`` is false.
        ShardedIndexError: the index has no Lucene shards (built with ``--backend faiss``).
        CorruptIndexError: a shard index cannot be opened (Lucene's message, naming the file).
    """
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.lucene.indexer import merge_shard_indexes, read_lucene_ids
    from selectsearch.lucene.jvm import start_jvm

    folder = Path(path)
    index = ShardedIndex.open(folder)
    if index.manifest.lucene_ranges is not None and not overwrite:
        raise IndexExistsError(f"{folder} already has its shards in one Lucene index ({RANGES_DIR}/); pass "
                               "--overwrite to merge them again")
    if not index.has_backend("lucene") or not index.lucene_shards:
        raise ShardedIndexError(f"{folder} has no Lucene shards to merge (built with --backend faiss)")
    start_jvm()
    shards = list(index.lucene_shards)
    partial = folder / f"{RANGES_DIR}.partial"
    shutil.rmtree(partial, ignore_errors=True)  # a killed earlier merge's leftover: ours by name
    started = time.time()
    try:
        merge_shard_indexes([index.shard_path(s) / "lucene" for s in shards], partial)
        expected = [str(x) for x in index.global_doc_ids]
        found = read_lucene_ids(partial)
        if found != expected:
            row = next((i for i, (a, b) in enumerate(zip(found, expected, strict=False)) if a != b),
                       min(len(found), len(expected)))
            raise ShardedIndexError(f"{partial}: the merged index does not hold the shards' documents in order "
                                    f"(row {row}); nothing was changed")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    manifest = index.manifest
    if manifest.lucene_ranges is not None:  # out of the manifest before its files are replaced
        dataclasses.replace(manifest, lucene_ranges=None).write(folder)
    replace_dir(partial, folder / RANGES_DIR)
    section = LuceneRangesSection(path=RANGES_DIR, shards=shards, sizes=index.shard_sizes[shards].tolist(),
                                  seconds=round(time.time() - started, 2))
    added = {"backend": "lucene-ranges", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "command": command_line()}
    Manifest.write(dataclasses.replace(manifest, lucene_ranges=section,
                                       backends_added=[*(manifest.backends_added or []), added]), folder)
    return folder
