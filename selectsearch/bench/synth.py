"""Synthetic collections of any size that follow a real one: a seeded topic-model generator.

Why: cost claims of selective search are about collections of millions of documents, and none
can be downloaded where the benchmarks run. This module fits a topic model on the real
passages at hand and writes as many synthetic passages as asked, whose topic mixtures, lengths
and term statistics follow the real ones, with the judged collection's real documents mixed in
so its queries stay judged. It is a benchmark tool: the text is a bag of words, so it measures
*cost* (postings, shard sizes, routing over a realistic topical structure) much better than it
measures quality (see "Limits").

Fit (:func:`fit_topic_model`, once; :meth:`TopicModel.save` / :meth:`TopicModel.load`):

1. Count every real document's terms (``TOKEN_PATTERN``, lower-cased: the words Lucene's
   standard tokenizer would also split out, give or take decimals and abbreviations).
2. Fit latent Dirichlet allocation (scikit-learn's online variational Bayes, Hoffman et al.
   2010) on a seeded sample of documents over the most frequent content terms (stop words
   and terms in one document only are left out of the *fit*: they carry no topical
   co-occurrence).
3. Infer every real document's topic posterior ``Dirichlet(gamma_d)``.
4. Re-estimate every topic's word distribution over the *whole* vocabulary (stop words, rare
   terms and all) from all documents: each token of a fit term is shared among topics by its
   responsibilities ``theta_dk * beta_kw`` (one M-step over the full collection); each token
   of another term by the document's mixture ``theta_d``. The result is each topic's expected
   token count per term; their total is exactly the collection's token count.
5. Calibrate burstiness: real documents repeat their words far more than independent draws
   from topics do, and that repetition decides the number of postings. Each synthetic token
   copies an earlier token of its document with probability ``copy_rate`` (Simon's 1955 model
   of word repetition, a Polya urn, which keeps expected term proportions); the rate is set by
   bisection so the postings per token of a simulated sample match the real collection's.

Generate (:func:`iter_chunks`, :func:`iter_documents`, :func:`write_collection`; streamed in
chunks of documents, each chunk from its own seeded stream ``[seed, chunk number]``): per
synthetic document, draw a real template document uniformly, take its length, draw its topic
mixture from the template's posterior ``Dirichlet(gamma_d)`` (a real document's mixture,
resampled with the noise the model itself assigns to it), draw each token's topic from the
mixture and its word from the topic (vectorised inverse-CDF sampling over one flattened,
sorted CDF table), then apply the copy step. Nothing but one chunk and the model is in memory.

Limits: a bag-of-words topic model has no word order, phrases or real semantics; dense or
learned routers see meaningless text; synthetic documents are never judged relevant; the
vocabulary cannot grow past the real one (no new words appear as the collection grows, so
the vocabulary is smaller than a real collection of that size would have); within a topic,
words are drawn independently (no finer structure than ``topics`` topics and their mixtures).

Example:
    >>> model = fit_topic_model(["data/scifact", "data/wikipedia"], FitOptions(seed=0))  # doctest: +SKIP
    >>> model.save("models/topic-gen")  # doctest: +SKIP
    >>> for doc_id, text in iter_documents(model, 3, seed=0):  # doctest: +SKIP
    ...     print(doc_id, text[:60])
    >>> write_collection(model, "syn-1m", docs=1_000_000, judged="data/scifact", seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.errors import DataFormatError, ModelError, SelectSearchError

__all__ = [
    "LUCENE_STOPWORDS",
    "TOKEN_PATTERN",
    "Cooccurrence",
    "FitOptions",
    "Sampler",
    "StatsAccumulator",
    "SyntheticChunk",
    "TopicModel",
    "fidelity_table",
    "fit_topic_model",
    "iter_chunks",
    "iter_documents",
    "load_sidecar",
    "query_term_ids",
    "real_cooccurrence",
    "stderr_log",
    "summarize",
    "tokenize",
    "write_collection",
]

#: a token: a run of letters and digits (no underscore), matched on lower-cased text. Single
#: characters count (Lucene indexes them too), so document lengths match what gets indexed.
TOKEN_PATTERN = r"(?u)[^\W_]+"
_TOKEN_RE = re.compile(TOKEN_PATTERN)

#: the stop words of Lucene's English analyzer (Anserini's default): query terms that are
#: dropped before search, so query-term statistics leave them out too
LUCENE_STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
    "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with"))

#: manifest format of a saved :class:`TopicModel`
MODEL_FORMAT = "selectsearch-topic-generator"
MODEL_VERSION = 1
#: name of the sidecar a generated collection carries
SIDECAR = "generation.json"
#: ranks at which the document-frequency curve is reported
DF_RANKS = (1, 10, 100, 1_000, 10_000, 100_000)
#: ranks between which the Zipf slope (log collection frequency vs log rank) is fitted: past the
#: few function words at the head, before the sampling-noise tail
ZIPF_RANKS = (10, 10_000)

Log = Callable[[str], None]


def tokenize(text: str) -> list[str]:
    """The tokens of ``text`` as the generator counts them (lower-cased ``TOKEN_PATTERN`` runs)."""
    return _TOKEN_RE.findall(text.lower())


def _say(log: Log | None, message: str) -> None:
    if log is not None:
        log(message)


def _wait_while(pause_file: str | os.PathLike[str] | None, log: Log | None, *, poll_s: float = 20.0) -> None:
    """Block while ``pause_file`` exists: a timing benchmark on a shared machine must not share its CPU."""
    if pause_file is None or not os.path.exists(pause_file):
        return
    _say(log, f"paused: {pause_file} exists (polling every {poll_s:.0f} s)")
    started = time.monotonic()
    while os.path.exists(pause_file):
        time.sleep(poll_s)
    _say(log, f"resumed after {time.monotonic() - started:.0f} s")


# ---------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class FitOptions:
    """How the topic model is fitted. The defaults are for collections of 10^5-10^6 passages.

    Attributes:
        topics: number of LDA topics. 200: more than the largest shard count a scale benchmark
            uses (128), so a topical partitioner can find structure at the granularity of its
            shards instead of splitting single topics arbitrarily; fitting cost grows linearly.
        fit_docs: documents sampled (seeded) for the LDA fit. 50,000 passages give every topic
            hundreds of documents at 200 topics; the fit is the slow step (time ~ fit_docs *
            topics * passes), and the word distributions are re-estimated on all documents
            afterwards anyway (step 4 of the module docs).
        fit_vocab: content terms the fit sees, most document-frequent first (stop words and
            single-document terms left out). 50,000 terms cover the terms that co-occur often
            enough to shape topics; every other term is still generated (step 4).
        passes: passes of online LDA over the sample. Online variational Bayes with a decaying
            learning rate settles within a few passes (Hoffman et al. 2010); the held-out
            perplexity after each pass is recorded so the reader can see it has.
        batch_size: documents per online update; 512 gives less noisy updates than
            scikit-learn's 128 at the same cost per document.
        min_df: terms in fewer documents are not generated (1: keep the whole vocabulary).
        heldout_docs: documents (outside the sample) whose perplexity is recorded after each pass.
        calibration_docs: synthetic documents simulated per step of the copy-rate bisection.
        seed: seeds the sample, the pass order, LDA's initialisation and the calibration.
        threads: worker processes of LDA's E-step (results depend on it: keep it fixed).
    """

    topics: int = 200
    fit_docs: int = 50_000
    fit_vocab: int = 50_000
    passes: int = 5
    batch_size: int = 512
    min_df: int = 1
    heldout_docs: int = 2_000
    calibration_docs: int = 4_000
    seed: int = 0
    threads: int = 1


@dataclass
class TopicModel:
    """A fitted generator: everything :func:`iter_chunks` needs, plus the real collection's counts.

    Attributes:
        vocab: the generated terms, by term id.
        topic_word: ``(topics, terms)`` expected token counts of each term in each topic.
        templates: ``(real documents, topics)`` Dirichlet posterior ``gamma_d`` of each real
            (non-empty) document's topic mixture.
        lengths: tokens of each template document.
        copy_rate: probability that a token repeats an earlier token of its document.
        options: the fit options.
        real_df, real_cf: document and collection frequency of every term in the real collection.
        info: what the fit recorded (sources, sizes, times, held-out perplexity per pass).
    """

    vocab: list[str]
    topic_word: np.ndarray
    templates: np.ndarray
    lengths: np.ndarray
    copy_rate: float
    options: FitOptions
    real_df: np.ndarray
    real_cf: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_topics(self) -> int:
        return int(self.topic_word.shape[0])

    @property
    def n_terms(self) -> int:
        return len(self.vocab)

    def real_stats(self, queries: Sequence[str] = (), *, cooccurrence: bool = True) -> dict[str, Any]:
        """:func:`summarize` of the real collection the model was fitted on (with ``cooccurrence``
        its sources are read again, when they still exist, for :class:`Cooccurrence`)."""
        hist = np.bincount(self.lengths.astype(np.int64))
        info, terms = self.info, query_term_ids(self, queries)
        return summarize(self.real_df, self.real_cf, hist, docs=int(info["real_docs_nonempty"]),
                         postings=int(info["real_postings"]), query_terms=terms,
                         cooccurrence=real_cooccurrence(self, terms) if cooccurrence else None)

    def save(self, folder: str | os.PathLike[str], *, overwrite: bool = False, command: str | None = None) -> Path:
        """Write the model folder atomically (arrays as ``.npy``, ``vocab.txt``, manifest last)."""
        from selectsearch.models.folder import model_folder, write_model_manifest

        with model_folder(folder, overwrite=overwrite) as partial:
            (partial / "vocab.txt").write_text("".join(t + "\n" for t in self.vocab), encoding="utf-8")
            for name in ("topic_word", "templates", "lengths", "real_df", "real_cf"):
                np.save(partial / f"{name}.npy", getattr(self, name))
            write_model_manifest(partial, {"options": dataclasses.asdict(self.options), "copy_rate": self.copy_rate,
                                           "topics": self.n_topics, "terms": self.n_terms,
                                           "templates": int(self.templates.shape[0]), "info": self.info},
                                 format=MODEL_FORMAT, version=MODEL_VERSION, command=command)
        return Path(folder)

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> TopicModel:
        """Read a folder written by :meth:`save`.

        Raises:
            ModelError: not such a folder, or written by a newer version.
        """
        from selectsearch.models.folder import read_model_manifest

        path = Path(folder)
        manifest = read_model_manifest(path, format=MODEL_FORMAT, version=MODEL_VERSION, what="topic generator",
                                       hint="fit one with eval/scale/generate.py --model DIR")
        vocab = (path / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
        arrays = {name: np.load(path / f"{name}.npy") for name in
                  ("topic_word", "templates", "lengths", "real_df", "real_cf")}
        if arrays["topic_word"].shape[1] != len(vocab):
            raise ModelError(f"{path}: topic_word has {arrays['topic_word'].shape[1]} terms, vocab.txt {len(vocab)}")
        known = {f.name for f in dataclasses.fields(FitOptions)}
        options = FitOptions(**{k: v for k, v in manifest["options"].items() if k in known})
        return cls(vocab=vocab, copy_rate=float(manifest["copy_rate"]), options=options, info=manifest["info"],
                   **arrays)


def _count(sources: Sequence[str | os.PathLike[str]], min_df: int, log: Log | None) -> tuple[Any, list[str]]:
    """The ``(documents, terms)`` count matrix of the real collection (streamed) and its vocabulary."""
    from sklearn.feature_extraction.text import CountVectorizer

    from selectsearch.data import open_corpus

    corpus = open_corpus(list(sources))
    started = time.monotonic()
    vectorizer = CountVectorizer(token_pattern=TOKEN_PATTERN, lowercase=True, min_df=min_df, dtype=np.int32)
    counts = vectorizer.fit_transform(doc.contents for doc in corpus).tocsr()
    vocab = [str(t) for t in vectorizer.get_feature_names_out()]
    _say(log, f"fit: counted {counts.shape[0]:,} documents, {len(vocab):,} terms, {int(counts.sum()):,} tokens "
              f"in {time.monotonic() - started:.1f} s")
    return counts, vocab


def _responsibility_counts(counts: Any, theta: np.ndarray, beta: np.ndarray, fit_cols: np.ndarray,
                           *, nnz_chunk: int = 200_000) -> np.ndarray:
    """``(topics, terms)`` expected token counts per topic and term over all documents (step 4).

    A token of fit term ``w`` in document ``d`` belongs to topic ``k`` with probability
    ``theta_dk beta_kw / sum_j theta_dj beta_jw``; a token of any other term with ``theta_dk``.
    """
    import scipy.sparse as sp

    n_topics, n_terms = theta.shape[1], counts.shape[1]
    out = np.zeros((n_topics, n_terms), dtype=np.float64)
    is_fit = np.zeros(n_terms, dtype=bool)
    is_fit[fit_cols] = True
    counts_fit = counts[:, fit_cols].tocsr()
    rows = np.repeat(np.arange(counts_fit.shape[0]), np.diff(counts_fit.indptr))
    beta_t = np.ascontiguousarray(beta.T)
    denom = np.empty(counts_fit.nnz, dtype=np.float64)
    for start in range(0, counts_fit.nnz, nnz_chunk):
        stop = min(start + nnz_chunk, counts_fit.nnz)
        denom[start:stop] = np.einsum("ij,ij->i", theta[rows[start:stop]], beta_t[counts_fit.indices[start:stop]])
    ratio = sp.csr_matrix((counts_fit.data / denom, counts_fit.indices, counts_fit.indptr), shape=counts_fit.shape)
    out[:, fit_cols] = beta * np.asarray(ratio.T @ theta).T
    other = np.flatnonzero(~is_fit)
    if other.size:
        out[:, other] = np.asarray(counts[:, other].tocsc().T @ theta).T
    return out


def fit_topic_model(sources: Sequence[str | os.PathLike[str]], options: FitOptions | None = None, *,
                    log: Log | None = None, pause_file: str | os.PathLike[str] | None = None) -> TopicModel:
    """Fit the generator on the real documents of ``sources`` (steps 1-5 of the module docs).

    Args:
        sources: corpus sources as ``selectsearch index`` reads them (BEIR folders, files, folders).
        options: fit options (defaults: :class:`FitOptions`).
        log: called with one progress line at a time.
        pause_file: while this file exists, wait between online updates and steps.

    Raises:
        DataNotFoundError, DataFormatError: a source is missing or unreadable.
        SelectSearchError: the sources hold no document with a token.
    """
    from sklearn.decomposition import LatentDirichletAllocation
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
    from threadpoolctl import threadpool_limits

    opts = options or FitOptions()
    started = time.monotonic()
    counts, vocab = _count(sources, opts.min_df, log)
    lengths_all = np.asarray(counts.sum(axis=1)).ravel().astype(np.int64)
    nonempty = np.flatnonzero(lengths_all > 0)
    if nonempty.size == 0:
        raise SelectSearchError(f"{', '.join(map(str, sources))}: no document has a token to learn from")
    df = np.bincount(counts.indices, minlength=len(vocab)).astype(np.int64)
    cf = np.asarray(counts.sum(axis=0)).ravel().astype(np.int64)

    # the fit vocabulary: content terms in >= 2 documents, most document-frequent first
    stop = np.array([t in ENGLISH_STOP_WORDS for t in vocab], dtype=bool)
    candidates = np.flatnonzero(~stop & (df >= 2))
    fit_cols = np.sort(candidates[np.argsort(-df[candidates], kind="stable")[: opts.fit_vocab]])
    if fit_cols.size == 0:
        fit_cols = np.flatnonzero(df > 0)
    counts_fit = counts[:, fit_cols].tocsr()
    in_fit = np.asarray(counts_fit.sum(axis=1)).ravel()

    rng = np.random.default_rng([opts.seed, 0])
    usable = np.flatnonzero(in_fit > 0)
    order = rng.permutation(usable)
    sample = np.sort(order[: opts.fit_docs])
    heldout = np.sort(order[opts.fit_docs: opts.fit_docs + opts.heldout_docs])
    x_fit = counts_fit[sample]
    x_held = counts_fit[heldout] if heldout.size else None
    _say(log, f"fit: LDA with {opts.topics} topics on {sample.size:,} documents x {fit_cols.size:,} terms, "
              f"{opts.passes} passes of batches of {opts.batch_size} ({opts.threads} worker(s))")

    lda = LatentDirichletAllocation(n_components=opts.topics, learning_method="online", batch_size=opts.batch_size,
                                    total_samples=sample.size, random_state=opts.seed, n_jobs=opts.threads)
    perplexity: list[float] = []
    pass_s: list[float] = []
    order_rng = np.random.default_rng([opts.seed, 1])
    with threadpool_limits(opts.threads):
        for p in range(opts.passes):
            t0 = time.monotonic()
            perm = order_rng.permutation(sample.size)
            for b in range(0, sample.size, opts.batch_size):
                _wait_while(pause_file, log)
                lda.partial_fit(x_fit[perm[b: b + opts.batch_size]])
            pass_s.append(round(time.monotonic() - t0, 1))
            if x_held is not None:
                perplexity.append(round(_heldout_perplexity(lda, x_held), 1))
            _say(log, f"fit: pass {p + 1}/{opts.passes} in {pass_s[-1]:.0f} s"
                      + (f", held-out perplexity {perplexity[-1]:,.0f}" if perplexity else ""))

        # step 3: every real document's topic posterior
        t0 = time.monotonic()
        theta = np.empty((counts.shape[0], opts.topics), dtype=np.float64)
        step = 10_000
        for start in range(0, counts.shape[0], step):
            _wait_while(pause_file, log)
            theta[start: start + step] = lda.transform(counts_fit[start: start + step])
            _say(log, f"fit: inferred mixtures of {min(start + step, counts.shape[0]):,}/{counts.shape[0]:,} documents")
        alpha = float(lda.doc_topic_prior_)
        gamma = theta * (opts.topics * alpha + in_fit)[:, None]  # sum_k gamma_dk = K alpha + tokens (LDA's E-step)
        infer_s = time.monotonic() - t0

        # step 4: topic-word expected counts over the whole vocabulary
        _wait_while(pause_file, log)
        t0 = time.monotonic()
        beta = lda.components_ / lda.components_.sum(axis=1, keepdims=True)
        topic_word = _responsibility_counts(counts, theta, beta, fit_cols)
        _say(log, f"fit: topic-word counts over {len(vocab):,} terms in {time.monotonic() - t0:.1f} s")
    del theta, counts_fit, x_fit

    model = TopicModel(vocab=vocab, topic_word=topic_word.astype(np.float32),
                       templates=gamma[nonempty].astype(np.float32), lengths=lengths_all[nonempty].astype(np.int32),
                       copy_rate=0.0, options=opts, real_df=df, real_cf=cf)
    real_postings = int(counts.nnz)
    real_tokens = int(lengths_all.sum())
    del counts

    # step 5: burstiness
    _wait_while(pause_file, log)
    target = real_postings / real_tokens
    model.copy_rate, achieved = _calibrate_copy_rate(model, target, docs=opts.calibration_docs, seed=opts.seed)
    _say(log, f"fit: copy rate {model.copy_rate:.4f} (postings per token {achieved:.4f}, real {target:.4f})")
    model.info = {
        "sources": [str(s) for s in sources],
        "real_docs": int(lengths_all.size), "real_docs_nonempty": int(nonempty.size),
        "real_tokens": real_tokens, "real_postings": real_postings,
        "fit_docs": int(sample.size), "fit_terms": int(fit_cols.size), "heldout_docs": int(heldout.size),
        "doc_topic_prior": alpha, "topic_word_prior": float(lda.topic_word_prior_),
        "learning_decay": lda.learning_decay, "learning_offset": lda.learning_offset,
        "heldout_perplexity_per_pass": perplexity, "pass_s": pass_s, "infer_s": round(infer_s, 1),
        "postings_per_token_target": round(target, 6), "postings_per_token_calibrated": round(achieved, 6),
        "fit_s": round(time.monotonic() - started, 1),
    }
    return model


def _heldout_perplexity(lda: Any, x: Any) -> float:
    """Per-token perplexity ``exp(-mean log sum_k theta_dk beta_kw)`` of documents the fit never saw.

    ``theta_d`` is inferred from the document itself (optimistic in absolute terms, but the same
    every pass, so it shows whether the passes have converged). scikit-learn's ``perplexity``
    is not used: its bound carries the whole topic-word prior term, which swamps a small
    held-out set.
    """
    x = x.tocsr()
    theta = lda.transform(x)
    beta_t = (lda.components_ / lda.components_.sum(axis=1, keepdims=True)).T
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    p = np.einsum("ij,ij->i", theta[rows], beta_t[x.indices])
    return float(np.exp(-(x.data * np.log(p)).sum() / max(1, x.data.sum())))


def _postings(words: np.ndarray, lengths: np.ndarray, n_terms: int) -> int:
    """Distinct (document, term) pairs of a chunk: the postings it adds to an index."""
    doc = np.repeat(np.arange(lengths.size, dtype=np.int64), lengths)
    return int(np.unique(doc * n_terms + words).size)


def _calibrate_copy_rate(model: TopicModel, target: float, *, docs: int, seed: int,
                         steps: int = 18) -> tuple[float, float]:
    """The copy rate whose simulated postings per token match ``target`` (bisection, common random numbers)."""
    sampler = Sampler(model)

    def ratio(rate: float) -> float:
        words, lengths = sampler.sample(np.random.default_rng([seed, 3]), docs, copy_rate=rate)
        return _postings(words, lengths, model.n_terms) / max(1, int(lengths.sum()))

    lo, hi = 0.0, 0.99
    if ratio(lo) <= target:
        return 0.0, ratio(0.0)
    for _ in range(steps):
        mid = (lo + hi) / 2
        if ratio(mid) > target:
            lo = mid
        else:
            hi = mid
    rate = (lo + hi) / 2
    return rate, ratio(rate)


# ---------------------------------------------------------------------------- sampling
class Sampler:
    """The sampling tables of a model: one flattened CDF over every topic's words (float64).

    Topic ``k``'s CDF is shifted by ``k`` so the table is one sorted array; a word is drawn for
    a token of topic ``z`` by searching ``z + u`` for a uniform ``u``. Memory: 8 bytes per
    topic and term (200 topics x 290k terms: 464 MB), plus the model.
    """

    def __init__(self, model: TopicModel) -> None:
        self.model = model
        counts = model.topic_word.astype(np.float64)
        cdf = np.cumsum(counts, axis=1)
        totals = cdf[:, -1:].copy()
        totals[totals <= 0] = 1.0
        cdf /= totals
        cdf[:, -1] = 1.0
        cdf += np.arange(model.n_topics, dtype=np.float64)[:, None]
        self.word_cdf = cdf.ravel()
        self.templates = model.templates
        self.lengths = model.lengths.astype(np.int64)

    def sample(self, rng: np.random.Generator, n_docs: int, *, copy_rate: float | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """``(word ids, document lengths)`` of ``n_docs`` new documents (tokens concatenated)."""
        model = self.model
        n_topics, n_terms = model.n_topics, model.n_terms
        rate = model.copy_rate if copy_rate is None else copy_rate
        template = rng.integers(0, self.lengths.size, size=n_docs)
        lengths = self.lengths[template]
        gamma = self.templates[template].astype(np.float64)
        theta = rng.standard_gamma(gamma)
        sums = theta.sum(axis=1)
        degenerate = sums <= 0  # every gamma draw underflowed: fall back on the posterior mean
        if degenerate.any():
            theta[degenerate] = gamma[degenerate]
            sums[degenerate] = gamma[degenerate].sum(axis=1)
        cum = np.cumsum(theta / sums[:, None], axis=1)
        cum[:, -1] = 1.0
        cum += np.arange(n_docs, dtype=np.float64)[:, None]
        doc = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
        n_tokens = doc.size
        topic = np.searchsorted(cum.ravel(), rng.random(n_tokens) + doc, side="right") - doc * n_topics
        np.clip(topic, 0, n_topics - 1, out=topic)
        keys = rng.random(n_tokens) + topic
        order = np.argsort(keys)  # sorted keys make the search ~10x faster on a table this large
        words = np.empty(n_tokens, dtype=np.int64)
        words[order] = np.searchsorted(self.word_cdf, keys[order], side="right")
        words -= topic * n_terms
        np.clip(words, 0, n_terms - 1, out=words)
        if rate > 0 and n_tokens:
            starts = np.cumsum(lengths) - lengths
            own = starts[doc]
            position = np.arange(n_tokens, dtype=np.int64) - own
            copies = (rng.random(n_tokens) < rate) & (position > 0)
            source = own + (rng.random(n_tokens) * position).astype(np.int64)
            parent = np.where(copies, source, np.arange(n_tokens, dtype=np.int64))
            while True:  # pointer jumping: every token to the first, non-copied token of its chain
                grand = parent[parent]
                if np.array_equal(grand, parent):
                    break
                parent = grand
            words = words[parent]
        return words.astype(np.int32), lengths


@dataclass(frozen=True)
class SyntheticChunk:
    """Consecutive synthetic documents: ``first`` is the 0-based number of the first one."""

    first: int
    words: np.ndarray
    lengths: np.ndarray

    @property
    def n_docs(self) -> int:
        return int(self.lengths.size)

    def split(self, n: int) -> tuple[SyntheticChunk, SyntheticChunk]:
        """The first ``n`` documents and the rest."""
        cut = int(self.lengths[:n].sum())
        return (SyntheticChunk(self.first, self.words[:cut], self.lengths[:n]),
                SyntheticChunk(self.first + n, self.words[cut:], self.lengths[n:]))


def iter_chunks(model: TopicModel | Sampler, n: int, *, seed: int, chunk_docs: int = 20_000,
                start: int = 0) -> Iterator[SyntheticChunk]:
    """Yield ``n`` synthetic documents in chunks of ``chunk_docs``, lazily (one chunk at a time).

    Chunk ``i`` (documents ``i*chunk_docs ...``) is drawn from the stream ``[seed, 2, i]``, always
    whole (the last one cut to size), so the documents depend on ``seed`` and ``chunk_docs``
    only: the first ``m`` documents of ``n`` are the ``m`` documents of a smaller collection
    (a 1M collection is the head of the 5M one). ``start`` (a multiple of ``chunk_docs``)
    resumes at that document.
    """
    if chunk_docs < 1:
        raise ValueError("chunk_docs must be >= 1")
    if start % chunk_docs:
        raise ValueError("start must be a multiple of chunk_docs")
    sampler = model if isinstance(model, Sampler) else Sampler(model)
    for first in range(start, n, chunk_docs):
        words, lengths = sampler.sample(np.random.default_rng([seed, 2, first // chunk_docs]), chunk_docs)
        chunk = SyntheticChunk(first, words, lengths)
        yield chunk if first + chunk_docs <= n else chunk.split(n - first)[0]


class _Renderer:
    """Turns word ids into UTF-8 text with numpy gathers (no Python loop over tokens)."""

    def __init__(self, vocab: Sequence[str]) -> None:
        encoded = [t.encode("utf-8") for t in vocab]
        self.blob = np.frombuffer(b" ".join(encoded) + b" ", dtype=np.uint8)
        self.size = np.array([len(t) + 1 for t in encoded], dtype=np.int64)  # with the trailing space
        self.offset = np.cumsum(self.size) - self.size

    def texts(self, chunk: SyntheticChunk) -> tuple[bytes, np.ndarray]:
        """The chunk's tokens as ``"w w w "`` bytes and each document's ``(start, end)`` byte span
        (its tokens without the trailing space)."""
        size = self.size[chunk.words]
        ends = np.concatenate([[0], np.cumsum(size)])
        total = int(ends[-1])
        gather = np.repeat(self.offset[chunk.words] - ends[:-1], size) + np.arange(total, dtype=np.int64)
        data = self.blob[gather].tobytes()
        last = np.cumsum(chunk.lengths)
        start, end = ends[last - chunk.lengths], ends[last]
        return data, np.stack([start, np.where(chunk.lengths > 0, end - 1, start)], axis=1)


def _id_width(n: int) -> int:
    return max(7, len(str(n)))


def iter_documents(model: TopicModel, n: int, *, seed: int, chunk_docs: int = 20_000,
                   prefix: str = "syn-") -> Iterator[tuple[str, str]]:
    """Yield ``(doc_id, text)`` for ``n`` synthetic documents (ids ``syn-0000001`` ...), lazily."""
    renderer = _Renderer(model.vocab)
    width = _id_width(n)
    for chunk in iter_chunks(model, n, seed=seed, chunk_docs=chunk_docs):
        data, spans = renderer.texts(chunk)
        for i, (lo, hi) in enumerate(spans.tolist()):
            yield f"{prefix}{chunk.first + i + 1:0{width}d}", data[lo:hi].decode("utf-8")


# ---------------------------------------------------------------------------- statistics
def query_term_ids(model: TopicModel, queries: Sequence[str]) -> list[list[int]]:
    """Per query, the term ids of its distinct non-stop tokens (-1: not in the vocabulary)."""
    if not queries:
        return []
    index = {t: i for i, t in enumerate(model.vocab)}
    out = []
    for text in queries:
        terms = sorted({t for t in tokenize(text) if t not in LUCENE_STOPWORDS})
        out.append([index.get(t, -1) for t in terms])
    return out


def _hist_percentile(hist: np.ndarray, q: float) -> float:
    cum = np.cumsum(hist)
    if not cum.size or cum[-1] == 0:
        return 0.0
    return float(np.searchsorted(cum, q / 100.0 * cum[-1], side="left"))


def zipf_slope(cf: np.ndarray, ranks: tuple[int, int] = ZIPF_RANKS) -> float | None:
    """Least-squares slope of log collection frequency against log rank between ``ranks``."""
    freq = np.sort(cf[cf > 0])[::-1].astype(np.float64)
    lo, hi = ranks[0], min(ranks[1], freq.size)
    if hi - lo < 2:
        return None
    r = np.arange(lo, hi + 1, dtype=np.float64)
    return float(np.polyfit(np.log(r), np.log(freq[lo - 1: hi]), 1)[0])


def summarize(df: np.ndarray, cf: np.ndarray, length_hist: np.ndarray, *, docs: int, postings: int,
              query_terms: Sequence[Sequence[int]] = (), cooccurrence: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    """The statistics a reader needs to judge a synthetic collection against the real one.

    Lengths (tokens per document), postings (distinct terms per document), vocabulary, the
    document-frequency curve (df / documents at fixed ranks), the Zipf slope, and for the
    queries: mean document frequency of a query term (what a term's posting list costs) and
    mean postings per query (what exhaustive search scores), and with ``cooccurrence``
    (:meth:`Cooccurrence.summary`) how many documents hold several terms of a query.
    """
    tokens = int(cf.sum())
    lengths = np.arange(length_hist.size)
    df_sorted = np.sort(df[df > 0])[::-1]
    out: dict[str, Any] = {
        "docs": int(docs), "tokens": tokens,
        "length": {"mean": round(float((lengths * length_hist).sum() / max(1, docs)), 2),
                   "min": int(np.flatnonzero(length_hist)[0]) if length_hist.any() else 0,
                   **{f"p{q}": _hist_percentile(length_hist, q) for q in (1, 5, 25, 50, 75, 95, 99)},
                   "max": int(np.flatnonzero(length_hist)[-1]) if length_hist.any() else 0},
        "postings": int(postings), "postings_per_doc": round(postings / max(1, docs), 2),
        "postings_per_token": round(postings / max(1, tokens), 4),
        "vocabulary": int((df > 0).sum()), "hapax_terms": int((df == 1).sum()),
        "df_frac_at_rank": {str(r): round(float(df_sorted[r - 1]) / max(1, docs), 5)
                            for r in DF_RANKS if r <= df_sorted.size},
        "zipf_slope": None if (s := zipf_slope(cf)) is None else round(s, 3),
    }
    if query_terms:
        per_term = [int(df[t]) if t >= 0 else 0 for q in query_terms for t in q]
        per_query = [sum(int(df[t]) for t in q if t >= 0) for q in query_terms]
        out["queries"] = {
            "queries": len(query_terms), "terms": len(per_term),
            "mean_df_per_term": round(float(np.mean(per_term)), 1) if per_term else 0.0,
            "mean_df_per_term_per_1m_docs": round(float(np.mean(per_term)) * 1e6 / max(1, docs), 1)
            if per_term else 0.0,
            "terms_absent": round(sum(1 for v in per_term if v == 0) / max(1, len(per_term)), 4),
            "mean_postings_per_query": round(float(np.mean(per_query)), 1),
            **(cooccurrence or {}),
        }
    return out


class Cooccurrence:
    """Per query, the documents holding at least 2, 3 and 4 of its terms.

    Marginal term statistics can match while co-occurrence does not: a synthetic document draws
    its words independently given its topics, whereas real text keeps related terms together.
    Documents holding several query terms are the ones BM25 ranks high and dynamic pruning
    must score, so this is the statistic that shows how far cost and quality on a synthetic
    collection can be trusted. A threshold counts only the queries with at least that many
    known terms.
    """

    #: thresholds: documents holding at least this many distinct terms of a query
    AT_LEAST = (2, 3, 4)

    def __init__(self, query_terms: Sequence[Sequence[int]], n_terms: int) -> None:
        import scipy.sparse as sp

        rows = [t for q in query_terms for t in q if t >= 0]
        cols = [j for j, q in enumerate(query_terms) for t in q if t >= 0]
        self.n_terms, self.n_queries = n_terms, len(query_terms)
        self.matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_terms, self.n_queries))
        self.known = np.array([sum(1 for t in q if t >= 0) for q in query_terms], dtype=np.int64)
        self.counts = {m: np.zeros(self.n_queries, dtype=np.int64) for m in self.AT_LEAST}
        self.docs = 0

    def add(self, doc: np.ndarray, term: np.ndarray, n_docs: int) -> None:
        """Add ``n_docs`` documents given as their distinct ``(doc, term)`` pairs."""
        import scipy.sparse as sp

        held = sp.csr_matrix((np.ones(doc.size), (doc, term)), shape=(n_docs, self.n_terms))
        hits = (held @ self.matrix).tocoo()
        for m, counts in self.counts.items():
            counts += np.bincount(hits.col[hits.data >= m], minlength=self.n_queries)
        self.docs += n_docs

    def summary(self) -> dict[str, Any]:
        per_1m = 1e6 / max(1, self.docs)
        out: dict[str, Any] = {}
        for m, counts in self.counts.items():
            asked = self.known >= m
            if asked.any():
                out[f"docs_with_{m}plus_query_terms_per_1m"] = round(float(counts[asked].mean()) * per_1m, 1)
                out[f"queries_with_{m}plus_terms"] = int(asked.sum())
        return out


def real_cooccurrence(model: TopicModel, query_terms: Sequence[Sequence[int]], *, chunk_docs: int = 20_000
                      ) -> dict[str, Any] | None:
    """:class:`Cooccurrence` summary of the real collection (re-read from the model's sources;
    ``None`` when they are gone)."""
    from selectsearch.data import open_corpus
    from selectsearch.errors import DataNotFoundError

    if not query_terms:
        return None
    try:
        corpus = open_corpus(list(model.info["sources"]))
    except (DataNotFoundError, KeyError):
        return None
    index = {t: i for i, t in enumerate(model.vocab)}
    counter = Cooccurrence(query_terms, model.n_terms)
    docs: list[list[int]] = []

    def flush() -> None:
        doc = np.repeat(np.arange(len(docs), dtype=np.int64), [len(d) for d in docs])
        counter.add(doc, np.fromiter((t for d in docs for t in d), dtype=np.int64, count=doc.size), len(docs))
        docs.clear()

    for document in corpus:
        terms = {index[t] for t in tokenize(document.contents) if t in index}
        if terms:  # the statistics count non-empty documents, as the templates do
            docs.append(sorted(terms))
        if len(docs) == chunk_docs:
            flush()
    if docs:
        flush()
    return counter.summary()


class StatsAccumulator:
    """Document frequencies, collection frequencies, lengths and postings over streamed chunks."""

    def __init__(self, n_terms: int, query_terms: Sequence[Sequence[int]] = ()) -> None:
        self.n_terms = n_terms
        self.query_terms = query_terms
        self.cooccurrence = Cooccurrence(query_terms, n_terms) if query_terms else None
        self.df = np.zeros(n_terms, dtype=np.int64)
        self.cf = np.zeros(n_terms, dtype=np.int64)
        self.length_hist = np.zeros(1, dtype=np.int64)
        self.docs = 0
        self.postings = 0

    def add(self, chunk: SyntheticChunk) -> None:
        doc = np.repeat(np.arange(chunk.n_docs, dtype=np.int64), chunk.lengths)
        pairs = np.unique(doc * self.n_terms + chunk.words)
        self.df += np.bincount(pairs % self.n_terms, minlength=self.n_terms)
        self.cf += np.bincount(chunk.words, minlength=self.n_terms)
        hist = np.bincount(chunk.lengths)
        if hist.size > self.length_hist.size:
            self.length_hist = np.concatenate([self.length_hist, np.zeros(hist.size - self.length_hist.size,
                                                                          dtype=np.int64)])
        self.length_hist[: hist.size] += hist
        self.docs += chunk.n_docs
        self.postings += int(pairs.size)
        if self.cooccurrence is not None:
            self.cooccurrence.add(pairs // self.n_terms, pairs % self.n_terms, chunk.n_docs)

    def summary(self) -> dict[str, Any]:
        return summarize(self.df, self.cf, self.length_hist, docs=self.docs, postings=self.postings,
                         query_terms=self.query_terms,
                         cooccurrence=self.cooccurrence.summary() if self.cooccurrence is not None else None)


# ---------------------------------------------------------------------------- writing a collection
class _Progress:
    """One progress line at most every ``every_s`` seconds, and the last one."""

    def __init__(self, log: Log | None, total: int, *, every_s: float = 15.0) -> None:
        self.log, self.total, self.every_s = log, total, every_s
        self.started = self.last = time.monotonic()

    def update(self, done: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.log is None or (not force and now - self.last < self.every_s):
            return
        self.last = now
        rate = done / max(1e-9, now - self.started)
        eta = (self.total - done) / rate if rate > 0 else math.inf
        self.log(f"generate: {done:,}/{self.total:,} synthetic documents ({100.0 * done / max(1, self.total):.1f}%), "
                 f"{rate:,.0f} docs/s, {now - self.started:,.0f} s elapsed, eta {eta:,.0f} s")


def _judged_documents(judged: Path) -> Iterator[tuple[str, bytes]]:
    from selectsearch.data import open_corpus

    for doc in open_corpus(judged):
        line = json.dumps({"_id": doc.doc_id, "title": doc.title, "text": doc.text}, ensure_ascii=False)
        yield doc.doc_id, (line + "\n").encode("utf-8")


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def write_collection(model: TopicModel, out: str | os.PathLike[str], *, docs: int, judged: str | os.PathLike[str],
                     seed: int, split: str = "test", chunk_docs: int = 20_000, prefix: str = "syn-",
                     overwrite: bool = False, log: Log | None = None, command: str | None = None,
                     pause_file: str | os.PathLike[str] | None = None, extra: dict[str, Any] | None = None,
                     ) -> dict[str, Any]:
    """Write a BEIR folder of ``docs`` synthetic documents with ``judged``'s real documents mixed in.

    ``corpus.jsonl`` holds the synthetic documents (ids ``syn-0000001`` ..., empty title) with the
    judged collection's documents at seeded random positions (their ids unchanged), so the
    copied ``queries.jsonl`` and ``qrels/*.tsv`` still judge them. Statistics are gathered while
    writing and stored in the sidecar ``generation.json`` (also returned): the real collection,
    the first ``real size`` synthetic documents (equal size, so vocabulary and df curves compare
    directly) and all synthetic documents. Written under ``<out>.partial``, renamed at the end.

    Raises:
        SelectSearchError: ``out`` exists without ``overwrite``, or a judged id has the synthetic prefix.
        DataNotFoundError: ``judged`` has no corpus.
    """
    from selectsearch.atomic import building
    from selectsearch.bench.measure import load_average, rss_mb
    from selectsearch.data import beir, load_queries

    final, judged_dir = Path(out), Path(judged)
    if final.exists() and not overwrite:
        raise SelectSearchError(f"{final} exists; choose another folder or pass --overwrite")
    judged_ids = [doc_id for doc_id, _ in _judged_documents(judged_dir)]
    clash = [d for d in judged_ids if d.startswith(prefix)]
    if clash:
        raise DataFormatError(judged_dir, None, f"document id {clash[0]!r} starts with the synthetic prefix "
                                                f"{prefix!r}; choose another prefix")
    n_real = len(judged_ids)
    queries = load_queries(judged_dir, split=split)
    query_texts = list(queries.values())
    query_terms = query_term_ids(model, query_texts)
    positions = np.sort(np.random.default_rng([seed, 4]).choice(docs + n_real, size=n_real, replace=False))
    synthetic_before = positions - np.arange(n_real)  # synthetic documents written before each real one
    width = _id_width(docs)
    renderer = _Renderer(model.vocab)
    stats, at_real_size = StatsAccumulator(model.n_terms, query_terms), None
    compare_at = int(model.info.get("real_docs_nonempty", 0))
    progress = _Progress(log, docs)
    started = time.monotonic()
    sampler = Sampler(model)
    _say(log, f"generate: {docs:,} synthetic + {n_real:,} real documents into {final} "
              f"(seed {seed}, chunks of {chunk_docs:,})")
    with building(final) as partial:
        real = _judged_documents(judged_dir)
        next_real = 0
        with open(partial / "corpus.jsonl", "wb", buffering=1 << 22) as f:
            for chunk in iter_chunks(sampler, docs, seed=seed, chunk_docs=chunk_docs):
                _wait_while(pause_file, log)
                data, spans = renderer.texts(chunk)
                parts: list[bytes] = []
                for i, (lo, hi) in enumerate(spans.tolist()):
                    number = chunk.first + i
                    while next_real < n_real and synthetic_before[next_real] == number:
                        parts.append(next(real)[1])
                        next_real += 1
                    parts.append(b'{"_id": "%s%0*d", "title": "", "text": "%s"}\n'
                                 % (prefix.encode(), width, number + 1, data[lo:hi]))
                f.write(b"".join(parts))
                if at_real_size is None and compare_at and chunk.first + chunk.n_docs >= compare_at:
                    head, tail = chunk.split(compare_at - chunk.first)
                    stats.add(head)
                    at_real_size = stats.summary()
                    stats.add(tail)
                else:
                    stats.add(chunk)
                progress.update(chunk.first + chunk.n_docs)
            for _, line in real:  # the real documents placed after the last synthetic one
                f.write(line)
                next_real += 1
        progress.update(docs, force=True)
        generate_s = time.monotonic() - started
        if next_real != n_real:
            raise SelectSearchError(f"{judged_dir}: read {next_real} documents, expected {n_real} "
                                    "(changed while being read?)")
        shutil.copyfile(beir.queries_path(judged_dir), partial / "queries.jsonl")
        (partial / "qrels").mkdir()
        for qrels in sorted((judged_dir / "qrels").glob("*.tsv")):
            shutil.copyfile(qrels, partial / "qrels" / qrels.name)
        sidecar = {
            "format": "selectsearch-synthetic-collection", "version": 1, "command": command,
            "seed": seed, "chunk_docs": chunk_docs, "id_prefix": prefix,
            "docs": {"synthetic": docs, "real": n_real, "total": docs + n_real},
            "judged": {"folder": str(judged_dir), "split": split, "queries": len(query_texts),
                       "qrels": sorted(p.name for p in (partial / "qrels").glob("*.tsv"))},
            "model": {"options": dataclasses.asdict(model.options), "topics": model.n_topics,
                      "terms": model.n_terms, "templates": int(model.templates.shape[0]),
                      "copy_rate": model.copy_rate, "info": model.info},
            "generate_s": round(generate_s, 1), "docs_per_s": round(docs / max(1e-9, generate_s), 1),
            "peak_rss_mb": round(rss_mb()[1], 1), "load_average": [round(x, 2) for x in load_average()],
            "stats": {"real": model.real_stats(query_texts),
                      "synthetic_at_real_size": at_real_size, "synthetic": stats.summary()},
            **(extra or {}),
        }
        sidecar["disk_bytes"] = _folder_bytes(partial)
        (partial / SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    _say(log, f"generate: done in {generate_s:,.1f} s ({sidecar['docs_per_s']:,.0f} docs/s), "
              f"{sidecar['disk_bytes'] / 2**30:.2f} GiB, peak RSS {sidecar['peak_rss_mb']:,.0f} MiB")
    return sidecar


# ---------------------------------------------------------------------------- the report
def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1 else f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def fidelity_table(sidecar: dict[str, Any]) -> list[str]:
    """Markdown table: the real collection next to the synthetic one at equal size and at full size.

    The last column scales the real collection's per-document counts linearly to the synthetic
    size: what a collection drawn from the same distribution would show (vocabulary excepted).
    """
    from selectsearch.bench.report import format_table

    stats = sidecar["stats"]
    real, same, full = stats["real"], stats.get("synthetic_at_real_size") or {}, stats["synthetic"]
    scale = full["docs"] / max(1, real["docs"])
    rows: list[list[object]] = []

    def row(label: str, get: Callable[[dict[str, Any]], Any], scaled: Any = None) -> None:
        def safe(s: dict[str, Any]) -> Any:
            try:
                return get(s)
            except (KeyError, TypeError):
                return None
        rows.append([label, _fmt(safe(real)), _fmt(safe(same)), _fmt(safe(full)), _fmt(scaled)])

    row("documents", lambda s: s["docs"])
    row("tokens", lambda s: s["tokens"], round(real["tokens"] * scale))
    for key in ("mean", "p5", "p50", "p95", "p99", "max"):
        row(f"length {key}", lambda s, k=key: s["length"][k])  # type: ignore[misc]
    row("postings per document", lambda s: s["postings_per_doc"])
    row("postings per token", lambda s: s["postings_per_token"])
    row("vocabulary (df > 0)", lambda s: s["vocabulary"])
    row("terms in one document", lambda s: s["hapax_terms"])
    for rank in DF_RANKS:
        row(f"df / docs of the rank-{rank:,} term", lambda s, r=str(rank): s["df_frac_at_rank"][r])  # type: ignore[misc]
    row(f"Zipf slope (ranks {ZIPF_RANKS[0]:,}-{ZIPF_RANKS[1]:,})", lambda s: s["zipf_slope"])
    if "queries" in real:
        q = real["queries"]
        row("query terms with df = 0", lambda s: s["queries"]["terms_absent"])
        row("mean df of a query term", lambda s: s["queries"]["mean_df_per_term"],
            round(q["mean_df_per_term"] * scale, 1))
        row("mean df of a query term per 1M docs", lambda s: s["queries"]["mean_df_per_term_per_1m_docs"])
        row("mean postings per query", lambda s: s["queries"]["mean_postings_per_query"],
            round(q["mean_postings_per_query"] * scale, 1))
        for m in Cooccurrence.AT_LEAST:
            row(f"docs with >= {m} terms of a query, per 1M docs",
                lambda s, m=m: s["queries"][f"docs_with_{m}plus_query_terms_per_1m"])  # type: ignore[misc]
    header = ["statistic", "real", f"synthetic, first {_fmt(same.get('docs'))}" if same else "synthetic (equal size)",
              f"synthetic, all {_fmt(full['docs'])}", f"real x {scale:,.2f}"]
    return [format_table(header, rows)]


def load_sidecar(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``generation.json`` of a generated collection."""
    path = Path(folder) / SIDECAR
    if not path.is_file():
        raise ModelError(f"{folder} has no {SIDECAR}; it was not written by write_collection")
    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return result


def stderr_log(message: str) -> None:
    """The progress sink of the entry script: one flushed line on stderr (also when not a terminal)."""
    print(message, file=sys.stderr, flush=True)
