"""A static query encoder adapted to one index: ``knn.encoder=adapted``, the ``knn`` default.

``minilm-static`` (:mod:`selectsearch.models.static_encoder`) gives every token the vector the
transformer gives that token *alone*, and a text the mean of its tokens' vectors: a table lookup
instead of a forward pass, but the transformer reads a token differently in context, and a
routed query loses that (SciFact, ``knn`` alone: coverage AUC 88.5 against the transformer's
90.5, ``eval/results/routing/adapted-encoder.md``).

Adapting puts it back for the words of one collection, from its own documents, with nothing
learned from queries (so a query unlike the logs is treated no worse than one like them):

1. texts: a seeded sample of the index's documents (``docs``, default 5,000), two short texts
   each — the first line (a title where there is one) and the first sentence after it, each cut
   to 300 characters: text of the length and kind queries have;
2. the transformer (the packaged all-MiniLM-L6-v2) embeds them, once;
3. the static table ``E`` is refitted so that the mean of a text's token vectors reproduces the
   transformer's embedding of it: ridge regression towards the distilled table mapped into the
   transformer's space (``E0 P``, ``P`` by least squares over the same texts)::

       E = argmin  sum_texts | mean_{t in text} E_t - y_text |^2  +  lam * | E - E0 P |^2

   Tokens the sample never shows keep their distilled vectors (mapped). An index too small to
   fit on (fewer than :data:`MIN_TEXTS` texts) keeps the base encoder. ``lam`` is chosen among
   ``lambdas`` (times the mean token frequency, so it does not depend on the sample's size) by
   the cosine on 10% of the texts held out, then the table is refitted on all of them.

A query then costs what ``minilm-static`` costs. The folder (model2vec layout plus our manifest,
so it is also a plain model2vec model) is built on first use per index, under
``$SELECTSEARCH_STATIC_ENCODERS/adapted-<key>`` (``key``: the index's manifest and the recipe),
in a minute or two of CPU for 5,000 documents, and reused; the index folder is not written.

This module fits and stores a table for texts it is given (:func:`adapt_static_encoder`);
:func:`selectsearch.route.knn.adapted_encoder_folder` draws the texts from an index (the
``models`` layer does not read indexes).

Example:
    >>> from selectsearch.route.knn import adapted_encoder_folder  # doctest: +SKIP
    >>> folder = adapted_encoder_folder(ShardedIndex.open("indexes/scifact-k16"))  # doctest: +SKIP
    >>> TextEncoder(str(folder)).encode(["vitamin d deficiency"]).shape  # doctest: +SKIP
    (1, 384)
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch import settings
from selectsearch.models.encoder import DEFAULT_ENCODER

if TYPE_CHECKING:  # pragma: no cover
    import scipy.sparse as sp

__all__ = ["ADAPTED", "DEFAULT_ADAPT_RECIPE", "MIN_TEXTS", "AdaptRecipe", "adapt_static_encoder", "fit_table",
           "recipe_key", "short_texts"]

log = logging.getLogger(__name__)

#: the encoder name that means "the static encoder adapted to this index"
ADAPTED = "adapted"
#: characters kept of each sampled text (queries are short; a long text would be mostly body)
TEXT_CHARS = 300
#: below this many texts (500 documents) the texts do not determine the map into the teacher's
#: space (256 x 384 numbers) and the table: ``adapted`` is then the base encoder itself
MIN_TEXTS = 1000
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class AdaptRecipe:
    """How :func:`adapt_static_encoder` adapts a static table to a collection (module docs).

    Attributes:
        base: the static encoder adapted (a short name or a model2vec folder).
        teacher: the transformer whose embeddings the table learns to reproduce.
        docs: documents sampled (two texts each).
        seed: the sample's and the held-out split's seed.
        lambdas: ridge strengths tried, relative to the mean token frequency of the texts.
        holdout: share of the texts held out to choose the strength.
    """

    base: str = "minilm-static"
    teacher: str = DEFAULT_ENCODER
    docs: int = 5000
    seed: int = 0
    lambdas: tuple[float, ...] = (0.01, 0.1, 1.0)
    holdout: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        """JSON form, part of the folder's key and manifest."""
        return {**asdict(self), "lambdas": list(self.lambdas)}


DEFAULT_ADAPT_RECIPE = AdaptRecipe()


