"""Text encoders and the on-disk embedding cache.

:class:`TextEncoder` embeds texts with a local model run by sentence-transformers (default: the
packaged all-MiniLM-L6-v2, mean pooling, L2-normalised — how that model was trained). Embeddings of a
corpus are cached as a memory-mapped float32 matrix with a JSON sidecar recording the model
name, dimension and the corpus fingerprint, so a second build of the same corpus (another shard
count, another partitioner, the FAISS backend, MICO training) re-uses them; a cache that does
not match is never used. :func:`corpus_cache` forms the cache key (model, ``max_length``,
corpus fingerprint) and :func:`corpus_embeddings` returns the cached matrix, encoding the corpus
in one streamed pass when it is missing (the corpus text is never held in memory). Where the
chunks of that pass are encoded is a :data:`ChunkEncoder`: :func:`encode_here` (this process) by
default, or :meth:`selectsearch.index.distributed.RayExecutor.embed` (Ray tasks, for
``selectsearch index --space dense --ray ...``).

Any local sentence-transformers or transformers folder works as the model; pooling and
normalisation follow the folder (see :func:`selectsearch.models.encoder.encoder_layout`). A static
encoder (a model2vec folder, or ``minilm-static``: see :mod:`selectsearch.models.static_encoder`)
works too: ``TextEncoder(model)`` then returns a
:class:`~selectsearch.models.static_encoder.StaticEncoder`, which has the same interface.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any, cast

import numpy as np

from selectsearch import settings
from selectsearch.errors import ModelError
from selectsearch.models.encoder import DEFAULT_ENCODER
from selectsearch.settings import PRECISION_ENV

__all__ = ["PRECISIONS", "PRECISION_ENV", "ChunkEncoder", "EmbeddingCache", "TextEncoder", "corpus_cache",
           "corpus_embeddings", "encode_here", "encoder_precision", "inference_autocast"]

#: Compute precisions of transformer inference (encoders, MICO and distilled routers, rerankers,
#: classifiers). ``bf16`` runs the forward pass under CPU autocast: about 1.8x faster on CPUs with
#: AVX512-BF16, embeddings within 3e-5 cosine of fp32 (measured on SciFact and Wikipedia,
#: eval/results/dense/encode.json). It is part of the embedding cache key, so fp32 and bf16
#: embeddings of a corpus never mix. Training always runs in fp32.
PRECISIONS = ("fp32", "bf16")

log = logging.getLogger(__name__)


def encoder_precision(precision: str | None = None) -> str:
    """``precision``, else ``$SELECTSEARCH_ENCODER_PRECISION``, else ``fp32``; checked."""
    value = precision or settings.encoder_precision() or "fp32"
    if value not in PRECISIONS:
        raise ValueError(f"unknown encoder precision {value!r} (choose from {', '.join(PRECISIONS)})")
    return value


def inference_autocast(precision: str | None = None) -> Any:
    """A context that runs CPU inference in bfloat16 when the precision (see
    :func:`encoder_precision`) is ``bf16``, and changes nothing otherwise."""
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=encoder_precision(precision) == "bf16")


class TextEncoder:
    """Batched sentence embeddings from a local transformers encoder, run by sentence-transformers.

    Args:
        model: ``None``/``"all-MiniLM-L6-v2"`` for the packaged model, or a local
            sentence-transformers or transformers folder (pooling and normalisation follow the
            folder: :func:`~selectsearch.models.encoder.encoder_layout`).
        max_length: tokens per text (longer texts are truncated).
        batch_size: texts per forward pass. Texts of one :meth:`encode` call are batched in
            order of length (less padding); rows come back in input order.
        threads: torch intra-op threads (``None``: torch's default).
        precision: ``fp32`` or ``bf16`` (see :data:`PRECISIONS`; ``None``: :func:`encoder_precision`).

    Example:
        >>> enc = TextEncoder()  # doctest: +SKIP
        >>> enc.encode(["vitamin d"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __new__(cls, model: str | os.PathLike[str] | None = None, **options: Any) -> TextEncoder:
        """A :class:`~selectsearch.models.static_encoder.StaticEncoder` (same interface, no
        transformer) when ``model`` names a static encoder — a model2vec folder or a short name
        such as ``minilm-static`` — so every option that takes an encoder takes those too."""
        if cls is TextEncoder and model is not None:
            from selectsearch.models.static_encoder import StaticEncoder, is_static_encoder

            if is_static_encoder(model):
                options["precision"] = encoder_precision(options.get("precision"))  # cache keys as for transformers
                return cast(TextEncoder, StaticEncoder(model, **options))
        return super().__new__(cls)

    def __init__(self, model: str | os.PathLike[str] | None = None, *, max_length: int = 256,
                 batch_size: int = 64, threads: int | None = None, precision: str | None = None) -> None:
        import torch

        from selectsearch.models.encoder import encoder_layout, load_sentence_transformer

        if threads:
            torch.set_num_threads(threads)
        self.name = DEFAULT_ENCODER if model is None else str(model)
        layout = encoder_layout(model)  # a missing or incomplete folder fails here, naming what is missing
        self.pooling = layout.pooling
        self.normalize = layout.normalize
        self.max_length = max_length
        self.batch_size = batch_size
        self.precision = encoder_precision(precision)
        #: the ``sentence_transformers.SentenceTransformer`` that embeds (on CPU, in eval mode)
        self.sentence_transformer = load_sentence_transformer(layout, max_length=max_length)
        self.sentence_transformer.eval()
        # the bare transformers model and tokenizer inside it: MICO's full mode fine-tunes the
        # model in place (so encode() then embeds with the fine-tuned weights) and saves both
        self.model = self.sentence_transformer[0].auto_model
        self.tokenizer = self.sentence_transformer.tokenizer
        self.dim = int(self.sentence_transformer.get_embedding_dimension() or self.model.config.hidden_size)

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """``(len(texts), dim)`` float32 rows (L2-normalised when the model normalises)."""
        import torch

        out = np.empty((len(texts), self.dim), np.float32)
        # Batches go through sentence-transformers' own tokenisation and modules, but not through
        # SentenceTransformer.encode: its per-call eval() and device checks walk every parameter,
        # a fixed cost per call that a router, encoding one query at a time, pays on every query.
        # Longest first, so a batch pads to similar lengths; rows are written back in input order.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        starts = range(0, len(texts), self.batch_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="encode", unit="batch")
        st = self.sentence_transformer
        with torch.inference_mode(), inference_autocast(self.precision):
            for start in starts:
                rows = order[start:start + self.batch_size]
                vectors = st(st.preprocess([texts[i] for i in rows]))["sentence_embedding"]
                out[rows] = vectors.float().numpy()
        return out


#: Encodes a stream of text chunks with (a copy of) ``encoder`` and yields one ``(len(chunk), dim)``
#: float32 matrix per chunk, in the order of the chunks. :func:`encode_here` is the local one;
#: :meth:`selectsearch.index.distributed.RayExecutor.embed` encodes chunks in parallel Ray tasks.
ChunkEncoder = Callable[[TextEncoder, Iterable[list[str]]], Iterator[np.ndarray]]


def encode_here(encoder: TextEncoder, chunks: Iterable[list[str]]) -> Iterator[np.ndarray]:
    """The :data:`ChunkEncoder` that encodes each chunk in this process, with ``encoder`` itself."""
    for chunk in chunks:
        yield encoder.encode(chunk)


class EmbeddingCache:
    """A float32 ``(n, dim)`` memmap at ``<folder>/embeddings.f32`` plus ``meta.json``.

    Written to a temporary name and renamed when complete: a crash never leaves a cache that
    looks complete. ``meta.json`` (what :meth:`matches` reads) is written atomically and last, so
    a reader sees either no entry or a complete one. Builds of one entry hold the file lock
    ``<folder>/build.lock``: two processes that build the same entry at once (two index builds
    sharing ``~/.cache``) take turns, and the second finds the first one's complete entry and
    encodes nothing.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @property
    def meta_path(self) -> Path:
        return self.folder / "meta.json"

    def matches(self, *, model: str, fingerprint: str, n: int, precision: str | None = None) -> bool:
        """Whether a complete cache for this model, corpus and precision exists."""
        if not self.meta_path.exists():
            return False
        meta = json.loads(self.meta_path.read_text())
        return bool(meta.get("model") == model and meta.get("fingerprint") == fingerprint and meta.get("n") == n
                    and meta.get("precision", "fp32") == encoder_precision(precision))

    def load(self) -> np.ndarray:
        """The cached matrix, memory-mapped read-only."""
        meta = json.loads(self.meta_path.read_text())
        return np.memmap(self.folder / "embeddings.f32", dtype=np.float32, mode="r",
                         shape=(int(meta["n"]), int(meta["dim"])))

    @property
    def progress_path(self) -> Path:
        return self.folder / "progress.json"

    def _resume_row(self, key: dict[str, Any], tmp: Path) -> int:
        """Rows already encoded by an interrupted build with the same key (0: start afresh)."""
        if not (tmp.exists() and self.progress_path.exists()):
            return 0
        try:
            done = json.loads(self.progress_path.read_text())
        except (OSError, ValueError):
            return 0
        done.setdefault("precision", "fp32")  # records written before precision was part of the key
        if {k: done.get(k) for k in key} != key:
            return 0
        return int(done.get("rows", 0))

    def build(self, encoder: TextEncoder, texts: Iterable[str], *, n: int, fingerprint: str,
              chunk: int = 2048, progress: bool = False, encode: ChunkEncoder | None = None) -> np.ndarray:
        """Encode ``texts`` (streamed, ``n`` of them) into the cache and return the memmap.

        ``encode`` says where chunks of ``chunk`` texts are encoded (default :func:`encode_here`);
        rows are written in stream order whichever it is.

        Resumable: after each chunk the rows written so far are recorded in ``progress.json``;
        a later build with the same model, corpus fingerprint, size and max_length skips those
        texts and continues (a large corpus can be encoded over several interrupted runs).
        Another process building the same entry is waited for; when it leaves a complete entry
        for this model, corpus and precision, that entry is returned and ``texts`` is not read.
        """
        from filelock import FileLock, Timeout

        self.folder.mkdir(parents=True, exist_ok=True)
        # a kernel lock (flock): released when its holder dies, so a killed build never blocks the next
        lock = FileLock(self.folder / "build.lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.info("waiting for another process that is encoding into %s", self.folder)
            lock.acquire()
        try:
            if self.matches(model=encoder.name, fingerprint=fingerprint, n=n, precision=encoder.precision):
                log.info("using the embeddings another process encoded into %s", self.folder)
                return self.load()
            return self._build_locked(encoder, texts, n=n, fingerprint=fingerprint, chunk=chunk, progress=progress,
                                      encode=encode or encode_here)
        finally:
            lock.release()

    def _build_locked(self, encoder: TextEncoder, texts: Iterable[str], *, n: int, fingerprint: str,
                      chunk: int, progress: bool, encode: ChunkEncoder) -> np.ndarray:
        """:meth:`build` once this process holds the entry's lock."""
        tmp = self.folder / "embeddings.f32.partial"
        key = {"model": encoder.name, "fingerprint": fingerprint, "n": n, "dim": encoder.dim,
               "max_length": encoder.max_length, "precision": encoder.precision}
        row = self._resume_row(key, tmp)
        matrix = np.memmap(tmp, dtype=np.float32, mode="r+" if row else "w+", shape=(n, encoder.dim))
        if row:
            log.info("resuming the encoding of %s at row %d of %d", self.folder, row, n)
        bar: Any = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=n, initial=row, desc="encode", unit="doc")
        started, first_row = time.perf_counter(), row
        last_log = started

        def chunks() -> Iterator[list[str]]:
            rest = islice(texts, first_row, None)  # the first rows were encoded by an interrupted build
            while batch := list(islice(rest, chunk)):
                yield batch

        for vectors in encode(encoder, chunks()):
            if row + len(vectors) > n:
                raise ModelError(f"expected {n} texts to encode, got more")
            matrix[row:row + len(vectors)] = vectors
            row += len(vectors)
            matrix.flush()
            _write_json(self.progress_path, {**key, "rows": row})
            if bar is not None:
                bar.update(len(vectors))
            elif time.perf_counter() - last_log >= 30.0:  # no bar (stderr not a terminal): a log line now and then
                last_log = time.perf_counter()
                log.info("encoded %d of %d texts (%.0f/s)", row, n, (row - first_row) / (last_log - started))
        if bar is not None:
            bar.close()
        if row != n:
            raise ModelError(f"expected {n} texts to encode, got {row}")
        seconds = time.perf_counter() - started
        encoded = n - first_row
        # the old entry's meta goes first: no reader may pair it with the new matrix (a reader that
        # mapped the old matrix keeps reading the old file)
        self.meta_path.unlink(missing_ok=True)
        os.replace(tmp, self.folder / "embeddings.f32")
        _write_json(self.meta_path, {**key, "pooling": encoder.pooling, "normalize": encoder.normalize,
                                     "encode_seconds": round(seconds, 3), "resumed_at": first_row,
                                     "docs_per_second": round(encoded / max(seconds, 1e-9), 2)})
        self.progress_path.unlink(missing_ok=True)
        log.info("encoded %d texts in %.1f s (%.1f/s) into %s", encoded, seconds, encoded / max(seconds, 1e-9),
                 self.folder)
        return self.load()

    def meta(self) -> dict[str, Any]:
        """The sidecar ``meta.json`` (model, fingerprint, n, dim, ...)."""
        meta: dict[str, Any] = json.loads(self.meta_path.read_text())
        return meta


def _write_json(path: Path, value: dict[str, Any]) -> None:
    """Replace ``path`` atomically: a reader sees the old or the new JSON, never a part."""
    from selectsearch.data._io import atomic_write

    with atomic_write(path) as f:
        f.write(json.dumps(value))


def corpus_cache(model: str, max_length: int, fingerprint: str,
                 cache_dir: str | os.PathLike[str] | None = None, precision: str | None = None) -> EmbeddingCache:
    """The embedding cache of a corpus: ``<root>/<model tag>-<max_length>-<fingerprint[:16]>[-bf16]``.

    The key the dense k-means partitioner, MICO training and the FAISS backend share, so a
    corpus is encoded once. ``cache_dir`` defaults to ``~/.cache/selectsearch/embeddings``;
    ``precision`` to :func:`encoder_precision` (fp32 caches keep their unsuffixed names).
    """
    root = Path(cache_dir) if cache_dir else settings.cache_dir() / "embeddings"
    tag = Path(model).name if model != DEFAULT_ENCODER else model
    resolved = encoder_precision(precision)
    suffix = "" if resolved == "fp32" else f"-{resolved}"
    return EmbeddingCache(root / f"{tag}-{max_length}-{fingerprint[:16]}{suffix}")


def corpus_embeddings(texts: Callable[[], Iterable[str]], *, model: str, max_length: int, fingerprint: str,
                      n: int, cache_dir: str | os.PathLike[str] | None = None, batch_size: int = 64,
                      threads: int | None = None, progress: bool = False,
                      encode: ChunkEncoder | None = None) -> np.ndarray:
    """The ``(n, dim)`` embeddings of a corpus in stream order, from the cache or encoded now.

    Args:
        texts: returns a fresh stream of the corpus texts (called only when encoding is needed).
        model: encoder name or folder (part of the cache key).
        max_length: tokens per document (part of the cache key).
        fingerprint: corpus fingerprint (part of the cache key).
        n: documents in the corpus.
        cache_dir: cache root.
        batch_size, threads: encoder options when encoding.
        progress: progress bar while encoding.
        encode: where chunks are encoded (default :func:`encode_here`; see :data:`ChunkEncoder`).

    Example:
        >>> from selectsearch.data import open_corpus  # doctest: +SKIP
        >>> corpus = open_corpus("../shared/data/scifact")  # doctest: +SKIP
        >>> x = corpus_embeddings(lambda: (d.contents for d in corpus), model="all-MiniLM-L6-v2",
        ...                       max_length=256, fingerprint=fp, n=5183)  # doctest: +SKIP
    """
    cache = corpus_cache(model, max_length, fingerprint, cache_dir)
    if cache.matches(model=model, fingerprint=fingerprint, n=n):
        return cache.load()
    encoder = TextEncoder(None if model == DEFAULT_ENCODER else model, max_length=max_length, batch_size=batch_size,
                          threads=threads)
    return cache.build(encoder, texts(), n=n, fingerprint=fingerprint, progress=progress, encode=encode)
