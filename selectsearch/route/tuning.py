"""Tune ``hybrid@m`` on held-out logged queries and store the result with the index.

The weights of a fused router are chosen on logged queries that no learned part has seen, held
out in one of two ways (``validation``):

- ``topics`` (the default of ``tune-route``): whole topic clusters of logged queries are held out
  (:func:`selectsearch.route.shift.topic_split`: spherical k-means of the query embeddings, about
  15% of the queries, seed 0), so the validation queries are unlike the training logs, as new
  kinds of queries are unlike the logs a router learned from; and every training pair whose
  document a validation query clicked is dropped too, as a new kind of query also finds
  documents no logged query led to. Weights chosen here lean on the routers that still work on
  unfamiliar queries and unlogged documents. For a MICO index whose model was trained with
  ``val_split="topics"``, its own topic split (``val_fraction``, ``seed``, ``val_topics``) is drawn
  again, so that the MICO head has not seen the validation queries either; with a randomly split
  MICO model it has seen some of them, its topic AUC is optimistic, and a warning says so.
- ``random``: the validation split by query that MICO training held out (its ``val_fraction`` and
  ``seed``, read from the model's config; for an index that is not MICO-partitioned the same
  default split of the logs: 10% of the queries, seed 0). It measures how well routers
  interpolate between logged queries, and cannot see a shift.

Each split is drawn ``folds`` times and the draws stacked (default :data:`DEFAULT_FOLDS` = 10; 1 on
a MICO index, whose head has seen every logged query but its own held-out ones): the random split
becomes 10 folds by query, so every logged query is validated once with the other 90% as knowledge
base, and the topic split 10 draws of held-out topic clusters (seeds ``seed`` .. ``seed + 9``). With
one draw, 55-119 held-out SciFact queries chose the weights, and the shifted cells of
``eval/routing/shift.py`` moved by up to 6 nDCG@10 points with the split's seed alone; with 10
draws by at most 1.3 (``eval/results/routing/seed-spread/``).

Both are always scored: :func:`tune_hybrid` reports every router's coverage AUC and the fused
weights' AUC on both splits side by side (``auc``), with the weights each split would choose
(``fits``); the chosen ones are those of ``validation``. The ``knn`` router's knowledge base is the
training part of the split only, so no validation query finds itself (or its topic).
:func:`tune_hybrid` scores every grid point of weights by coverage AUC
(:func:`~selectsearch.route.hybrid.fit_weights`);
:func:`~selectsearch.route.routing_file.write_routing` stores the winner as ``INDEX/routing.json``,
which ``hybrid@m`` reads when no ``routers``/``weights`` option is given (it reads ``routers``,
``weights`` and ``options``; the split reports are extra keys).

:func:`held_out_logs` (one split) and :func:`held_out_splits` (both) return the validation queries
with their (query, shard) pairs, the training records and the split's parameters: what another
component fits on the same held-out split (see :class:`HeldOutLogs`).

Example:
    >>> from selectsearch.index.sharded import ShardedIndex  # doctest: +SKIP
    >>> index = ShardedIndex.open("indexes/hd-mico16")  # doctest: +SKIP
    >>> tuned = tune_hybrid(index, "../shared/data/homedepot", "train",  # doctest: +SKIP
    ...                     ["mico", "cori", "taily", "knn"], validation="topics")
    >>> tuned["auc"]["random"]["hybrid"], tuned["auc"]["topics"]["hybrid"]  # doctest: +SKIP
    >>> write_routing(index.path, tuned)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch.errors import RouteSpecError, SelectSearchError
from selectsearch.route.hybrid import fit_weights, standardise
from selectsearch.route.routing_file import ROUTING_FILE, read_routing, stored_options, write_routing
from selectsearch.types import Query

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.encode import TextEncoder
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route.gating import Gating
    from selectsearch.route.ranker import ShardRanker

__all__ = ["DEFAULT_FOLDS", "ROUTING_FILE", "VALIDATIONS", "HeldOutLogs", "calibrate_fusion", "check_tuning_options",
           "default_folds", "held_out_logs", "held_out_splits", "read_routing", "score_held_out", "scoring_routers",
           "stored_options", "tune_hybrid", "write_routing"]

log = logging.getLogger(__name__)

#: the split of the logs when the index has no MICO model to read it from (MICO's defaults)
DEFAULT_SPLIT = {"val_fraction": 0.1, "seed": 0}
#: validation draws of each split stacked by ``tune-route`` on an index without a MICO model (module
#: docs): 10 random folds of 10% validate every logged query once
DEFAULT_FOLDS = 10
#: the validation splits (module docs); ``tune-route`` chooses weights on ``topics`` by default
VALIDATIONS = ("random", "topics")


@dataclass
class HeldOutLogs:
    """A validation split of the logs: what tuning, and anything fitted beside it, needs.

    Attributes:
        queries: the unique validation queries (ids ``val0``, ``val1``, ... in first-logged order)
            that have at least one document in the index.
        pair_query: ``(n_pairs,)`` row in ``queries`` of each validation pair whose document is in
            the index.
        pair_shard: ``(n_pairs,)`` the shard holding that pair's document.
        train_records: the training part of the logs, ``(query text, doc id, clicks)`` records
            (the ``knn`` knowledge base; documents outside the index included).
        validation: ``random`` or ``topics``.
        split: the split's parameters and sizes, JSON-able (``kind``, ``fraction``, ``seed``; for
            ``topics`` also ``by``, ``n_topics``, ``held_topics``, ``held_fraction``).
        pair_doc: doc id of each validation pair (aligned with ``pair_query``).
        pair_clicks: ``(n_pairs,)`` clicks of each validation pair (coverage weights).
        query_topic: ``(len(queries),)`` topic cluster of each validation query (``topics``), else None.
        topic_of_query: ``{query text: topic cluster}`` of every logged query (``topics``), else None.
        records: the whole log as read (``train_index`` and ``val_index`` index into it).
        train_index: record indices of the training part.
        val_index: record indices of the validation part (documents outside the index included).
        folds: for a split stacked from several folds (:func:`held_out_splits` with ``folds`` > 1),
            those folds, each with its own knowledge base (``train_records`` and the record
            indices are then empty); empty for one split.
    """

    queries: list[Query]
    pair_query: np.ndarray
    pair_shard: np.ndarray
    train_records: list[tuple[str, str, float]] = field(repr=False)
    validation: str = "random"
    split: dict[str, Any] = field(default_factory=dict)
    pair_doc: list[str] = field(default_factory=list, repr=False)
    pair_clicks: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    query_topic: np.ndarray | None = field(default=None, repr=False)
    topic_of_query: dict[str, int] | None = field(default=None, repr=False)
    records: list[tuple[str, str, float]] = field(default_factory=list, repr=False)
    train_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    val_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    folds: list[HeldOutLogs] = field(default_factory=list, repr=False)


def _mico_training(index: ShardedIndex) -> dict[str, Any]:
    """The training config of the index's MICO model (``{}`` for another partition)."""
    from selectsearch.index.manifest import PartitionSection

    part = index.manifest.partition or PartitionSection()
    model_config = index.path / "partition" / part.model_dir / "config.json"
    if part.kind == "mico" and model_config.is_file():
        training: dict[str, Any] = json.loads(model_config.read_text()).get("training", {})
        return training
    return {}


