"""Static query encoders: model2vec token-vector tables distilled from a sentence transformer.

A learned router embeds every query before it can rank shards. With all-MiniLM-L6-v2 that is a
six-layer transformer forward pass, 5-8 ms of CPU per query, more than the BM25 search of the two
shards it selects. A *static* encoder replaces the forward pass by a table lookup: model2vec
(Tulkens & van Dongen 2024) runs every token of the transformer's vocabulary through the
transformer once, alone, and keeps the mean-pooled output as that token's vector; a text is then
the mean of its tokens' vectors, L2-normalised — tens of microseconds per query, no torch at all.
It loses word order and context, which routing needs little of: a query is routed by what it is
about. ``eval/results/routing/static-encoder.md`` measures what it costs in routing quality.

:class:`StaticEncoder` has the interface of :class:`selectsearch.encode.TextEncoder` (``encode``,
``dim``, ``name``, ``max_length``, ``precision``, ``pooling``, ``normalize``, ``batch_size``), and
``TextEncoder(model)`` returns one whenever ``model`` names a static encoder (see
:func:`is_static_encoder`), so every option that takes an encoder takes one:
``--router-option knn.encoder=minilm-static``, ``train-mico --encoder minilm-static`` (frozen
mode), a model2vec folder anywhere a model folder is accepted.

Two ways to name one:

- a **model2vec folder** (``config.json`` with ``"model_type": "model2vec"``), e.g. written by
  ``selectsearch distill-encoder --out DIR`` or by model2vec itself;
- a **short name** of :data:`STATIC_ENCODERS`: ``minilm-static`` is the packaged
  all-MiniLM-L6-v2 distilled with :data:`DEFAULT_RECIPE`, built on first use (about a minute of
  one CPU core, nothing downloaded) under ``<cache>/static-encoders/minilm-static`` and reused.
  The name enters embedding-cache keys, so its recipe is frozen: a different recipe gets a new
  name (:func:`static_encoder_folder` rebuilds a cached folder whose recipe differs, e.g. one
  left by an older selectsearch).

Folders are written through :func:`selectsearch.models.folder.model_folder` (built aside,
published by a rename) with a versioned manifest ``selectsearch.json`` next to model2vec's own
files, so a folder is also a plain model2vec model.

Example:
    >>> enc = StaticEncoder("minilm-static")  # doctest: +SKIP
    >>> enc.encode(["vitamin d deficiency"]).shape  # doctest: +SKIP
    (1, 256)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch import settings
from selectsearch.errors import DependencyError, ModelError
from selectsearch.models.encoder import DEFAULT_ENCODER, encoder_layout, load_encoder
from selectsearch.models.folder import model_folder, read_model_manifest, write_model_manifest
from selectsearch.models.wordpieces import AsciiWordPieces

__all__ = ["DEFAULT_RECIPE", "MANIFEST", "STATIC_ENCODERS", "StaticEncoder", "StaticRecipe",
           "distill_static_encoder", "is_static_encoder", "is_static_folder", "static_encoder_folder"]

log = logging.getLogger(__name__)

#: our manifest inside a model2vec folder (model2vec's own ``config.json`` stays as it writes it)
MANIFEST = "selectsearch.json"
FORMAT = "static-encoder"
VERSION = 1
#: texts per step of :meth:`StaticEncoder.encode` (its progress bar moves once per step)
ENCODE_STEP = 4096


@dataclass(frozen=True)
class StaticRecipe:
    """How a static encoder is distilled from a transformer.

    Attributes:
        source: the transformer: ``all-MiniLM-L6-v2`` (packaged) or a local model folder.
        pca_dims: dimensions kept by PCA over the token vectors; ``None`` keeps the
            transformer's own vectors (no centring, no rotation). 256 for ``minilm-static``:

            * PCA *centres* the token vectors. Transformer outputs share a large common
              direction (every token's vector has it), which makes all cosine similarities
              high and alike; removing the mean leaves what tells tokens apart. Any PCA does
              this; what the number of dimensions decides is what else is dropped.
            * The 128 lowest-variance of MiniLM's 384 directions carry 4% of the variance of
              its token vectors (256 components explain 95.9%: a property of the model, not of
              any collection); model2vec's authors keep 256 for the models they distil from
              MiniLM-sized teachers, chosen on MTEB (dozens of retrieval, clustering and
              similarity tasks — not our collections).
            * Cost: a ``knn`` router scores a query against every logged query (an
              ``N x dim`` product) and stores ``N x dim`` floats; 256 is two thirds of 384.

            The benchmark reports 384 (centred, nothing dropped) beside it as a sensitivity check.
        sif_coefficient: SIF weight ``a / (a + p(token))`` with ``p`` from Zipf's law over the
            vocabulary's frequency order: frequent tokens count less in a text's mean, as
            function words should (model2vec's default, 1e-4).
        seed: torch seed of the distillation (the forward passes are deterministic in eval
            mode; the seed guards against any sampling a future model2vec might add).
    """

    source: str = DEFAULT_ENCODER
    pca_dims: int | None = 256
    sif_coefficient: float = 1e-4
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as stored in the manifest and compared on load."""
        return asdict(self)


#: the recipe of ``minilm-static`` (see :class:`StaticRecipe` for each choice)
DEFAULT_RECIPE = StaticRecipe()

#: short names resolved to a distilled copy built on first use under the cache folder
STATIC_ENCODERS: dict[str, StaticRecipe] = {"minilm-static": DEFAULT_RECIPE}


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_static_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a model2vec folder: its ``config.json`` says ``model_type: model2vec``
    (what model2vec writes), or its ``modules.json`` starts with a sentence-transformers
    ``StaticEmbedding`` module (a static model saved by sentence-transformers or without config)."""
    folder = Path(path)
    config = _json(folder / "config.json")
    if isinstance(config, dict) and config.get("model_type") == "model2vec":
        return True
    modules = _json(folder / "modules.json")
    return bool(isinstance(modules, list) and modules and isinstance(modules[0], dict)
                and str(modules[0].get("type", "")).endswith(".StaticEmbedding"))


def is_static_encoder(model: str | os.PathLike[str] | None) -> bool:
    """Whether ``model`` names a static encoder: a short name of :data:`STATIC_ENCODERS` or a
    model2vec folder (an existing folder by that name wins over a short name)."""
    if model is None:
        return False
    if Path(model).is_dir():
        return is_static_folder(model)
    return str(model) in STATIC_ENCODERS


def _cache_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    return Path(cache_dir) if cache_dir else settings.static_encoders_dir()


def _read_manifest(folder: Path) -> dict[str, Any]:
    return read_model_manifest(folder, format=FORMAT, version=VERSION, what="selectsearch static encoder",
                               hint="build one with `selectsearch distill-encoder --out DIR`", name=MANIFEST)


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path``: two processes that need the same cached encoder build
    it once (the second waits, then finds it built)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def static_encoder_folder(name: str, *, cache_dir: str | os.PathLike[str] | None = None,
                          progress: bool | None = None) -> Path:
    """The folder of the short-named static encoder ``name``, distilled now if missing.

    Built once per folder (``$SELECTSEARCH_STATIC_ENCODERS/<name>``, default
    ``$SELECTSEARCH_CACHE/static-encoders/<name>``), under a lock;
    a cached folder whose manifest records another recipe or format version is rebuilt.

    Raises:
        ModelError: ``name`` is not a short name of :data:`STATIC_ENCODERS`.
    """
    recipe = STATIC_ENCODERS.get(name)
    if recipe is None:
        raise ModelError(f"unknown static encoder {name!r}; known: {', '.join(sorted(STATIC_ENCODERS))}, or pass a "
                         "model2vec folder (`selectsearch distill-encoder --out DIR` makes one)")
    folder = _cache_root(cache_dir) / name

    def current() -> bool:
        if not (folder / MANIFEST).is_file():
            return False
        try:
            manifest = _read_manifest(folder)
        except (ModelError, ValueError):
            return False
        return bool(manifest.get("format_version") == VERSION and manifest.get("recipe") == recipe.to_dict())

    if current():
        return folder
    with _build_lock(folder.with_name(folder.name + ".lock")):
        if current():  # another process built it while this one waited
            return folder
        if folder.exists():
            log.warning("rebuilding the static encoder %s: %s records another recipe", name, folder)
        log.info("building the static encoder %s once (distilling %s, about a minute of CPU; nothing is downloaded) "
                 "into %s", name, recipe.source, folder)
        distill_static_encoder(folder, recipe, name=name, overwrite=True, progress=progress)
    return folder


def _distill_progress(progress: bool | None) -> bool:
    """Show model2vec's token bar only where a person watches: a terminal, info logging on."""
    if progress is not None:
        return progress
    return sys.stderr.isatty() and log.isEnabledFor(logging.INFO)


def distill_static_encoder(out: str | os.PathLike[str], recipe: StaticRecipe = DEFAULT_RECIPE, *,
                           name: str | None = None, overwrite: bool = False, threads: int = 1,
                           progress: bool | None = None, command: str | None = None) -> Path:
    """Distil ``recipe.source`` into a static encoder folder at ``out`` (model2vec layout + manifest).

    Every token of the source's vocabulary (less BERT's ``[unused*]`` placeholders) goes through
    the transformer alone, pooled the way the source pools sentences (mean, or CLS as
    model2vec's ``first``); then PCA and SIF weighting (:class:`StaticRecipe`). Vectors are
    stored as float32. Nothing is downloaded: the source is the packaged model or a local folder.

    Args:
        out: the folder to write (built aside and renamed into place when complete).
        recipe: source model and post-processing.
        name: the short name this folder serves, recorded in the manifest.
        overwrite: replace an existing ``out``.
        threads: torch threads for the forward passes (default 1: three-token inputs gain little
            from more, and one thread sums in one order, so a rebuild gives the same bits).
        progress: model2vec's token progress bar (``None``: on a terminal with info logging).
        command: the command recorded in the manifest (default: this process's).

    Raises:
        ModelError: ``out`` exists without ``overwrite``, the source folder is incomplete, or it
            pools sentences by max (which one token vector cannot represent).
        DependencyError: model2vec's distillation needs are not installed.
    """
    import torch

    try:
        import model2vec
        import model2vec.distill.inference as m2v_inference
        from model2vec.distill import distill_from_model
    except ImportError as exc:
        raise DependencyError(f"distilling a static encoder needs model2vec and skeletoken ({exc}); "
                              "pip install 'model2vec>=0.10' 'skeletoken>=0.6,<0.7'") from exc

    layout = encoder_layout(None if recipe.source == DEFAULT_ENCODER else recipe.source)
    pooling = {"mean": "mean", "cls": "first"}.get(layout.pooling)
    if pooling is None:
        raise ModelError(f"{recipe.source} pools sentences by {layout.pooling}; a static encoder can be distilled "
                         "from mean- or CLS-pooled encoders only")
    torch.manual_seed(recipe.seed)
    started = time.perf_counter()
    tokenizer, model = load_encoder(None if recipe.source == DEFAULT_ENCODER else recipe.source)
    model.eval()
    show = _distill_progress(progress)
    bar, m2v_inference.tqdm = m2v_inference.tqdm, _quiet_tqdm(m2v_inference.tqdm, show)
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        static = distill_from_model(model, tokenizer, pca_dims=recipe.pca_dims,
                                    sif_coefficient=recipe.sif_coefficient, quantize_to="float32",
                                    pooling=pooling, device="cpu")
    finally:
        m2v_inference.tqdm = bar
        torch.set_num_threads(torch_threads)
    seconds = time.perf_counter() - started
    with model_folder(out, overwrite=overwrite) as partial:
        static.save_pretrained(partial)
        write_model_manifest(partial, {"name": name, "source": recipe.source, "recipe": recipe.to_dict(),
                                       "dim": int(static.dim), "vocabulary": len(static.tokens),
                                       "source_pooling": layout.pooling, "distill_seconds": round(seconds, 2),
                                       "model2vec": model2vec.__version__},
                             format=FORMAT, version=VERSION, command=command, name=MANIFEST)
    log.info("distilled %s into %s: %d tokens x %d dims in %.0f s", recipe.source, out, len(static.tokens),
             static.dim, seconds)
    return Path(out)


def _quiet_tqdm(tqdm: Any, show: bool) -> Any:
    """model2vec's tqdm, shown or not (its distillation does not expose the choice)."""

    def make(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("disable", not show)
        return tqdm(*args, **kwargs)

    return make


class _FolderCopy:
    """Stands in for a transformer's ``model`` and ``tokenizer`` where a MICO training run saves
    its encoder (``save_pretrained(DIR)``): copies the static encoder's folder there, so the MICO
    model folder carries the encoder its heads were trained on and routes with it. A static
    encoder has no weights to fine-tune: :meth:`train` refuses, with the fix."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save_pretrained(self, path: str | os.PathLike[str], **_: Any) -> None:
        target = Path(path)
        target.mkdir(parents=True, exist_ok=True)
        for item in self.folder.iterdir():
            if item.is_file():
                shutil.copy2(item, target / item.name)

    def train(self, mode: bool = True) -> _FolderCopy:
        if mode:
            raise ModelError("a static encoder has no transformer weights to fine-tune; train MICO with --mode frozen "
                             "(or pass a transformer --encoder for --mode full)")
        return self

    def eval(self) -> _FolderCopy:
        return self


class StaticEncoder:
    """Sentence embeddings from a model2vec table: mean of token vectors, L2-normalised, float32.

    Same interface as :class:`selectsearch.encode.TextEncoder` (which returns one for a static
    encoder name, see the module docs).

    Args:
        model: a short name of :data:`STATIC_ENCODERS` or a model2vec folder.
        max_length: tokens per text (longer texts are truncated), as for the transformer.
        batch_size: texts per batch (model2vec tokenises a batch at once).
        threads: ignored (numpy lookups; accepted so callers need not care which encoder they have).
        precision: recorded for embedding-cache keys only: a table lookup has one precision, and
            :class:`~selectsearch.encode.TextEncoder` passes the one the caller asked for so that
            caches of a run find each other.

    A text with no known token (e.g. only emoji) embeds to the zero vector.

    Raises:
        ModelError: ``model`` is neither a short name nor a model2vec folder, or its manifest is newer.
    """

    pooling = "mean"
    normalize = True
    #: routers and trainers may check this to tell a static encoder from a transformer
    static = True

    def __init__(self, model: str | os.PathLike[str], *, max_length: int = 256, batch_size: int = 1024,
                 threads: int | None = None, precision: str | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # model2vec falls back to the hub for a missing path
        from model2vec import StaticModel

        self.name = str(model)
        if Path(model).is_dir():
            folder = Path(model)
            if not is_static_folder(folder):
                raise ModelError(f"{folder} is not a model2vec folder (no config.json with model_type model2vec, no "
                                 "StaticEmbedding module in modules.json)")
        elif str(model) in STATIC_ENCODERS:
            folder = static_encoder_folder(str(model))
        else:
            raise ModelError(f"static encoder {model!r} is neither a model2vec folder nor one of "
                             f"{', '.join(sorted(STATIC_ENCODERS))}")
        if (folder / MANIFEST).is_file():
            self.manifest: dict[str, Any] = _read_manifest(folder)
        else:
            self.manifest = {}  # a model2vec folder from elsewhere
        self.folder = folder
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        self.precision = precision or "fp32"
        # max_length goes to each encode call: set here, model2vec warns that it differs from its config
        self.table = StaticModel.from_pretrained(folder, normalize=True, force_download=False)
        if self.table.embedding.dtype != np.float32:
            self.table.embedding = self.table.embedding.astype(np.float32)
        self.dim = int(self.table.dim)
        self.model = self.tokenizer = _FolderCopy(folder)
        self._query_tokenizer = self._truncating_tokenizer()
        self._word_pieces = None if self._query_tokenizer is None else AsciiWordPieces.for_tokenizer(
            self._query_tokenizer)

    def _truncating_tokenizer(self) -> Any:
        """A copy of the table's tokenizer that truncates at ``max_length`` tokens, for
        :meth:`_encode_here`; ``None`` when the table maps or weights its tokens (then model2vec
        encodes every text)."""
        if getattr(self.table, "token_mapping", None) is not None or getattr(self.table, "weights", None) is not None:
            return None
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(self.table.tokenizer.to_str())
        tokenizer.enable_truncation(self.max_length)
        return tokenizer

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """``(len(texts), dim)`` float32 rows, L2-normalised (zero for a text without known tokens)."""
        if not len(texts):
            return np.zeros((0, self.dim), np.float32)
        if self._query_tokenizer is None:  # a table that maps or weights its tokens: model2vec's own path
            out = self.table.encode(list(texts), max_length=self.max_length, batch_size=self.batch_size,
                                    show_progress_bar=progress, use_multiprocessing=False, normalize=True)
            return np.ascontiguousarray(out, dtype=np.float32)
        if len(texts) <= ENCODE_STEP:
            return self._encode_here(texts)
        from tqdm import tqdm

        out = np.empty((len(texts), self.dim), np.float32)
        with tqdm(total=len(texts), desc="encode", unit="text", disable=not progress, dynamic_ncols=True) as bar:
            for start in range(0, len(texts), ENCODE_STEP):
                out[start:start + ENCODE_STEP] = self._encode_here(texts[start:start + ENCODE_STEP])
                bar.update(min(ENCODE_STEP, len(texts) - start))
        return out

    def _encode_here(self, texts: Sequence[str]) -> np.ndarray:
        """:meth:`encode` without model2vec's batch machinery, on the calling thread.

        model2vec's ``encode`` sets and resets the tokenizer's truncation, sets up a progress
        bar and buckets texts by length on every call (about 0.1 ms, more than the lookup itself
        for one query), and ``tokenizers`` cuts a batch on its own thread pool: CPU that a router
        timed by its thread's clock does not see (it was 2/3 of the encoder's CPU on a batch of
        SciFact queries, eval/results/routing/cost-sfwiki32.md). This makes the same steps with
        the same arithmetic (texts cut at ``max_length`` x the median token length in
        characters, at most ``max_length`` tokens, unknown tokens dropped, mean of the token
        vectors, L2-normalised as model2vec does), so the vectors are equal to model2vec's
        (``tests/models/test_static_encoder.py``); measured 3x less CPU than model2vec's on
        SciFact's documents too, so corpora take this path as well.
        """
        table, tokenizer = self.table, self._query_tokenizer
        cut = self.max_length * int(table.median_token_length)
        unk = table.unk_token_id
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            text = text[:cut]
            # ASCII text: each word's pieces looked up once (the tokenizer's ids, 5x faster per query)
            pieces = self._word_pieces.ids(text) if self._word_pieces is not None else None
            if pieces is None:  # one text at a time: a batch would go to the tokenizer's threads
                pieces = tokenizer.encode(text, add_special_tokens=False).ids
            first = pieces[: self.max_length]
            ids = first if unk is None else [t for t in first if t != unk]
            if ids:
                out[i] = table.embedding[np.asarray(ids, dtype=np.int64)].mean(axis=0)
        norm = np.linalg.norm(out, axis=1, keepdims=True) + 1e-32
        return np.ascontiguousarray(out / norm, dtype=np.float32)

    def save(self, folder: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Copy this encoder's folder to ``folder`` (written aside, then renamed into place)."""
        with model_folder(folder, overwrite=overwrite) as partial:
            self.model.save_pretrained(partial)
        return Path(folder)

    def __repr__(self) -> str:
        return f"StaticEncoder({self.name!r}, dim={self.dim}, max_length={self.max_length})"
