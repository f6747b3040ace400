"""Distributed builds on Ray: the corpus embedded, documents assigned and shards indexed by Ray tasks.

:class:`RayExecutor` is a :class:`~selectsearch.index.build.ShardExecutor`: pass it to
:func:`~selectsearch.index.build.build_index` (``selectsearch index --ray local|ADDRESS``) and
the build runs as usual on this machine — scan, partitioner fitted on its sample, documents
written to the shards' stores in corpus order, manifest written last and the folder renamed into
place — while the parallel parts run as Ray tasks on whichever nodes have a free CPU:

- **embed** (``--space dense``, and a FAISS backend whose embeddings are not cached): chunks of
  document texts go to tasks that encode them with the same encoder (same model, ``max_length``,
  precision; loaded once per worker process) and return their rows, written here into the
  embedding cache in corpus order (see :data:`selectsearch.encode.ChunkEncoder`). The model must
  be at the same path on every node (the packaged default is installed with this package);
- **assign**: batches of documents go to tasks that load the fitted partition (saved, shipped
  once through the object store) and return each document's shard. A partition that reads
  embeddings cached on this machine (dense k-means, MICO with a frozen encoder) assigns here
  instead (see :attr:`~selectsearch.partition.base.FittedPartition.portable`);
- **index**: one task per shard runs :func:`~selectsearch.index.shard_files.index_one_shard` —
  the function a local build runs — in a scratch folder on its node, then

  * *gathered* (default): the task returns the shard's files (Lucene index, ``doc_ids.txt``,
    store offsets) and this process writes them into the index folder; its input, the shard's
    document store, is sent to it from here; or
  * *shared* (``shared=True``, ``--ray-shared``): the index folder is on a file system every
    node mounts at the same path (NFS, a cluster file system); the task reads the store from
    there and moves the finished files into the shard's folder itself. The task checks that it
    sees this build's own ``.partial`` folder (by a token in its marker file) and fails the
    build with a clear message if it does not.

Faults: a task whose worker or node dies is run again by Ray (up to ``retries`` times, also
after an ``OSError``); each attempt builds in a fresh scratch folder and publishes its files only
when complete, so a retried shard never mixes attempts. When a shard cannot be built (retries
used up, an error in the data), the build raises :class:`~selectsearch.errors.SelectSearchError`,
its ``.partial`` folder is removed and nothing at ``out`` changes: a failed or interrupted
distributed build never leaves something that opens as an index.

Ray must be initialised first (``ray.init``; the CLI starts a loopback-only local instance for
``--ray local`` and joins ``--ray ADDRESS``). Every node needs this package installed (same
version), the corpus only on the driver.

Example:
    >>> import ray; ray.init(address="10.0.0.5:6379")  # doctest: +SKIP
    >>> build_index(open_corpus("../shared/data/scifact"), "indexes/scifact-k16",
    ...             BuildConfig(n_shards=16), executor=RayExecutor())  # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import io
import logging
import os
import shutil
import tarfile
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch import settings
from selectsearch.errors import DependencyError, SelectSearchError
from selectsearch.index.build import _PARTIAL_MARKER
from selectsearch.index.shard_files import index_one_shard, shard_dir_name
from selectsearch.partition.base import FittedPartition, load_partition
from selectsearch.types import Document

if TYPE_CHECKING:
    from selectsearch.encode import TextEncoder

__all__ = ["RayExecutor", "pack_folder", "unpack_folder"]

log = logging.getLogger(__name__)

_MARKER = _PARTIAL_MARKER  # written by build._prepare_output: "pid N\nbuild TOKEN\n"
#: what a shard task produces next to the document store (``docs/`` stays where it was written)
_OUTPUTS = ("lucene", "doc_ids.txt", "docs.offsets.npy")


def pack_folder(folder: Path, names: Iterable[str] | None = None) -> bytes:
    """An uncompressed tar of ``folder``'s entries ``names`` (default: all), paths relative to it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in sorted(names if names is not None else os.listdir(folder)):
            if (folder / name).exists():
                tar.add(folder / name, arcname=name)
    return buffer.getvalue()


def unpack_folder(blob: bytes, folder: Path) -> list[str]:
    """Extract a :func:`pack_folder` archive into ``folder``; return its top-level names.

    Only plain files and folders inside ``folder`` are accepted (tarfile's ``data`` filter).
    """
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r") as tar:
        names = sorted({Path(m.name).parts[0] for m in tar.getmembers()})
        tar.extractall(folder, filter="data")
    return names