def held_out_logs(index: ShardedIndex, data: str | os.PathLike[str], logs: str, validation: str = "random", *,
                  fraction: float | None = None, seed: int | None = None, n_topics: int | None = None,
                  by: str = "embedding", encoder: TextEncoder | None = None,
                  records: Sequence[tuple[str, str, float]] | None = None,
                  random_seed: int | None = None, fold: int = 0, folds: int = 1) -> HeldOutLogs:
    """The logs' validation split (see the module docs).

    Args:
        validation: ``random`` (MICO's split by query, as it always was; the default here, so
            existing callers draw the same queries) or ``topics`` (whole topic clusters).
        fraction, seed, n_topics, by: the topic split's parameters (``topics`` only; default: the
            MICO model's topic split when it used one, else
            :data:`~selectsearch.mico.logs.TOPIC_FRACTION`, seed 0, automatic count, ``embedding``).
        encoder: the query encoder for clustering by embedding (default: packaged all-MiniLM-L6-v2).
        records: the log records when already read (else read from ``data``/``logs``).
        random_seed: the random split's seed (``random`` only; default: the MICO model's, else 0).
            Another seed draws other validation queries: how much a tuning depends on which
            queries were held out (``eval/routing/shift.py --tune-seed``). On a MICO index the
            head was trained on some of them, and a warning says so.
        fold, folds: with ``folds`` > 1, the ``fold``-th of ``folds`` validation draws: for
            ``random``, the queries are dealt into ``folds`` disjoint groups by a seeded
            permutation and group ``fold`` is held out (every logged query is validated once over
            the folds); for ``topics``, the topic split drawn with seed ``seed + fold``.

    Raises:
        RouteSpecError: unknown ``validation``, or no validation pair lands in the index.
        SelectSearchError: a topic split that cannot be drawn (too few queries or topics).
    """
    from selectsearch.mico.logs import TOPIC_FRACTION, read_log_records, split_by_query

    if validation not in VALIDATIONS:
        raise RouteSpecError(f"validation must be one of {', '.join(VALIDATIONS)}, got {validation!r}")
    recs = list(records) if records is not None else read_log_records(data, logs)
    rows: dict[str, int] = {}
    pair_query = np.asarray([rows.setdefault(text, len(rows)) for text, _, _ in recs], dtype=np.int64)
    texts = list(rows)
    shard_of = index.shard_of_doc
    training = _mico_training(index)
    labels: np.ndarray | None = None
    if validation == "random":
        config = dict(DEFAULT_SPLIT)
        config.update({k: v for k, v in training.items() if k in config})
        reseeded = False
        if random_seed is not None and int(random_seed) != int(config["seed"]):
            if training:
                log.warning("random split seed %d differs from the seed %d the index's MICO model held out with: "
                            "the MICO head was trained on some of the validation queries", random_seed, config["seed"])
            config["seed"], reseeded = int(random_seed), True
        if folds > 1:
            group = np.empty(len(rows), dtype=np.int64)
            group[np.random.default_rng(int(config["seed"])).permutation(len(rows))] = np.arange(len(rows)) % folds
            is_val = group[pair_query] == fold
            train, val = np.flatnonzero(~is_val), np.flatnonzero(is_val)
            if training:
                log.warning("validation fold %d of %d: the index's MICO head was trained on some of its queries",
                            fold, folds)
        else:
            train, val = split_by_query(pair_query, len(rows), float(config["val_fraction"]), int(config["seed"]))
        split: dict[str, Any] = {"kind": "random", "fraction": float(config["val_fraction"]) if folds == 1
                                 else 1.0 / folds, "seed": int(config["seed"]),
                                 "from_mico_model": bool(training) and not reseeded and folds == 1,
                                 **({"fold": fold, "folds": folds} if folds > 1 else {})}
    else:
        from selectsearch.route.shift import topic_split

        mico_topics = training.get("val_split") == "topics"
        defaults: dict[str, Any] = ({"fraction": float(training.get("val_fraction", TOPIC_FRACTION)),
                     "seed": int(training.get("seed", 0)), "n_topics": int(training.get("val_topics", 0)) or None}
                    if mico_topics else {"fraction": TOPIC_FRACTION, "seed": int(DEFAULT_SPLIT["seed"]),
                                         "n_topics": None})
        chosen: dict[str, Any] = {"fraction": fraction if fraction is not None else defaults["fraction"],
                  "seed": (seed if seed is not None else defaults["seed"]) + (fold if folds > 1 else 0),
                  "n_topics": n_topics if n_topics else defaults["n_topics"]}
        pair_shard_all = np.asarray([shard_of.get(doc, -1) for _, doc, _ in recs], dtype=np.int64)
        ts = topic_split(pair_query, texts, fraction=float(chosen["fraction"]), seed=int(chosen["seed"]),
                         n_topics=chosen["n_topics"], by=by, pair_shard=pair_shard_all, n_shards=index.n_shards,
                         encoder=encoder)
        # ... and no training pair names a document a validation query clicked: a new kind of query
        # also finds documents no logged query led to (both shifts of selectsearch.route.shift at
        # once). Only the knowledge base is cut so; a MICO head trained on the logs saw those pairs.
        val_docs = {recs[i][1] for i in ts.val.tolist()}
        train = np.asarray([i for i in ts.train.tolist() if recs[i][1] not in val_docs], dtype=np.int64)
        val = ts.val
        labels = ts.query_topic
        split = {**ts.summary(), "from_mico_model": mico_topics and chosen == defaults and by == "embedding",
                 "n_train_pairs": len(train), "n_train_pairs_dropped_val_docs": len(ts.train) - len(train),
                 **({"fold": fold, "folds": folds} if folds > 1 else {})}
        if training and not split["from_mico_model"]:
            n_val = len({int(pair_query[i]) for i in val.tolist()})
            if mico_topics:
                log.warning("this topic split differs from the one the index's MICO model held out (other fraction, "
                            "seed, topic count or clustering): the MICO head may have been trained on some of the %d "
                            "validation queries", n_val)
            else:
                mico_train, _ = split_by_query(pair_query, len(rows), float(training.get("val_fraction", 0.1)),
                                               int(training.get("seed", 0)))
                seen = len(set(pair_query[np.intersect1d(val, mico_train)].tolist()))
                split["mico_trained_on"] = seen
                log.warning("the index's MICO model was trained on %d of the %d topic-held-out validation queries "
                            "(it held out a random split): its topic AUC is optimistic; train it with --val-split "
                            "topics for a clean topic validation", seen, n_val)
    val_rows: dict[int, int] = {}
    pq, ps, docs, clicks = [], [], [], []
    for i in val.tolist():
        shard = shard_of.get(recs[i][1])
        if shard is not None:
            pq.append(val_rows.setdefault(int(pair_query[i]), len(val_rows)))
            ps.append(shard)
            docs.append(recs[i][1])
            clicks.append(float(recs[i][2]))
    if not pq:
        raise RouteSpecError(f"no held-out logged document of {logs!r} is in {index.path} ({validation} split); "
                             "nothing to tune on")
    order = sorted(val_rows.items(), key=lambda kv: kv[1])
    queries = [Query(f"val{j}", texts[q]) for q, j in order]
    split.update({"n_val_queries": len(queries), "n_val_pairs": len(pq)})
    return HeldOutLogs(queries, np.asarray(pq), np.asarray(ps), [recs[i] for i in train.tolist()],
                       validation=validation, split=split, pair_doc=docs, pair_clicks=np.asarray(clicks),
                       query_topic=None if labels is None else np.asarray([labels[q] for q, _ in order]),
                       topic_of_query=None if labels is None else dict(zip(texts, labels.tolist(), strict=True)),
                       records=recs, train_index=train, val_index=val)


