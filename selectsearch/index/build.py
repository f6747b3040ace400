"""Build a sharded index: scan the corpus, fit the partition, write shards, index them.

Three streaming passes, never the whole corpus in memory:

1. **scan** — count, fingerprint (sha256 of the ordered ids), duplicate-id check (naming both
   positions), seeded reservoir sample for partitioners that fit on a sample;
2. **fit + write** — fit the partitioner, then assign documents in batches and append each to
   its shard's ``docs.jsonl`` (Anserini JSON; kept as the shard's document store);
3. **index** — one Lucene index per shard with Anserini (shards in parallel with ``threads``),
   then ``doc_ids.txt`` in Lucene's doc order and the store offsets aligned with it;
4. **faiss** (``backends`` includes ``faiss``) — one FAISS index per shard from the cached
   corpus embeddings, rows aligned with ``doc_ids.txt`` (:mod:`selectsearch.dense.build`).
   Without ``lucene``, ``doc_ids.txt`` follows the document store's order.

Passes 2 and 3 run in this process and its worker processes, or on a Ray cluster with
``executor=`` a :class:`selectsearch.index.distributed.RayExecutor` (``selectsearch index
--ray``): the same per-shard function (:func:`~selectsearch.index.shard_files.index_one_shard`)
builds each shard either way, so both give the same index.

Everything is built in ``<out>.partial/`` and renamed to ``<out>`` after the manifest is
written, so an interrupted build (Ctrl-C, crash) never leaves a folder that opens as an index,
and an existing index is only replaced with ``overwrite=True``.

Layout::

    <out>/manifest.json                 written last
    <out>/partition/                    fitted partition (config.json + model files)
    <out>/shards/007/docs/docs.jsonl    {"id", "contents", "shard"} per line (document store)
    <out>/shards/007/docs.offsets.npy   byte offset of each doc_ids.txt row in docs.jsonl
    <out>/shards/007/doc_ids.txt        doc ids in Lucene doc order (FAISS rows follow it)
    <out>/shards/007/lucene/            Lucene index (positions + document vectors)
    <out>/shards/007/faiss/             FAISS index + meta.json (with ``--backend ...,faiss``)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import orjson

from selectsearch.atomic import pid_alive, recover_replaced, replace_dir
from selectsearch.dense.config import DenseConfig, parse_backends
from selectsearch.errors import IndexExistsError, SelectSearchError
from selectsearch.index.integrity import record_checksums
from selectsearch.index.manifest import (
    FORMAT,
    CorpusSection,
    DenseSection,
    LuceneSection,
    Manifest,
    PartitionSection,
    ShardEntry,
    command_line,
    library_versions,
)
from selectsearch.index.scan import IdChecker, KeptCorpus, progress_bar, scan_corpus
from selectsearch.index.shard_files import finish_shard, index_one_shard, shard_dir_name
from selectsearch.partition.base import CorpusScan, FittedPartition, Partitioner
from selectsearch.selective_metrics import partition_balance
from selectsearch.types import Document

if TYPE_CHECKING:
    from selectsearch.encode import TextEncoder

__all__ = ["BuildConfig", "ShardExecutor", "build_index", "index_shards", "make_partitioner", "scan_corpus",
           "shard_dir_name", "write_shards"]

log = logging.getLogger(__name__)

_PARTIAL_MARKER = ".selectsearch-partial"


@dataclass(frozen=True)
class BuildConfig:
    """Options of a build (recorded in the manifest).

    Args:
        n_shards: number of shards K.
        partitioner: a registered partitioner (:mod:`selectsearch.partition.registry`):
            ``random``, ``kmeans`` or ``mico`` built in.
        space: feature space of ``kmeans``: ``lexical`` (TF-IDF) or ``dense`` (encoder embeddings).
        seed: seeds sampling, k-means and random assignment.
        threads: shards indexed concurrently.
        dedupe: ``error`` (default), ``first`` or ``last`` occurrence of a repeated doc id kept.
        overwrite: replace an existing index at the output path.
        partitioner_options: extra keyword options of the partitioner (e.g. ``sample_size``).
        backends: per-shard search backends: ``("lucene",)`` (default), ``("faiss",)`` or both.
        dense: encoder and FAISS index types of the ``faiss`` backend.
    """

    n_shards: int = 16
    partitioner: str = "kmeans"
    space: str = "lexical"
    seed: int = 0
    threads: int = 2
    dedupe: str = "error"
    overwrite: bool = False
    batch_size: int = 1024
    memory_mb: int = 256
    partitioner_options: dict[str, Any] = field(default_factory=dict)
    backends: tuple[str, ...] = ("lucene",)
    dense: DenseConfig = field(default_factory=DenseConfig)


class ShardExecutor(Protocol):
    """Where a build embeds the corpus (for a partitioner that needs embeddings), assigns documents
    (pass 2) and indexes shards (pass 3), other than here.

    :class:`selectsearch.index.distributed.RayExecutor` is the one in the package; without an
    executor a build embeds and assigns in this process and indexes on Java threads of its JVM
    (see :func:`index_shards`).
    """

    def embed(self, encoder: TextEncoder, chunks: Iterable[list[str]]) -> Iterator[np.ndarray]:
        """The embeddings of each chunk of texts by a copy of ``encoder``, in the order given (a
        :data:`selectsearch.encode.ChunkEncoder`)."""
        ...

    def assign(self, fitted: FittedPartition,
               batches: Iterable[tuple[list[Document], np.ndarray]]) -> Iterator[np.ndarray]:
        """The shards of each ``(documents, stream positions)`` batch, in the order given."""
        ...

    def index(self, root: Path, jobs: list[int], *, memory_mb: int, lucene: bool) -> Iterator[dict[str, Any]]:
        """Index the shards ``jobs`` of the build at ``root`` (with
        :func:`~selectsearch.index.shard_files.index_one_shard`); yield each shard's entry as it is
        done, its files in place under ``root``."""
        ...


def make_partitioner(config: BuildConfig) -> Partitioner:
    """The :class:`Partitioner` named by ``config`` (see :mod:`selectsearch.partition.registry`)."""
    from selectsearch.partition.registry import make_partitioner as from_registry

    partitioner: Partitioner = from_registry(config.partitioner, config.space, seed=config.seed,
                                             options=dict(config.partitioner_options))
    return partitioner


def _batches(docs: Any, size: int) -> Iterator[list[Document]]:
    batch: list[Document] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _local_assign(fitted: FittedPartition,
                  batches: Iterable[tuple[list[Document], np.ndarray]]) -> Iterator[np.ndarray]:
    for batch, positions in batches:
        yield fitted.assign(batch, positions)


def write_shards(fitted: FittedPartition, docs: Iterable[Document], root: Path, *, batch_size: int,
                 progress: bool, total: int | None = None, executor: ShardExecutor | None = None) -> list[int]:
    """Pass 2: assign every document and append it to its shard's ``docs.jsonl``.

    With an ``executor`` the batches are assigned there (in parallel); documents are still written
    here, in corpus order, so each shard's store is the same either way.

    Returns the number of documents of each shard.
    """
    k = fitted.n_shards
    counts = [0] * k
    files = []
    for s in range(k):
        (root / "shards" / shard_dir_name(s) / "docs").mkdir(parents=True, exist_ok=True)
        files.append((root / "shards" / shard_dir_name(s) / "docs" / "docs.jsonl").open("wb"))
    try:
        positioned: deque[tuple[list[Document], np.ndarray]] = deque()  # batches sent, not yet written

        def numbered() -> Iterator[tuple[list[Document], np.ndarray]]:
            position = 0
            for batch in _batches(docs, batch_size):
                positioned.append((batch, np.arange(position, position + len(batch))))
                yield positioned[-1]
                position += len(batch)

        assigned = (executor.assign if executor is not None else _local_assign)(fitted, numbered())
        with progress_bar(total, "assign", "doc", progress) as bar:
            for shards in assigned:
                batch, _ = positioned.popleft()
                shards = np.asarray(shards)
                if shards.shape != (len(batch),) or (len(batch) and (shards.min() < 0 or shards.max() >= k)):
                    raise SelectSearchError(f"partitioner returned invalid shards {shards!r}")
                for doc, s in zip(batch, shards.tolist(), strict=True):
                    # orjson: 3-5x faster than json for the one line written per document
                    line = orjson.dumps({"id": doc.doc_id, "contents": doc.contents, "shard": str(s)}) + b"\n"
                    files[s].write(line)
                    counts[s] += 1
                bar.update(len(batch))
    finally:
        for f in files:
            f.close()
    return counts


def index_shards(root: Path, sizes: list[int], *, threads: int, memory_mb: int,
                 progress: bool, lucene: bool = True, executor: ShardExecutor | None = None) -> list[dict[str, Any]]:
    """Pass 3: one Lucene index per shard, ``threads`` shards at a time (or on ``executor``).

    Parallel shards run on ``threads`` Java threads of this process's JVM
    (:func:`~selectsearch.lucene.indexer.index_shards_in_jvm`, one ``IndexCollection`` per shard,
    as a serial build runs it). Without the compiled Java helper (no ``javac``) they run in
    worker *processes* (``python -m selectsearch.index.index_worker``), each starting its own
    JVM — not Python threads: pyjnius is not safe for concurrent calls from several of them
    (a method's target object is shared state; pyjnius issues 287 and 563). On a small
    collection those JVM starts cost more than the indexing (Home Depot, 16 shards: 6.1 s in two
    workers, 4.0 s serially in one JVM).
    """
    jobs = sorted(range(len(sizes)), key=lambda s: -sizes[s])  # largest first: better packing
    results: list[dict[str, Any]] = []
    with progress_bar(len(sizes), "index", "shard", progress) as bar:
        if executor is not None:
            for result in executor.index(root, jobs, memory_mb=memory_mb, lucene=lucene):
                results.append(result)
                bar.update(1)
        elif not lucene:
            for s in jobs:
                results.append(index_one_shard(root, s, memory_mb, lucene=False))
                bar.update(1)
        elif threads <= 1 or len(sizes) == 1:
            from selectsearch.lucene.jvm import start_jvm

            start_jvm()
            for s in jobs:
                results.append(index_one_shard(root, s, memory_mb))
                bar.update(1)
        else:
            from selectsearch.lucene.indexer import index_shards_in_jvm

            folders = {s: root / "shards" / shard_dir_name(s) for s in jobs}
            lucene_jobs = [(s, folders[s] / "docs", folders[s] / "lucene") for s in jobs if sizes[s]]
            finished = index_shards_in_jvm(lucene_jobs, threads=threads, memory_mb=memory_mb)
            if finished is not None:
                # closed here whatever happens: its Java threads stop before the build removes the folder
                with contextlib.closing(finished):
                    for s in jobs:
                        if not sizes[s]:
                            results.append(finish_shard(root, s, None))  # empty: no Lucene index
                            bar.update(1)
                    for s, indexed, ids in finished:
                        results.append(finish_shard(root, s, indexed, ids))
                        bar.update(1)
            else:
                from selectsearch.index.index_worker import run_workers

                queues = [jobs[i::threads] for i in range(min(threads, len(jobs)))]
                for result in run_workers(root, queues, memory_mb):
                    results.append(result)
                    bar.update(1)
    return sorted(results, key=lambda r: int(r["shard_id"]))


#: what a build (and later verbs: tune-route, csi, termstats, add-backend) writes at the top of an index
_INDEX_ENTRIES = frozenset({"manifest.json", "manifest.json.tmp", "partition", "shards", "routing.json", "csi",
                            "csi.partial", "termstats", "termstats.partial", _PARTIAL_MARKER})


def _is_index_folder(folder: Path) -> bool:
    """Whether ``folder`` is something a build made: a manifest of our format, or only our own entries."""
    if not folder.is_dir():
        return False
    try:
        if json.loads((folder / "manifest.json").read_text()).get("format") == FORMAT:
            return True
    except (OSError, ValueError, AttributeError):
        pass
    names = {p.name for p in folder.iterdir()}
    return bool(names) and all(n in _INDEX_ENTRIES or n.startswith("routing.json.") for n in names)


def _source_paths(corpus: Any) -> list[Path]:
    """The files and folders a corpus reads (irds ids have none)."""
    try:
        described = corpus.describe()
    except Exception:  # pragma: no cover - describe() is part of the corpus protocol
        return []
    out = []
    for spec in [*described.get("sources", []), *described.get("files", [])]:
        if isinstance(spec, str) and not spec.startswith("irds:"):
            out.append(Path(spec).resolve())
    return out


def _refuse_sources_inside(out: Path, partial: Path, sources: list[Path]) -> None:
    for target in (out, partial):
        resolved = target.resolve()
        for source in sources:
            if source == resolved or resolved in source.parents:
                raise IndexExistsError(
                    f"--out {out} contains the SOURCE {source}; a build replaces its --out folder and would "
                    "delete it — choose an --out outside the corpus folders"
                )


def _prepare_output(out: Path, overwrite: bool, sources: list[Path] | None = None) -> Path:
    """Check ``out`` and make a fresh ``<out>.partial`` (with the marker saying it is ours).

    ``overwrite`` replaces only a selectsearch index (or an empty folder): a folder holding
    anything else, a file, or a folder containing one of the corpus ``sources`` is refused.
    Leftovers of killed builds are cleaned first (see :func:`recover_replaced`).
    """
    partial = out.with_name(out.name + ".partial")
    _refuse_sources_inside(out, partial, sources or [])
    recover_replaced(out, _is_index_folder)
    if partial.exists():
        marker = partial / _PARTIAL_MARKER
        if not marker.exists():
            raise IndexExistsError(f"{partial} exists and was not made by selectsearch; move it away")
        owner = marker.read_text().split()[:2]  # "pid N" (then "build TOKEN")
        if len(owner) == 2 and owner[1].isdigit() and int(owner[1]) != os.getpid() and pid_alive(int(owner[1])):
            raise IndexExistsError(f"another build (pid {owner[1]}) is writing {partial}; wait for it to finish or "
                                   "stop it")
        log.warning("removing %s, left by an interrupted build", partial)
        shutil.rmtree(partial)
    if out.exists() or out.is_symlink():
        if not overwrite:
            raise IndexExistsError(f"{out} already exists; pass --overwrite to replace it or choose another --out")
        if not out.is_dir():
            raise IndexExistsError(f"{out} is not a selectsearch index (it is a file); --overwrite replaces only an "
                                   "index — choose another --out")
        if any(out.iterdir()) and not _is_index_folder(out):
            names = sorted(p.name for p in out.iterdir())
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            raise IndexExistsError(f"{out} is not a selectsearch index (it holds {shown}); --overwrite replaces only "
                                   "an index — choose another --out or move that folder away")
    partial.mkdir(parents=True)
    # the token tells a distributed build's tasks that they see this very folder (a shared path)
    (partial / _PARTIAL_MARKER).write_text(f"pid {os.getpid()}\nbuild {uuid.uuid4().hex}\n")
    return partial


def _publish(partial: Path, out: Path) -> None:
    # the marker goes only once the folder is in place: a kill between the two renames of the swap
    # leaves a marked .partial, which the next build recognises and removes
    replace_dir(partial, out)
    (out / _PARTIAL_MARKER).unlink(missing_ok=True)


def build_index(corpus: Any, out: str | os.PathLike[str], config: BuildConfig | None = None, *,
                progress: bool = False, executor: ShardExecutor | None = None) -> Path:
    """Build a sharded index of ``corpus`` at ``out`` and return its path.

    Args:
        corpus: a :class:`selectsearch.data.Corpus` (or anything with ``iter_with_positions``
            and ``describe``), e.g. ``open_corpus("../shared/data/scifact")``.
        out: output folder; must not exist unless ``config.overwrite``.
        config: build options.
        progress: show progress bars.
        executor: where documents are assigned and shards indexed (default: here, with
            ``config.threads`` worker processes), e.g. a
            :class:`~selectsearch.index.distributed.RayExecutor`; the partitioner is fitted here.

    Example:
        >>> from selectsearch.data import open_corpus
        >>> build_index(open_corpus("../shared/data/scifact"), "indexes/scifact-k16",
        ...             BuildConfig(n_shards=16, partitioner="kmeans"))  # doctest: +SKIP
    """
    config = config or BuildConfig()
    backends = parse_backends(config.backends)
    if config.n_shards < 1:
        raise SelectSearchError(f"--shards must be at least 1, got {config.n_shards}")
    out = Path(out)
    partitioner = make_partitioner(config)
    started = time.time()
    partial = _prepare_output(out, config.overwrite, _source_paths(corpus))
    try:
        t0 = time.time()
        if partitioner.needs_scan or config.dedupe == "last":
            scan = scan_corpus(corpus, dedupe=config.dedupe, sample_size=partitioner.sample_size, seed=config.seed,
                               progress=progress, require_text="lucene" in backends)
            if executor is not None:
                scan.encode = executor.embed  # corpus embeddings (dense k-means) are encoded there too
            if scan.n_docs < config.n_shards and config.partitioner != "random":
                raise SelectSearchError(
                    f"{scan.n_docs} documents cannot fill {config.n_shards} shards; use fewer --shards"
                )
            t0 = time.time()
            fitted = partitioner.fit(scan, n_shards=config.n_shards, progress=progress)
            fit_seconds = time.time() - t0
            n_docs, fingerprint, dropped = scan.n_docs, scan.fingerprint, scan.extra["duplicates_dropped"]
            (partial / "partition").mkdir()
            partition_config = fitted.save(partial / "partition")
            assert scan.corpus is not None
            counts = write_shards(fitted, scan.corpus, partial, batch_size=config.batch_size, progress=progress,
                                  total=n_docs, executor=executor)
            kept: Any = scan.corpus
        else:
            # one pass: ids are checked and fingerprinted while documents are written
            fitted = partitioner.fit(CorpusScan(0, "", [], []), n_shards=config.n_shards, progress=progress)
            fit_seconds = time.time() - t0
            (partial / "partition").mkdir()
            partition_config = fitted.save(partial / "partition")
            checker = IdChecker(config.dedupe, require_text="lucene" in backends)
            stream = (doc for raw, (doc, where, line) in enumerate(corpus.iter_with_positions())
                      if checker.keep(raw, doc, where, line))
            counts = write_shards(fitted, stream, partial, batch_size=config.batch_size, progress=progress,
                                  executor=executor)
            n_docs, fingerprint, dropped = checker.kept, checker.fingerprint, len(checker.drop)
            if n_docs == 0:
                raise SelectSearchError(f"the corpus {corpus!r} has no documents; check the path and file format")
            if n_docs < config.n_shards:  # known only now: the random partitioner reads the corpus once
                raise SelectSearchError(f"{n_docs} documents cannot fill {config.n_shards} shards; use fewer --shards")
            if dropped:
                log.warning("dropped %d repeated doc ids (--dedupe %s)", dropped, config.dedupe)
            kept = KeptCorpus(corpus, checker.drop)
        shards = index_shards(partial, counts, threads=config.threads, memory_mb=config.memory_mb,
                              progress=progress, lucene="lucene" in backends, executor=executor)
        dense: dict[str, Any] | None = None
        if "faiss" in backends:
            from selectsearch.dense.build import build_faiss_shards

            dense = build_faiss_shards(partial, shards, kept, fingerprint=fingerprint, n_docs=n_docs,
                                       config=config.dense, progress=progress,
                                       encode=executor.embed if executor is not None else None)
        sizes = [s["n_docs"] for s in shards]
        Manifest(
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            command=command_line(),
            versions=library_versions(),
            corpus=CorpusSection.from_json({**corpus.describe(), "n_docs": n_docs, "fingerprint": fingerprint,
                                            "duplicates_dropped": dropped}),
            build={k: v for k, v in asdict(config).items()
                   if k not in ("overwrite",) and (k != "dense" or dense is not None)},
            partition=PartitionSection.from_json({**partition_config, "sizes": sizes,
                                                  "balance": partition_balance(np.asarray(sizes)),
                                                  "fit_seconds": round(fit_seconds, 3)}),
            # what the shards were indexed and are scored with (lucene.indexer: Anserini's defaults)
            lucene=LuceneSection() if "lucene" in backends else None,
            dense=DenseSection.from_json(dense) if dense is not None else None,
            backends=list(backends),
            shards=tuple(ShardEntry.from_json(s) for s in shards),
            # sha256 of our small files (doc_ids, offsets, partition), checked by `selectsearch verify`
            checksums=record_checksums(partial, shards),
            build_seconds=round(time.time() - started, 3),
        ).write(partial)
        _publish(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return out