def _publish_files(built: Path, target: Path, names: Iterable[str]) -> None:
    """Move ``built/name`` to ``target/name`` for each name, replacing an earlier attempt's."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        src = built / name
        if not src.exists():
            continue
        dst = target / name
        staged = target / f".{name}.{uuid.uuid4().hex[:8]}"  # copy across file systems, then rename
        if src.is_dir():
            shutil.copytree(src, staged)
        else:
            shutil.copyfile(src, staged)
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)
        os.replace(staged, dst)


# ---------------------------------------------------------------------------- task bodies
# Plain functions, run inside Ray workers (wrapped with ray.remote when a build starts); they
# only use what a worker process has: their arguments, this package and the node's disk.

_PARTITIONS: dict[str, tuple[FittedPartition, Path]] = {}  # per worker process: the last partition loaded


def _partition(digest: str, blob: bytes) -> FittedPartition:
    if digest not in _PARTITIONS:
        for _, folder in _PARTITIONS.values():
            shutil.rmtree(folder, ignore_errors=True)
        _PARTITIONS.clear()
        # kept while the worker lives: a partition may read its folder lazily (MICO's model)
        folder = Path(tempfile.mkdtemp(prefix="selectsearch-partition-"))
        atexit.register(shutil.rmtree, folder, True)
        unpack_folder(blob, folder)
        _PARTITIONS[digest] = (load_partition(folder), folder)
    return _PARTITIONS[digest][0]


_ENCODERS: dict[tuple[Any, ...], Any] = {}  # per worker process: the last encoder loaded


def encode_task(spec: tuple[str | None, int, int, str, int], texts: list[str]) -> np.ndarray:
    """Ray task: the embeddings of ``texts`` by the encoder ``spec`` = ``(model, max_length,
    batch_size, precision, threads)``, as :meth:`selectsearch.encode.TextEncoder.encode` gives them."""
    from selectsearch.encode import TextEncoder

    if spec not in _ENCODERS:
        _ENCODERS.clear()
        model, max_length, batch_size, precision, threads = spec
        _ENCODERS[spec] = TextEncoder(model, max_length=max_length, batch_size=batch_size, precision=precision,
                                      threads=threads)
    return np.asarray(_ENCODERS[spec].encode(texts), dtype=np.float32)


def assign_task(digest: str, blob_box: list[Any], batch: list[Document], positions: np.ndarray) -> np.ndarray:
    """Ray task: the shards of one batch under the shipped partition."""
    import ray

    blob = blob_box[0] if isinstance(blob_box[0], bytes) else ray.get(blob_box[0])
    return np.asarray(_partition(digest, blob).assign(batch, positions), dtype=np.int32)


def build_shard_task(*, root: str, token: str, shard: int, memory_mb: int, lucene: bool, shared: bool,
                     store: bytes | None, work_dir: str | None, java_heap: str) -> dict[str, Any]:
    """Ray task: index one shard in a scratch folder on this node with :func:`index_one_shard`.

    Returns the shard's manifest entry plus ``node`` (the Ray node id), ``seconds`` (indexing
    time), ``max_rss_mb`` (the worker process's peak resident memory, its JVM included) and, when
    not ``shared``, ``files``: a :func:`pack_folder` archive of its outputs.
    """
    import resource

    import ray

    node = ray.get_runtime_context().get_node_id()
    name = shard_dir_name(shard)
    shard_folder = Path(root) / "shards" / name
    if shared:
        try:
            seen = (Path(root) / _MARKER).read_text()
        except OSError:
            seen = ""
        if f"build {token}" not in seen.split("\n"):
            raise SelectSearchError(
                f"node {ray.util.get_node_ip_address()} does not see this build's folder {root} (--ray-shared needs "
                "the output on a file system every node mounts at the same path); drop --ray-shared to gather "
                "the shards through Ray instead")
    if work_dir:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
    # the scratch name says which build, shard and node it belongs to: a node killed mid-task
    # leaves it behind, recognisably, in its temp folder
    scratch = Path(tempfile.mkdtemp(prefix=f"selectsearch-{token[:8]}-shard{name}-{node[:12]}-", dir=work_dir))
    try:
        docs = scratch / "shards" / name / "docs"
        docs.mkdir(parents=True)
        if shared:
            shutil.copyfile(shard_folder / "docs" / "docs.jsonl", docs / "docs.jsonl")
        else:
            assert store is not None
            (docs / "docs.jsonl").write_bytes(store)
        if lucene:
            from selectsearch.lucene.jvm import start_jvm

            start_jvm(java_heap)  # once per worker process; later tasks reuse its JVM
        started = time.perf_counter()
        entry = index_one_shard(scratch, shard, memory_mb, lucene=lucene)
        cost = {"node": node, "seconds": round(time.perf_counter() - started, 3),
                "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}  # KiB on Linux
        built = scratch / "shards" / name
        if shared:
            _publish_files(built, shard_folder, _OUTPUTS)
            return {**entry, **cost}
        return {**entry, **cost, "files": pack_folder(built, [n for n in _OUTPUTS if (built / n).exists()])}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------------------- the executor
@dataclass(frozen=True)
class RayExecutor:
    """Run a build's assignment and per-shard indexing as Ray tasks (see the module docs).

    Args:
        shared: the index folder is on a file system every node mounts at the same path; tasks
            read and write it directly (default: shards are sent to tasks and gathered back).
        retries: times Ray runs a task again after its worker or node died (or it raised
            ``OSError``); 0 fails the build on the first loss.
        work_dir: scratch folder for shard builds on each node (default: the node's temp folder).
        java_heap: Java heap of each task's JVM (default ``$SELECTSEARCH_WORKER_HEAP``, 1g).
        cpus_per_task: Ray CPUs each task reserves.
        in_flight: tasks submitted at a time (default: the cluster's CPUs + 1); bounds the memory
            that batches and shard stores in transit take.
        on_shard: called here with each finished shard's entry plus ``node`` (its Ray node id),
            ``seconds`` and ``max_rss_mb`` (see :func:`build_shard_task`).
    """

    shared: bool = False
    retries: int = 3
    work_dir: str | None = None
    java_heap: str | None = None
    cpus_per_task: float = 1.0
    in_flight: int | None = None
    on_shard: Callable[[dict[str, Any]], None] | None = None

    # -------------------------------------------------------------- helpers
    @staticmethod
    def _ray() -> Any:
        try:
            import ray
        except ImportError as exc:
            raise DependencyError("Ray is not installed: pip install 'selectsearch[ray]'") from exc
        if not ray.is_initialized():
            raise SelectSearchError("Ray is not initialised: call ray.init(address) first (the CLI does, with --ray)")
        return ray

    def _window(self, ray: Any) -> int:
        if self.in_flight is not None:
            return max(1, self.in_flight)
        return max(1, int(ray.cluster_resources().get("CPU", 1) // max(self.cpus_per_task, 0.01)) + 1)

    def _options(self) -> dict[str, Any]:
        return {"num_cpus": self.cpus_per_task, "max_retries": max(0, self.retries),
                "retry_exceptions": [OSError] if self.retries > 0 else False}

    @staticmethod
    def _failure(ray: Any, exc: BaseException, what: str) -> SelectSearchError:
        """A :class:`SelectSearchError` for a task that failed for good (the cause's own, if it was one)."""
        cause = getattr(exc, "cause", None)
        if isinstance(cause, SelectSearchError):
            return cause
        if isinstance(cause, BaseException):
            return SelectSearchError(f"{what} failed on the Ray cluster: {type(cause).__name__}: {cause}")
        lost = (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError)
        if isinstance(exc, lost):
            return SelectSearchError(f"{what} was lost with its Ray worker or node ({type(exc).__name__}) and its "
                                     "retries are used up; nothing was published — run the build again")
        message = str(exc).strip().splitlines()
        return SelectSearchError(f"{what} failed on the Ray cluster: {type(exc).__name__}: "
                                 f"{message[-1] if message else ''}")

    @staticmethod
    def _cancel(ray: Any, refs: Iterable[Any]) -> None:
        for ref in refs:
            with contextlib.suppress(Exception):  # already finished or gone with its node
                ray.cancel(ref, force=True)

    # -------------------------------------------------------------- embeddings
    def embed(self, encoder: TextEncoder, chunks: Iterable[list[str]]) -> Iterator[np.ndarray]:
        """The embeddings of each chunk, in order, encoded by Ray tasks with a copy of ``encoder``
        (a :data:`selectsearch.encode.ChunkEncoder`: ``EmbeddingCache.build(..., encode=executor.embed)``)."""
        from selectsearch.models.encoder import DEFAULT_ENCODER

        ray = self._ray()
        threads = max(1, int(self.cpus_per_task))  # a task uses the CPUs it reserved, not the node's
        spec = (None if encoder.name == DEFAULT_ENCODER else encoder.name, encoder.max_length, encoder.batch_size,
                encoder.precision, threads)
        task = ray.remote(encode_task).options(**self._options())
        yield from self._in_order(ray, (task.remote(spec, chunk) for chunk in chunks), "encoding the corpus")

    # -------------------------------------------------------------- pass 2
    def assign(self, fitted: FittedPartition,
               batches: Iterable[tuple[list[Document], np.ndarray]]) -> Iterator[np.ndarray]:
        """The shards of each batch, in order; batches run as Ray tasks when the partition is portable."""
        if not fitted.portable:
            log.info("partition %s assigns from embeddings cached here: assigning on the driver", type(fitted).__name__)
            for batch, positions in batches:
                yield fitted.assign(batch, positions)
            return
        ray = self._ray()
        with tempfile.TemporaryDirectory(prefix="selectsearch-partition-") as tmp:
            fitted.save(Path(tmp))
            blob = pack_folder(Path(tmp))
        digest = hashlib.sha256(blob).hexdigest()
        # passed inside a list, so Ray hands the task the reference and the task fetches the bytes
        # (cached per worker by digest) instead of Ray resolving a copy for every batch
        box = [ray.put(blob)]
        task = ray.remote(assign_task).options(**self._options())
        yield from self._in_order(ray, (task.remote(digest, box, batch, positions) for batch, positions in batches),
                                  "assigning documents")

    def _in_order(self, ray: Any, submitted: Iterator[Any], what: str) -> Iterator[Any]:
        """The results of the tasks ``submitted`` starts (lazily, at most the window in flight), in order."""
        window = self._window(ray)
        pending: deque[Any] = deque()
        try:
            for ref in submitted:
                pending.append(ref)
                if len(pending) >= window:
                    yield self._get(ray, pending.popleft(), what)
            while pending:
                yield self._get(ray, pending.popleft(), what)
        finally:
            self._cancel(ray, pending)

    def _get(self, ray: Any, ref: Any, what: str) -> Any:
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as exc:
            raise self._failure(ray, exc, what) from exc

    # -------------------------------------------------------------- pass 3
    def index(self, root: Path, jobs: list[int], *, memory_mb: int, lucene: bool) -> Iterator[dict[str, Any]]:
        """Index the shards ``jobs`` as Ray tasks; yield each entry once its files are in ``root``."""
        ray = self._ray()
        root = Path(root).resolve()
        token = _build_token(root)
        task = ray.remote(build_shard_task).options(**self._options())
        heap = self.java_heap or settings.worker_heap()
        window = self._window(ray)
        todo = deque(jobs)
        running: dict[Any, int] = {}
        try:
            while todo or running:
                while todo and len(running) < window:
                    shard = todo.popleft()
                    store = None
                    if not self.shared:  # the task's input: the shard's document store
                        store = (root / "shards" / shard_dir_name(shard) / "docs" / "docs.jsonl").read_bytes()
                    ref = task.remote(root=str(root), token=token, shard=shard, memory_mb=memory_mb, lucene=lucene,
                                      shared=self.shared, store=store, work_dir=self.work_dir, java_heap=heap)
                    running[ref] = shard
                ready, _ = ray.wait(list(running), num_returns=1)
                shard = running.pop(ready[0])
                result = self._get(ray, ready[0], f"indexing shard {shard_dir_name(shard)}")
                folder = root / "shards" / shard_dir_name(shard)
                files = result.pop("files", None)
                if files is not None:
                    unpack_folder(files, folder)
                elif not (folder / "doc_ids.txt").is_file():
                    raise SelectSearchError(f"shard {shard_dir_name(shard)} was built on node {result['node']} but "
                                            f"its files are not in {folder}; is --ray-shared's folder really shared?")
                cost = {key: result.pop(key) for key in ("node", "seconds", "max_rss_mb")}
                log.info("shard %s: %d documents, built on node %s in %.1f s", shard_dir_name(shard),
                         result["n_docs"], cost["node"], cost["seconds"])
                if self.on_shard is not None:
                    self.on_shard({**result, **cost})
                yield result
        finally:
            self._cancel(ray, running)


def _build_token(root: Path) -> str:
    """The build's token from its ``.partial`` marker (see ``build._prepare_output``)."""
    try:
        lines = (root / _MARKER).read_text().split("\n")
    except OSError as exc:
        raise SelectSearchError(f"{root} is not a build in progress (no {_MARKER})") from exc
    for line in lines:
        if line.startswith("build "):
            return line.split(" ", 1)[1]
    raise SelectSearchError(f"{root / _MARKER} has no build token; it was made by an older selectsearch")
