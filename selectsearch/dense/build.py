"""FAISS indexes for the shards of an index: during a build, or added to an existing index.

Every document is embedded ONCE into the embedding cache (:func:`selectsearch.encode.corpus_embeddings`,
keyed by model, ``max_length`` and corpus fingerprint — the cache the dense k-means partitioner
and MICO training use). A shard's FAISS index holds the cached vectors of its documents in the
order of its ``doc_ids.txt`` (Lucene doc order, not corpus order): row ``i`` of the FAISS index
is document ``doc_ids.txt[i]``. Each shard folder gets::

    shards/007/faiss/index.faiss    the FAISS index (inner product)
    shards/007/faiss/meta.json      {n, dim, factory, model, doc_ids_sha256}

``doc_ids_sha256`` (hash of ``doc_ids.txt``) lets the searcher refuse a FAISS index whose rows no
longer match the shard's ids.

**Adding FAISS to an existing index** (:func:`add_faiss_backend`, ``selectsearch index SOURCE...
--out INDEX --add-backend faiss``) is atomic: the new shard indexes are built as
``faiss.partial`` folders while the index stays usable; a backend being replaced is first
dropped from the manifest, the folders are then swapped in, and the manifest naming the new
backend is written last. An interruption at any point leaves a valid index (at worst without
FAISS), never one whose manifest promises FAISS files that do not match.

Example:
    >>> from selectsearch.data import open_corpus  # doctest: +SKIP
    >>> add_faiss_backend("indexes/sfwiki-dense32", open_corpus(["../shared/data/scifact",
    ...                   "../shared/data/wikipedia"]), DenseConfig())  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch.atomic import replace_dir
from selectsearch.dense.config import DenseConfig
from selectsearch.errors import IndexExistsError, ModelError, SelectSearchError, ShardedIndexError
from selectsearch.index.manifest import DenseSection, Manifest, ShardEntry, command_line
from selectsearch.index.scan import scan_corpus
from selectsearch.types import Document

if TYPE_CHECKING:
    from selectsearch.encode import ChunkEncoder

__all__ = ["FAISS_DIR", "add_faiss_backend", "build_faiss_shards", "doc_ids_digest", "load_shard_index"]

log = logging.getLogger(__name__)

#: folder of a shard's FAISS index inside the shard folder
FAISS_DIR = "faiss"


def doc_ids_digest(path: Path) -> str:
    """sha256 of a shard's ``doc_ids.txt`` (what a FAISS index's rows were aligned with)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - a base dependency
        from selectsearch.errors import DependencyError

        raise DependencyError("the FAISS backend needs faiss: pip install faiss-cpu") from exc
    return faiss