def _clip(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= TEXT_CHARS:
        return text
    cut = text[:TEXT_CHARS]
    return cut[: cut.rfind(" ")] if " " in cut else cut


def short_texts(contents: str) -> list[str]:
    """The two short texts of one document (module docs, step 1): its first line and the first
    sentence after it (for a one-line document: its first two sentences), each clipped."""
    head, _, rest = contents.strip().partition("\n")
    if not rest:
        head, *more = _SENTENCE_END.split(head, maxsplit=1)
        rest = more[0] if more else ""
    second = _SENTENCE_END.split(rest.strip(), maxsplit=1)[0] if rest.strip() else ""
    return [t for t in (_clip(head), _clip(second)) if t]


def _mean_pool_matrix(encoder: Any, texts: Sequence[str]) -> sp.csr_matrix:
    """``(len(texts), vocabulary)`` rows averaging each text's known tokens, as the encoder's
    :meth:`~selectsearch.models.static_encoder.StaticEncoder.encode` does (truncated, unknown
    tokens dropped)."""
    import scipy.sparse as sp

    table = encoder.table
    cut = encoder.max_length * int(table.median_token_length)
    tokenizer = encoder._query_tokenizer
    unk = table.unk_token_id
    rows: list[int] = []
    cols: list[int] = []
    for i, encoding in enumerate(tokenizer.encode_batch_fast([t[:cut] for t in texts], add_special_tokens=False)):
        ids = [t for t in encoding.ids if t != unk]
        rows += [i] * len(ids)
        cols += ids
    counts = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(texts), table.embedding.shape[0]))
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(lengths, 1.0)) @ counts)


def _unit(rows: np.ndarray) -> np.ndarray:
    out: np.ndarray = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    return out


def _ridge(pool: sp.csr_matrix, targets: np.ndarray, base: np.ndarray, lam: float, *, tol: float = 1e-5,
           max_iter: int = 500) -> np.ndarray:
    """The table minimising the module docs' objective for one relative strength ``lam``.

    Only tokens the texts contain move: the others keep their prior vector exactly. For those,
    the normal equations ``(X'X + lam s I) E = X'Y + lam s E0 P`` are solved by conjugate
    gradients, preconditioned by the diagonal, for every dimension at once (``X`` is touched
    twice per step; a sparse factorisation with hundreds of right-hand sides is several times
    slower), starting from the prior, to ``tol`` relative residual.
    """
    projection, *_ = np.linalg.lstsq(pool @ base, targets, rcond=None)
    prior = base @ projection  # the distilled table, in the teacher's space
    active = np.flatnonzero(np.asarray((pool != 0).sum(axis=0)).ravel())
    x_active = pool[:, active].tocsr()
    xt = x_active.T.tocsr()
    diagonal = np.asarray(x_active.multiply(x_active).sum(axis=0)).ravel()
    ridge = lam * float(diagonal.mean()) if len(diagonal) else lam
    rhs = xt @ targets + ridge * prior[active]

    def apply(v: np.ndarray) -> np.ndarray:
        return np.asarray(xt @ (x_active @ v)) + ridge * v

    inverse = (1.0 / (diagonal + ridge))[:, None]
    solution = prior[active].copy()
    residual = rhs - apply(solution)
    z = inverse * residual
    direction = z.copy()
    rz = np.einsum("ij,ij->j", residual, z)
    scale = max(float(np.linalg.norm(rhs)), 1e-300)
    for _ in range(max_iter):
        if float(np.linalg.norm(residual)) <= tol * scale:
            break
        step = apply(direction)
        alpha = rz / np.maximum(np.einsum("ij,ij->j", direction, step), 1e-300)
        solution += alpha * direction
        residual -= alpha * step
        z = inverse * residual
        rz_next = np.einsum("ij,ij->j", residual, z)
        direction = z + (rz_next / np.maximum(rz, 1e-300)) * direction
        rz = rz_next
    table = prior.copy()
    table[active] = solution
    return table