def held_out_splits(index: ShardedIndex, data: str | os.PathLike[str], logs: str, *,
                    encoder: TextEncoder | None = None, random_seed: int | None = None, folds: int = 1,
                    **topic_options: Any) -> dict[str, HeldOutLogs | str]:
    """Both validation splits of the logs, ``{"random": ..., "topics": ...}`` (read once).

    A split that cannot be drawn (e.g. too few logged queries for two topics, or no validation
    document in the index) maps to the one-line reason instead.

    Args:
        random_seed: the random split's seed (:func:`held_out_logs`).
        folds: validation draws per split (:func:`held_out_logs`' ``fold``/``folds``), stacked
            into one :class:`HeldOutLogs` each (its ``folds``): more held-out queries choose the
            weights, so they depend less on which queries one draw happened to hold out.
        topic_options: ``fraction``, ``seed``, ``n_topics``, ``by`` of the topic split
            (:func:`held_out_logs`).
    """
    from selectsearch.mico.logs import read_log_records

    records = read_log_records(data, logs)
    out: dict[str, HeldOutLogs | str] = {}
    for kind in VALIDATIONS:
        own = topic_options if kind == "topics" else {"random_seed": random_seed}
        try:
            parts = [held_out_logs(index, data, logs, kind, encoder=encoder, records=records, fold=i, folds=folds,
                                   **own) for i in range(max(1, folds))]
        except SelectSearchError as exc:
            out[kind] = str(exc)
            continue
        out[kind] = parts[0] if len(parts) == 1 else _stacked(parts)
    return out