def _new_index(dim: int, factory: str) -> Any:
    faiss = _faiss()
    try:
        return faiss.index_factory(int(dim), factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise SelectSearchError(
            f"FAISS cannot build index type {factory!r} for {dim}-dimensional vectors ({str(exc).splitlines()[0]}); "
            "use e.g. Flat, IVF256,Flat, HNSW32 or IVF256,PQ16 (PQ sub-vectors must divide the dimension)"
        ) from exc


def _row_map(corpus: Iterable[Document], n_docs: int) -> dict[str, int]:
    row_of: dict[str, int] = {}
    for i, doc in enumerate(corpus):
        row_of[doc.doc_id] = i
    if len(row_of) != n_docs:
        raise SelectSearchError(f"the corpus streamed {len(row_of)} distinct ids, expected {n_docs}")
    return row_of


def _build_one(vectors: np.ndarray, factory: str, config: DenseConfig) -> Any:
    index = _new_index(vectors.shape[1], factory)
    if not index.is_trained:
        rng = np.random.default_rng(config.seed)
        n_train = min(len(vectors), config.train_size)
        sample = vectors[np.sort(rng.choice(len(vectors), size=n_train, replace=False))]
        try:
            index.train(np.ascontiguousarray(sample))
        except RuntimeError as exc:
            raise SelectSearchError(
                f"training FAISS {factory!r} on {n_train} vectors failed ({str(exc).splitlines()[0]}); a shard needs "
                "at least as many vectors as IVF lists / PQ centroids — use Flat for small shards "
                "(--faiss-large-index with --faiss-large-threshold)"
            ) from exc
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def build_faiss_shards(root: Path, shards: list[dict[str, Any]], corpus: Iterable[Document], *, fingerprint: str,
                       n_docs: int, config: DenseConfig, folder: str = FAISS_DIR,
                       progress: bool = False, encode: ChunkEncoder | None = None) -> dict[str, Any]:
    """Build one FAISS index per non-empty shard of the index at ``root``.

    Args:
        root: index folder (or the ``.partial`` folder of a build) with ``shards/*/doc_ids.txt``.
        shards: the manifest's shard entries; those that get a FAISS index have ``"faiss"``
            appended to ``backends`` and a ``"faiss"`` entry added (``{"type", "ntotal"}``).
        corpus: the kept corpus, re-iterable, in the order the fingerprint was computed.
        fingerprint: corpus fingerprint (embedding-cache key).
        n_docs: documents in the corpus.
        config: encoder and index types.
        folder: name of the folder written in each shard (``faiss.partial`` when adding).
        progress: progress bars.
        encode: where the corpus is encoded when its embeddings are not cached (default: here;
            a distributed build passes its executor's, see :data:`selectsearch.encode.ChunkEncoder`).

    Returns:
        The manifest's ``dense`` section.
    """
    from tqdm import tqdm

    from selectsearch.encode import corpus_cache, corpus_embeddings
    from selectsearch.models.encoder import encoder_layout

    faiss = _faiss()
    started = time.time()
    layout = encoder_layout(config.model)
    embeddings = corpus_embeddings(lambda: (d.contents for d in corpus), model=config.model,
                                   max_length=config.max_length, fingerprint=fingerprint, n=n_docs,
                                   cache_dir=config.cache_dir, batch_size=config.batch_size, progress=progress,
                                   encode=encode)
    dim = int(embeddings.shape[1])
    for factory in {config.factory, config.large_factory or config.factory}:
        _new_index(dim, factory)  # a bad factory string fails before any work
    row_of = _row_map(corpus, n_docs)
    with tqdm(total=len(shards), desc="faiss", unit="shard", disable=not progress, dynamic_ncols=True) as bar:
        for entry in shards:
            shard_dir = Path(root) / entry["path"]
            ids_file = shard_dir / "doc_ids.txt"
            text = ids_file.read_text(encoding="utf-8")
            ids = text.split("\n")[:-1] if text else []
            if not ids:
                bar.update(1)
                continue
            try:
                rows = np.fromiter((row_of[d] for d in ids), dtype=np.int64, count=len(ids))
            except KeyError as exc:
                raise SelectSearchError(f"shard {entry['shard_id']}: doc id {exc.args[0]!r} is not in the corpus "
                                        "given; pass the same sources the index was built from") from exc
            vectors = np.asarray(embeddings[rows], dtype=np.float32)
            factory = config.factory_for(len(ids))
            index = _build_one(vectors, factory, config)
            out = shard_dir / folder
            if out.exists():
                shutil.rmtree(out)
            out.mkdir(parents=True)
            faiss.write_index(index, str(out / "index.faiss"))
            meta = {"n": len(ids), "dim": dim, "factory": factory, "model": config.model,
                    "max_length": config.max_length, "doc_ids_sha256": doc_ids_digest(ids_file)}
            (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
            entry["backends"] = [b for b in entry.get("backends", []) if b != "faiss"] + ["faiss"]
            entry["faiss"] = {"type": factory, "ntotal": int(index.ntotal)}
            bar.update(1)
    return {
        "backend": "faiss",
        "model": config.model,
        "max_length": config.max_length,
        "dim": dim,
        "metric": "inner_product",
        "pooling": layout.pooling,
        "normalize": layout.normalize,
        "config": config.to_json(),
        "faiss_version": str(getattr(faiss, "__version__", "")),
        "embedding_cache": str(corpus_cache(config.model, config.max_length, fingerprint, config.cache_dir).folder),
        "build_seconds": round(time.time() - started, 3),
    }


def add_faiss_backend(path: str | os.PathLike[str], corpus: Any, config: DenseConfig | None = None, *,
                      overwrite: bool = False, progress: bool = False) -> Path:
    """Add (or with ``overwrite`` replace) the FAISS backend of an existing index.

    Args:
        path: the index folder.
        corpus: the sources the index was built from (an ``open_corpus`` result); its
            fingerprint must equal the manifest's.
        config: encoder and index types.
        overwrite: replace an existing FAISS backend.
        progress: progress bars.

    Raises:
        IndexExistsError: the index has FAISS already and ``overwrite`` is false.
        ShardedIndexError: ``corpus`` is not the corpus of the index.
    """
    config = config or DenseConfig()
    folder = Path(path)
    manifest = Manifest.read(folder)
    if manifest.dense is not None and not overwrite:
        raise IndexExistsError(f"{folder} already has a FAISS backend ({manifest.dense.model}); "
                               "pass --overwrite to rebuild it")
    dedupe = str(manifest.build.get("dedupe", "error"))
    scan = scan_corpus(corpus, dedupe=dedupe, sample_size=0, seed=0, progress=progress)
    expected = manifest.corpus.fingerprint
    if scan.fingerprint != expected:
        raise ShardedIndexError(
            f"the sources given are not the corpus of {folder} (fingerprint {scan.fingerprint[:16]}…, index "
            f"{expected[:16]}…); pass the SOURCEs it was built from, in the same order"
        )
    assert scan.corpus is not None
    shards = [s.to_json() for s in manifest.shards]
    partial = f"{FAISS_DIR}.partial"
    try:
        dense = build_faiss_shards(folder, shards, scan.corpus, fingerprint=scan.fingerprint, n_docs=scan.n_docs,
                                   config=config, folder=partial, progress=progress)
    except BaseException:
        for s in shards:
            shutil.rmtree(folder / s["path"] / partial, ignore_errors=True)
        raise
    if manifest.dense is not None:  # drop the old backend from the manifest before touching its files
        replace(manifest, dense=None, shards=tuple(
            replace(s, faiss=None, backends=[b for b in s.backends if b != "faiss"]) for s in manifest.shards)
        ).write(folder)
    for s in shards:
        if (folder / s["path"] / partial).exists():
            replace_dir(folder / s["path"] / partial, folder / s["path"] / FAISS_DIR)
    added = {"backend": "faiss", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "command": command_line()}
    replace(manifest, shards=tuple(ShardEntry.from_json(s) for s in shards), dense=DenseSection.from_json(dense),
            backends_added=[*(manifest.backends_added or []), added]).write(folder)
    return folder


def load_shard_index(shard_dir: Path, *, dim: int) -> Any:
    """Read a shard's FAISS index, checking its rows still match ``doc_ids.txt`` and its dimension.

    Raises:
        ShardedIndexError: missing files, or ``doc_ids.txt`` changed since the index was built.
        ModelError: the index's dimension differs from the manifest's.
    """
    faiss = _faiss()
    folder = Path(shard_dir) / FAISS_DIR
    meta_file = folder / "meta.json"
    if not meta_file.exists() or not (folder / "index.faiss").exists():
        raise ShardedIndexError(f"{folder} has no FAISS index; add one with "
                                "`selectsearch index SOURCE... --out INDEX --add-backend faiss --overwrite`")
    meta = json.loads(meta_file.read_text())
    if meta.get("doc_ids_sha256") != doc_ids_digest(Path(shard_dir) / "doc_ids.txt"):
        raise ShardedIndexError(
            f"{folder}: FAISS rows no longer match {Path(shard_dir) / 'doc_ids.txt'}; rebuild the backend with "
            "`selectsearch index SOURCE... --out INDEX --add-backend faiss --overwrite`"
        )
    index = faiss.read_index(str(folder / "index.faiss"))
    if int(index.d) != int(dim):
        raise ModelError(f"{folder}: FAISS index has {index.d}-dimensional vectors but the manifest says {dim}; "
                         "rebuild the backend with --add-backend faiss --overwrite")
    return index
