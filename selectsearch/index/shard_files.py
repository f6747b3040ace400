"""One shard's files: its folder name, its document store's ids and offsets, its Lucene index.

:func:`index_one_shard` is what a build (or a parallel indexing worker,
:mod:`selectsearch.index.index_worker`, or a Ray task) runs for each shard after the documents are
written; a build that indexes shards on Java threads runs :func:`finish_shard` after each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.errors import SelectSearchError

__all__ = ["finish_shard", "index_one_shard", "shard_dir_name", "store_ids_and_offsets"]


def shard_dir_name(shard: int) -> str:
    """``shards/007`` style folder name of a shard."""
    return f"{shard:03d}"


_ID_PREFIX = b'{"id":'
_DECODER = json.JSONDecoder()


def store_ids_and_offsets(path: Path) -> tuple[list[str], list[int]]:
    """Doc ids of a shard's ``docs.jsonl`` in store order, and the byte offset of each line."""
    ids: list[str] = []
    offsets: list[int] = []
    position = 0
    with path.open("rb") as f:
        for line in f:
            # write_shards puts the id first: decode just that string, not the whole document
            if line.startswith(_ID_PREFIX):
                ids.append(_DECODER.raw_decode(line[len(_ID_PREFIX):len(_ID_PREFIX) + 4096].decode("utf-8",
                                                                                             "ignore"))[0])
            else:
                ids.append(json.loads(line)["id"])
            offsets.append(position)
            position += len(line)
    return ids, offsets


def index_one_shard(root: Path, shard: int, memory_mb: int, *, lucene: bool = True) -> dict[str, Any]:
    """Index shard ``shard`` of the build at ``root``; write ``doc_ids.txt`` and store offsets.

    Without ``lucene`` no Lucene index is built and ``doc_ids.txt`` follows the store's order.
    """
    folder = root / "shards" / shard_dir_name(shard)
    if not lucene or not (folder / "docs" / "docs.jsonl").stat().st_size:
        return finish_shard(root, shard, None)
    from selectsearch.lucene.indexer import index_shard

    return finish_shard(root, shard, index_shard(folder / "docs", folder / "lucene", threads=1, memory_mb=memory_mb))


def finish_shard(root: Path, shard: int, indexed: int | None, lucene_ids: list[str] | None = None) -> dict[str, Any]:
    """Write shard ``shard``'s ``doc_ids.txt`` and store offsets once its Lucene index is built
    (``indexed``: the documents Lucene indexed; ``None``: no Lucene index, for an empty shard or
    a build without Lucene), and return its manifest entry. ``lucene_ids``: the index's ids in
    its doc order when already read (default: read here, with
    :func:`~selectsearch.lucene.indexer.read_lucene_ids`).

    Raises:
        SelectSearchError: Lucene indexed another number of documents than the store holds.
    """
    folder = root / "shards" / shard_dir_name(shard)
    ids, offsets = store_ids_and_offsets(folder / "docs" / "docs.jsonl")
    entry: dict[str, Any] = {"shard_id": shard, "path": f"shards/{shard_dir_name(shard)}", "n_docs": len(ids)}
    if not ids:
        # An empty shard has no Lucene index; it is recorded and never searched.
        (folder / "doc_ids.txt").write_text("")
        np.save(folder / "docs.offsets.npy", np.empty(0, np.int64))
        return {**entry, "backends": []}
    if indexed is None:
        np.save(folder / "docs.offsets.npy", np.asarray(offsets, dtype=np.int64))
        (folder / "doc_ids.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")
        return {**entry, "backends": []}
    if lucene_ids is None:
        from selectsearch.lucene.indexer import read_lucene_ids

        lucene_ids = read_lucene_ids(folder / "lucene")
    if indexed != len(ids) or len(lucene_ids) != len(ids):
        raise SelectSearchError(
            f"shard {shard}: wrote {len(ids)} documents but Lucene indexed {indexed} ({len(lucene_ids)} readable); "
            "empty documents are not indexable — remove them from the corpus"
        )
    row_of = {doc_id: i for i, doc_id in enumerate(ids)}
    order = np.fromiter((row_of[d] for d in lucene_ids), dtype=np.int64, count=len(lucene_ids))
    np.save(folder / "docs.offsets.npy", np.asarray(offsets, dtype=np.int64)[order])
    (folder / "doc_ids.txt").write_text("\n".join(lucene_ids) + "\n", encoding="utf-8")
    return {**entry, "backends": ["lucene"]}