def _stacked(parts: Sequence[HeldOutLogs]) -> HeldOutLogs:
    """One validation split made of several folds: their queries and pairs one after another
    (query ids renumbered), each fold kept with its own knowledge base (``folds``)."""
    queries: list[Query] = []
    pair_query: list[np.ndarray] = []
    for part in parts:
        pair_query.append(part.pair_query + len(queries))
        queries += [Query(f"val{len(queries) + j}", q.text) for j, q in enumerate(part.queries)]
    topics = [p.query_topic for p in parts if p.query_topic is not None]
    first = parts[0]
    # the draw's parameters (fold 0's seed is the base seed), not one fold's sizes
    split = {k: v for k, v in first.split.items() if k in ("kind", "fraction", "seed", "by", "n_topics",
                                                           "from_mico_model", "folds")}
    split.update({"n_val_queries": len(queries), "n_val_pairs": int(sum(len(p.pair_query) for p in parts)),
                  "fold_val_queries": [len(p.queries) for p in parts]})
    return HeldOutLogs(queries, np.concatenate(pair_query), np.concatenate([p.pair_shard for p in parts]), [],
                       validation=first.validation, split=split,
                       pair_doc=[d for p in parts for d in p.pair_doc],
                       pair_clicks=np.concatenate([p.pair_clicks for p in parts]),
                       query_topic=np.concatenate(topics) if len(topics) == len(parts) else None,
                       records=first.records, folds=list(parts))