def fit_table(pool: sp.csr_matrix, targets: np.ndarray, base: np.ndarray, *, lambdas: Sequence[float],
              holdout: float, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """The adapted table (module docs, step 3) and a report: the held-out cosine of each
    strength and of the distilled table mapped by least squares alone (the starting point)."""
    targets = _unit(np.asarray(targets, dtype=np.float64))
    base = np.asarray(base, dtype=np.float64)
    n = pool.shape[0]
    order = np.random.default_rng(seed).permutation(n)
    n_val = round(holdout * n) if n >= 20 else 0
    val, train = order[:n_val], order[n_val:]
    report: dict[str, Any] = {"texts": n, "heldout_texts": n_val, "heldout_cosine": {}}
    chosen = lambdas[len(lambdas) // 2]
    if n_val:
        def cosine(table: np.ndarray) -> float:
            return float(np.mean(np.sum(_unit(pool[val] @ table) * targets[val], axis=1)))

        projection, *_ = np.linalg.lstsq(pool[train] @ base, targets[train], rcond=None)
        report["heldout_cosine_mapped_base"] = cosine(base @ projection)
        for lam in lambdas:
            report["heldout_cosine"][str(lam)] = cosine(_ridge(pool[train], targets[train], base, lam))
        chosen = max(lambdas, key=lambda lam: report["heldout_cosine"][str(lam)])
    report["lambda"] = chosen
    return _ridge(pool, targets, base, chosen), report


def recipe_key(identity: bytes, recipe: AdaptRecipe) -> str:
    """The folder key of ``recipe`` adapted to the collection ``identity`` names (e.g. the bytes
    of an index's manifest)."""
    digest = hashlib.sha256(identity)
    digest.update(json.dumps(recipe.to_dict(), sort_keys=True).encode())
    return digest.hexdigest()[:16]


def adapt_static_encoder(texts: Callable[[], list[str]], n_docs: int, identity: bytes, *, label: str,
                         recipe: AdaptRecipe = DEFAULT_ADAPT_RECIPE, progress: bool | None = None) -> Path:
    """The folder of ``recipe.base`` adapted to a collection (module docs), built now if missing.

    Args:
        texts: draws the collection's texts (called only when the folder must be built).
        n_docs: documents in the collection (a collection too small to fit on is told apart
            before drawing anything).
        identity: what names the collection; with the recipe it keys the folder.
        label: the collection's name in logs and in the manifest (e.g. the index's path).
        progress: a bar while the teacher embeds the texts (default: when info logging is on, as
            in the CLI without ``--quiet``).

    Built once per collection and recipe under ``$SELECTSEARCH_STATIC_ENCODERS`` (under a lock:
    two processes that need it build it once), written aside and renamed into place. A
    collection giving fewer than :data:`MIN_TEXTS` texts gets the base encoder's folder: too few
    texts to fit on.
    """
    from selectsearch.encode import TextEncoder
    from selectsearch.models.folder import model_folder, write_model_manifest
    from selectsearch.models.static_encoder import (
        FORMAT,
        MANIFEST,
        STATIC_ENCODERS,
        VERSION,
        StaticEncoder,
        _build_lock,
        static_encoder_folder,
    )

    def base_folder(reason: str) -> Path:
        log.info("%s: %s; using %s as it is", label, reason, recipe.base)
        return static_encoder_folder(recipe.base) if recipe.base in STATIC_ENCODERS else Path(recipe.base)

    if min(recipe.docs, n_docs) * 2 < MIN_TEXTS:
        return base_folder(f"{n_docs} documents are too few to adapt a query encoder to (need {MIN_TEXTS // 2})")
    folder = settings.static_encoders_dir() / f"{ADAPTED}-{recipe_key(identity, recipe)}"
    if (folder / MANIFEST).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(folder.with_name(folder.name + ".lock")):
        if (folder / MANIFEST).is_file():  # another process built it while this one waited
            return folder
        started = time.perf_counter()
        sample = texts()
        if len(sample) < MIN_TEXTS:  # documents without text
            return base_folder(f"{len(sample)} texts are too few to adapt a query encoder to (need {MIN_TEXTS})")
        base = StaticEncoder(recipe.base)
        log.info("adapting %s to %s: embedding %d texts with %s once (a minute or two of CPU)", recipe.base, label,
                 len(sample), recipe.teacher)
        show = log.isEnabledFor(logging.INFO) if progress is None else progress
        targets = TextEncoder(recipe.teacher).encode(sample, progress=show)
        table, report = fit_table(_mean_pool_matrix(base, sample), targets, base.table.embedding,
                                  lambdas=recipe.lambdas, holdout=recipe.holdout, seed=recipe.seed)
        from model2vec import StaticModel

        model = StaticModel(table.astype(np.float32), base.table.tokenizer, config={"model_type": "model2vec",
                            "normalize": True, "hidden_dim": int(table.shape[1])}, normalize=True)
        with model_folder(folder, overwrite=True) as partial:
            model.save_pretrained(partial)
            write_model_manifest(partial, {"name": ADAPTED, "recipe": recipe.to_dict(), "collection": label,
                                           "dim": int(table.shape[1]), "vocabulary": int(table.shape[0]),
                                           "fit": report, "adapt_seconds": round(time.perf_counter() - started, 2)},
                                 format=FORMAT, version=VERSION, name=MANIFEST)
        log.info("adapted %s to %s in %.0f s (held-out cosine %s)", recipe.base, label, time.perf_counter() - started,
                 report["heldout_cosine"])
    return folder