def score_held_out(index: ShardedIndex, names: Sequence[str], held: HeldOutLogs, options: dict[str, Any] | None, *,
                   encoder: TextEncoder | None = None, shared: dict[str, Any] | None = None
                   ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Every router's raw ``(n, K)`` scores of a split's validation queries, and their ``knn``
    familiarity (``None`` without a ``knn`` router); for a stacked split, each fold scored with
    its own knowledge base. ``shared`` collects the routers that do not depend on the split
    (reused across calls; :func:`scoring_routers`' ``built``)."""
    shared = shared if shared is not None else {}
    raws: list[dict[str, np.ndarray]] = []
    familiar: list[np.ndarray] = []
    for part in held.folds or [held]:
        built = scoring_routers(index, names, part.train_records, options, encoder=encoder, built=shared)
        shared.update({n: r for n, r in built.items() if n != "knn"})
        raws.append({n: np.asarray(built[n].scores(part.queries)) for n in names})
        if "knn" in built:
            familiar.append(np.asarray(built["knn"].familiarity()))
    if len(raws) == 1:
        return raws[0], familiar[0] if familiar else None
    return {n: np.vstack([r[n] for r in raws]) for n in names}, np.concatenate(familiar) if familiar else None


def scoring_routers(index: ShardedIndex, names: Sequence[str], train_records: Sequence[tuple[str, str, float]],
                    options: dict[str, Any] | None = None, *, encoder: TextEncoder | None = None,
                    built: dict[str, Any] | None = None) -> dict[str, Any]:
    """The named routers for ``index``; ``knn`` gets ``train_records`` as its knowledge base.

    Args:
        encoder: the ``knn`` query encoder when no ``knn.encoder`` option names another (default:
            :data:`~selectsearch.route.knn.DEFAULT_KNN_ENCODER`).
        built: routers already built for ``index`` (reused; ``knn`` is always rebuilt, its
            knowledge base depends on the split).

    Raises:
        RouteSpecError: an unknown router, or one without shard scores.
    """
    from selectsearch.route import make_router, options_for, parse_route
    from selectsearch.route.knn import knn_encoder, router_from_records

    options = options or {}
    check_tuning_options(names, options)
    routers: dict[str, Any] = {}
    for name in names:
        if name == "knn":
            own = options_for("knn", options)
            enc = knn_encoder(own["encoder"], index) if own.get("encoder") else (encoder or knn_encoder(None, index))
            routers[name] = router_from_records(train_records, index, enc, k=int(own.get("k", 100)),
                                                temperature=float(own.get("temperature", 0.1)))
        elif built is not None and name in built:
            routers[name] = built[name]
        else:
            routers[name] = make_router(parse_route(f"{name}@1"), index, **options_for(name, options))
        if not callable(getattr(routers[name], "scores", None)):
            raise RouteSpecError(f"router {name!r} has no shard scores and cannot be fused")
    return routers


def tune_hybrid(index: ShardedIndex, data: str | os.PathLike[str], logs: str, routers: Sequence[str], *,
                step: float = 0.1, options: dict[str, Any] | None = None, validation: str = "topics",
                topic_fraction: float | None = None, topic_seed: int | None = None, n_topics: int | None = None,
                topic_by: str = "embedding", random_seed: int | None = None,
                folds: int | None = None, ranker: bool = True) -> dict[str, Any]:
    """Weights of ``routers`` with the best coverage AUC on the ``validation`` split of the logs.

    Both splits are scored (module docs); the weights come from ``validation``. ``topic_*`` and
    ``random_seed`` draw the splits (:func:`held_out_logs`; by default, those ``tune-route`` uses);
    ``folds`` > 1 stacks that many draws of each (:func:`held_out_splits`; default
    :func:`default_folds`). With ``ranker`` (the default) a shard ranker
    (:mod:`selectsearch.route.ranker`) is fitted on both splits stacked and stored when it beats the
    gated fusion out of sample (``ranker_fit`` says how it did either way).
    When the topic split cannot be drawn (logs too small or too uniform for two topics), ``topics``
    falls back to ``random`` with a warning (``validation`` then says ``random``,
    ``validation_fallback`` why).

    Returns:
        a JSON-able dict. Keys read by ``hybrid@m``: ``routers``, ``weights``, ``options``. Also
        ``val_auc`` (the chosen weights' AUC on the ``validation`` split) and ``single_auc`` (each
        router's AUC there), ``n_val_queries``/``n_val_pairs`` of that split, and side by side:
        ``validation``; ``auc`` = ``{"random": {router: AUC, ..., "hybrid": AUC of the chosen
        weights}, "topics": {...}}``; ``fits`` = ``{split: {"weights", "auc"}}`` (what each split
        would choose); ``splits`` = ``{split: parameters and sizes}`` (a split that could not be
        drawn maps to ``{"error": reason}`` and is missing from ``auc`` and ``fits``).

    Raises:
        RouteSpecError: no router, an unknown ``validation``, or its split cannot be drawn.
    """
    from selectsearch.ranking import rank_by_scores
    from selectsearch.route import options_for
    from selectsearch.route.knn import DEFAULT_KNN_ENCODER, knn_encoder
    from selectsearch.selective_metrics import coverage_curve

    names = [n for n in routers if n]
    if not names:
        raise RouteSpecError("tune at least one router")
    if validation not in VALIDATIONS:
        raise RouteSpecError(f"validation must be one of {', '.join(VALIDATIONS)}, got {validation!r}")
    check_tuning_options(names, options or {})
    folds = default_folds(index) if folds is None else int(folds)
    if folds < 1:  # before the encoder, whose first use on an index builds it
        raise RouteSpecError(f"folds must be at least 1, got {folds}")
    own = options_for("knn", options or {}) if "knn" in names else {}
    # the knn router's own encoder also clusters the logs into topics: cheap with the default static
    # table, and "unlike the knowledge base" is judged in the space the router sees
    encoder = knn_encoder(own.get("encoder"), index)
    # tuning a large log takes minutes: each stage is a log line (stderr, with or without a terminal)
    started = time.perf_counter()
    log.info("tune-route: drawing %d validation fold%s of each split", folds, "s" if folds > 1 else "")
    splits = held_out_splits(index, data, logs, encoder=encoder, random_seed=random_seed, folds=folds,
                             fraction=topic_fraction, seed=topic_seed, n_topics=n_topics, by=topic_by)
    fallback = None
    if validation == "topics" and isinstance(splits["topics"], str) and not isinstance(splits["random"], str):
        # too few or too uniform logs for two topics: better the random split than no tuning
        fallback = splits["topics"]
        log.warning("no topic-held-out split of the logs (%s); choosing the weights on the random split", fallback)
        validation = "random"
    chosen_split = splits[validation]
    if isinstance(chosen_split, str):
        raise RouteSpecError(f"the {validation} validation split cannot be drawn: {chosen_split}")
    shared: dict[str, Any] = {}
    scores: dict[str, list[np.ndarray]] = {}
    raw: dict[str, dict[str, np.ndarray]] = {}
    familiarity: dict[str, np.ndarray] = {}
    fits: dict[str, dict[str, Any]] = {}
    for kind, held in splits.items():
        if isinstance(held, str):
            continue
        log.info("tune-route: %s split: scoring %s on %d validation queries (%d pairs) [%.0f s]", kind,
                 ", ".join(names), len(held.queries), len(held.pair_query), time.perf_counter() - started)
        raw[kind], familiar = score_held_out(index, names, held, options, encoder=encoder, shared=shared)
        scores[kind] = [standardise(raw[kind][n]) for n in names]
        if familiar is not None:  # how close each validation query is to its split's training logs
            familiarity[kind] = familiar
        w, auc, _ = fit_weights(scores[kind], held.pair_query, held.pair_shard, index.shard_sizes, step=step)
        fits[kind] = {"weights": [float(x) for x in w], "auc": float(auc)}
    weights = fits[validation]["weights"]
    auc_table: dict[str, dict[str, float]] = {}
    for kind, parts in scores.items():
        held = splits[kind]
        assert not isinstance(held, str)
        table = {n: coverage_curve(rank_by_scores(s), held.pair_query, held.pair_shard, index.shard_sizes).auc
                 for n, s in zip(names, parts, strict=True)}
        fused = np.asarray(sum(w * s for w, s in zip(weights, parts, strict=True)))
        table["hybrid"] = coverage_curve(rank_by_scores(fused), held.pair_query, held.pair_shard,
                                         index.shard_sizes).auc
        auc_table[kind] = {k: float(v) for k, v in table.items()}
    # paths are stored absolute, so the tuned index works from any working directory
    data_path = str(Path(data).expanduser().resolve())
    logs_value = str(Path(logs).expanduser().resolve()) if Path(logs).is_file() else str(logs)
    stored = {k: v for k, v in (options or {}).items() if k.partition(".")[0] in names}
    for key in ("knn.data", "knn.logs"):
        value = stored.get(key)
        if isinstance(value, str) and (key == "knn.data" or Path(value).is_file()):
            stored[key] = str(Path(value).expanduser().resolve())
    if "knn" in names:
        # the encoder is stored even when it is the default: the weights belong to it, and a
        # later default must not change what a tuned index routes with
        stored.setdefault("knn.encoder", DEFAULT_KNN_ENCODER)
        stored.setdefault("knn.logs", logs_value)
        if not Path(logs).is_file():
            stored.setdefault("knn.data", data_path)
    single = {n: auc_table[validation][n] for n in names}
    log.info("tune-route: fitting the per-query gate [%.0f s]", time.perf_counter() - started)
    gating, gating_report = _fit_gating(index, names, splits, scores, familiarity, fits, auc_table)
    learned: ShardRanker | None = None
    ranker_report: dict[str, Any] = {"kept": False, "why": "not asked for (--no-ranker)"}
    if ranker:
        log.info("tune-route: fitting the shard ranker [%.0f s]", time.perf_counter() - started)
        learned, ranker_report = _fit_ranker(index, names, gating, splits, scores, familiarity, validation, step)
    # per-query budgets (NAME@auto:T) read shard probabilities calibrated on held-out logged queries
    log.info("tune-route: calibrating shard probabilities for per-query budgets [%.0f s]",
             time.perf_counter() - started)
    calibration = calibrate_fusion(index, names, weights, gating, splits, raw, familiarity, validation,
                                   ranker=learned)
    log.info("tune-route: done [%.0f s]", time.perf_counter() - started)
    return {"router": "hybrid", "routers": names, "weights": weights, "val_auc": auc_table[validation]["hybrid"],
            "single_auc": single, "options": stored, "logs": logs_value, "data": data_path,
            "data_root_relative": _under_data_root(stored.get("knn.data", data_path)), "step": step,
            "n_val_queries": len(chosen_split.queries), "n_val_pairs": len(chosen_split.pair_query),
            "validation": validation, **({"validation_fallback": fallback} if fallback else {}),
            **({"folds": folds} if folds > 1 else {}),
            "auc": auc_table, "fits": fits, "calibration": calibration,
            **({"gating": {**gating.to_dict(), "fit": gating_report}} if gating is not None else {}),
            **({"gating_skipped": gating_report["skipped"]} if gating is None and gating_report else {}),
            **({"ranker": learned.to_dict()} if learned is not None else {}), "ranker_fit": ranker_report,
            "splits": {k: (v.split if not isinstance(v, str) else {"error": v}) for k, v in splits.items()}}


def default_folds(index: ShardedIndex) -> int:
    """Validation draws stacked by default (module docs): :data:`DEFAULT_FOLDS`, or 1 on a MICO
    index, whose query head was trained on every logged query but its own held-out split."""
    return 1 if _mico_training(index) else DEFAULT_FOLDS


def calibrate_fusion(index: ShardedIndex, names: Sequence[str], weights: Sequence[float], gating: Gating | None,
                     splits: Mapping[str, HeldOutLogs | str], raw: Mapping[str, Mapping[str, np.ndarray]],
                     familiarity: Mapping[str, np.ndarray], validation: str, *,
                     ranker: ShardRanker | None = None) -> dict[str, dict[str, Any]]:
    """The calibrations ``routing.json`` stores for per-query budgets (``NAME@auto``,
    :mod:`selectsearch.route.budget`): every router of ``raw[validation]`` on the ``validation``
    split, and the fusion (``"hybrid"``).

    A gated fusion is calibrated on both splits stacked, each query scored with the knowledge base
    of its own split, as the gate itself is fitted (:func:`_fit_gating`): the gated router meets
    familiar and unfamiliar queries alike, and its scores of a familiar query are sharper. Fitted on
    the topic split alone, the calibration under-rated the top shards of familiar queries and the
    per-query budget searched more shards than they needed (SciFact, ``eval/routing/shift.py``:
    ``hybrid@auto`` scored 0.286 of the documents for nDCG@10 0.6811 in distribution; calibrated
    on both splits, 0.247 for 0.6816). A fusion with one weight vector is calibrated on the
    ``validation`` split, where its weights were chosen. A shard ranker's scores are calibrated on
    the splits it was fitted on (both, or the one there is).

    Args:
        names, weights: the fused routers and the weights chosen.
        gating: the per-query gate, or ``None``.
        splits: :func:`held_out_splits`' output.
        raw: ``{split: {router: raw (n, K) scores of the split's queries}}``: ``validation``
            always, both splits with a gate.
        familiarity: ``{split: (n,) knn familiarity}`` (both splits with a gate).
        validation: the split the weights were chosen on.
    """
    from selectsearch.route.budget import calibrate_routers

    chosen = splits[validation]
    assert not isinstance(chosen, str)
    calibration = calibrate_routers(raw[validation], chosen.pair_query, chosen.pair_shard, index.shard_sizes)
    kinds: tuple[str, ...] = VALIDATIONS if gating is not None else (validation,)
    if ranker is not None:
        kinds = _ranker_kinds(splits, familiarity, ranker.uses_familiarity, validation)
    fused, pair_query, pair_shard, offset = [], [], [], 0
    for kind in kinds:
        held = splits[kind]
        assert not isinstance(held, str)
        parts = [standardise(raw[kind][n]) for n in names]
        if ranker is not None:
            fused.append(ranker.scores(parts, familiarity[kind] if ranker.uses_familiarity else None))
        elif gating is not None:
            fused.append(gating.fuse(parts, familiarity[kind]))
        else:
            fused.append(np.asarray(sum(w * s for w, s in zip(weights, parts, strict=True))))
        pair_query.append(held.pair_query + offset)
        pair_shard.append(held.pair_shard)
        offset += len(held.queries)
    calibration.update(calibrate_routers({"hybrid": np.vstack(fused)}, np.concatenate(pair_query),
                                         np.concatenate(pair_shard), index.shard_sizes, fusion=(names, weights),
                                         gating=gating.to_dict() if gating is not None else None,
                                         ranker=ranker.digest if ranker is not None else None))
    return calibration


def _ranker_kinds(splits: Mapping[str, HeldOutLogs | str], familiarity: Mapping[str, np.ndarray],
                  uses_familiarity: bool, validation: str) -> tuple[str, ...]:
    """The validation splits a shard ranker is fitted and calibrated on: both when both were
    drawn (and scored with familiarity when it reads it), else the chosen one."""
    both = all(not isinstance(splits.get(k), str) and k in splits for k in VALIDATIONS)
    if both and (not uses_familiarity or set(familiarity) >= set(VALIDATIONS)):
        return VALIDATIONS
    return (validation,)


def _fit_ranker(index: ShardedIndex, names: Sequence[str], gating: Gating | None,
                splits: Mapping[str, HeldOutLogs | str], scores: Mapping[str, list[np.ndarray]],
                familiarity: Mapping[str, np.ndarray], validation: str, step: float
                ) -> tuple[ShardRanker | None, dict[str, Any]]:
    """The shard ranker fitted on the stacked validation splits (:func:`_ranker_kinds`) against
    the bar of the fusion it would replace (the gated weights, else the tuned weights), both
    cross-validated on the same folds of the same queries; ``(None, report)`` when it does not
    beat it."""
    from selectsearch.route.ranker import CV_FOLDS, cv_folds, fit_ranker

    uses_familiarity = "knn" in names
    kinds = _ranker_kinds(splits, familiarity, uses_familiarity, validation)
    if uses_familiarity and not set(kinds) <= set(familiarity):
        return None, {"kept": False, "why": "no familiarity for the validation queries"}
    parts: list[list[np.ndarray]] = []
    fam: list[np.ndarray] = []
    pq: list[np.ndarray] = []
    ps: list[np.ndarray] = []
    texts: list[str] = []
    kind_of_row: list[np.ndarray] = []
    offset = 0
    for i, kind in enumerate(kinds):
        held = splits[kind]
        assert not isinstance(held, str)
        parts.append(scores[kind])
        kind_of_row.append(np.full(len(held.queries), i))
        if uses_familiarity:
            fam.append(familiarity[kind])
        pq.append(held.pair_query + offset)
        ps.append(held.pair_shard)
        texts += [q.text for q in held.queries]
        offset += len(held.queries)
    stacked = [np.vstack([p[r] for p in parts]) for r in range(len(names))]
    familiar = np.concatenate(fam) if uses_familiarity else None
    pair_query, pair_shard = np.concatenate(pq), np.concatenate(ps)
    log.info("tune-route: cross-validating the weighted fusion on %d folds of %d validation queries, to compare "
             "the shard ranker with", CV_FOLDS, len(texts))
    baseline = _cross_validated_fusion(index, names, kinds, validation, gating is not None, stacked, familiar,
                                       pair_query, pair_shard, np.concatenate(kind_of_row), cv_folds(texts), step)
    ranker, report = fit_ranker(names, stacked, familiar, pair_query, pair_shard, index.shard_sizes, texts,
                                baseline=baseline)
    report.update(splits=list(kinds), baseline="gated weights" if gating is not None else "weights")
    if ranker is None:
        log.info("tune-route: no shard ranker: %s", report.get("why"))
        return None, report
    # the stored ranker carries its report: recalibrating the index reads the splits it was fitted on
    return replace(ranker, fit=dict(report)), report


def _cross_validated_fusion(index: ShardedIndex, names: Sequence[str], kinds: Sequence[str], validation: str,
                            gated: bool, parts: Sequence[np.ndarray], familiarity: np.ndarray | None,
                            pair_query: np.ndarray, pair_shard: np.ndarray, row_kind: np.ndarray, fold: np.ndarray,
                            step: float) -> np.ndarray:
    """``(n, K)`` out-of-fold scores of the weighted fusion on stacked validation rows: for each
    fold, the weights are chosen again on the other folds' rows of each split (as
    :func:`tune_hybrid` chooses them on the whole split) and, for a gated fusion, the gate is fitted
    again on those rows of both splits stacked; the fold's rows are then fused with them."""
    from selectsearch.route.gating import fit_gating

    out = np.zeros(parts[0].shape)

    def rows_pairs(rows: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """The parts of ``rows`` (a boolean mask) and their pairs, renumbered."""
        new = np.cumsum(rows) - 1
        keep = rows[pair_query]
        return [p[rows] for p in parts], new[pair_query[keep]], pair_shard[keep]

    for h in range(int(fold.max()) + 1 if len(fold) else 0):
        train = fold != h
        fitted: dict[str, list[float]] = {}
        for i, kind in enumerate(kinds):
            sub, pq, ps = rows_pairs(train & (row_kind == i))
            if len(pq):
                fitted[kind] = [float(x) for x in fit_weights(sub, pq, ps, index.shard_sizes, step=step)[0]]
        held = fold == h
        chosen = fitted.get(validation) or next(iter(fitted.values()), [1.0 / len(names)] * len(names))
        if gated and familiarity is not None and set(fitted) >= set(VALIDATIONS):
            sub, pq, ps = rows_pairs(train)
            gate, _ = fit_gating(names, fitted["random"], fitted["topics"], sub, familiarity[train], pq, ps,
                                 index.shard_sizes)
            out[held] = gate.fuse([p[held] for p in parts], familiarity[held])
        else:
            out[held] = np.asarray(sum(w * p[held] for w, p in zip(chosen, parts, strict=True)))
    return out


def _fit_gating(index: ShardedIndex, names: Sequence[str], splits: dict[str, HeldOutLogs | str],
                scores: dict[str, list[np.ndarray]], familiarity: dict[str, np.ndarray],
                fits: dict[str, dict[str, Any]], auc_table: dict[str, dict[str, float]]
                ) -> tuple[Gating | None, dict[str, Any]]:
    """The per-query gating (:mod:`selectsearch.route.gating`) fitted on both splits stacked, and
    its report; ``(None, {"skipped": why})`` when it cannot be fitted (no ``knn`` router, whose
    familiarity the gate reads, or a split missing). Adds each split's gated AUC to ``auc_table``
    (``"hybrid_gated"``)."""
    from selectsearch.ranking import rank_by_scores
    from selectsearch.route.gating import fit_gating
    from selectsearch.selective_metrics import coverage_curve

    if "knn" not in names:
        return None, {"skipped": "no knn router among the fused ones (the gate reads its query familiarity)"}
    if set(familiarity) != set(VALIDATIONS):
        return None, {"skipped": "the gate is fitted on both validation splits; one could not be drawn"}
    parts, fam, pq, ps = [], [], [], []
    offset = 0
    for kind in VALIDATIONS:
        held = splits[kind]
        assert not isinstance(held, str)
        parts.append(scores[kind])
        fam.append(familiarity[kind])
        pq.append(held.pair_query + offset)
        ps.append(held.pair_shard)
        offset += len(held.queries)
    stacked = [np.vstack([p[r] for p in parts]) for r in range(len(names))]
    gate, report = fit_gating(names, fits["random"]["weights"], fits["topics"]["weights"], stacked,
                              np.concatenate(fam), np.concatenate(pq), np.concatenate(ps), index.shard_sizes)
    for kind in VALIDATIONS:
        held = splits[kind]
        assert not isinstance(held, str)
        fused = gate.fuse(scores[kind], familiarity[kind])
        auc_table[kind]["hybrid_gated"] = float(coverage_curve(rank_by_scores(fused), held.pair_query,
                                                               held.pair_shard, index.shard_sizes).auc)
        report[f"familiar_share_{kind}"] = float(gate.gate(familiarity[kind]).mean())
    return gate, report


def _under_data_root(path: object) -> str | None:
    """``path`` relative to the data folder (``$SELECTSEARCH_DATA`` or the default), if inside it."""
    from selectsearch.data import resolve_data_dir

    try:
        return Path(str(path)).resolve().relative_to(resolve_data_dir(must_exist=False)).as_posix()
    except ValueError:
        return None


def check_tuning_options(names: Sequence[str], options: dict[str, Any]) -> None:
    """Refuse an option that is not ``ROUTER.KEY`` for one of the tuned routers ``names``, or a
    ``KEY`` that router does not take (the message names the valid ones).

    Raises:
        RouteSpecError: a bad option.
    """
    from selectsearch.route import _check_key

    for key in options:
        head, dot, rest = key.partition(".")
        if not dot or head not in names:
            raise RouteSpecError(f"router option {key!r}: write ROUTER.KEY=VALUE for one of the tuned routers "
                                 f"({', '.join(names)})")
        _check_key(head, rest, key)
