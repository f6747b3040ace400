"""A learned shard ranker over the fused routers' evidence: ``hybrid@m``'s fusion when tuned.

The linear fusion of :mod:`selectsearch.route.hybrid` weighs each router's standardised shard
scores by one weight per router, and the gate of :mod:`selectsearch.route.gating` moves between
two such weight vectors by the query's familiarity. Both are blind to *where* in a router's
ranking the evidence lies: a router whose first shard is reliable and whose later shards are noise
gets one weight at every depth, and a score's meaning cannot depend on the shard's size. A small
network that reads,
for every (query, shard), each router's standardised score and the log of its rank position,
the log of the shard's relative size and the query's familiarity (when ``knn`` is fused) can
learn such rules; its output is the shard's score, and shards are searched best first.

Fitted by ``tune-route`` on the same held-out logged queries as the weights and the gate (both
validation splits stacked, each query scored with the knowledge base of its own split, so it sees
familiar queries, new topics and unlogged documents), with a pairwise loss that matches the
coverage AUC the rest of the tuning optimises: for every query, every pair of shards ``(a, b)``
where ``a`` holds more of the query's held-out clicked documents than ``b`` adds
``softplus(f(b) - f(a))``, weighted by the difference in held-out documents and by ``b``'s size
(ranking a large shard too high costs more documents scored). Training runs on the project's
training kernel (:class:`~selectsearch.train.loop.Trainer`); inference is numpy.

Kept only when it earns its place: ``tune-route`` cross-validates it (5 folds by query text: fit
on four, score the fifth) and does the same for the fusion it would replace (the weights chosen on
each split and the gate refitted on the four folds, the fifth fused with them), and stores the
ranker only if its out-of-sample coverage AUC is higher by more than the standard error of the
difference (bootstrap over the validation queries): the one-standard-error rule, which keeps the
simpler model when the two are indistinguishable on the logs. Otherwise ``routing.json`` says why
and the weighted fusion stays. ``hybrid.ranker=off`` ignores a stored ranker.

Measured (``eval/results/routing/``, 16 k-means shards): kept on Home Depot's new-topics logs, where
its nDCG@10 at equal documents beats CORI's at 1 and 2 shards (+0.4 and +0.8 points; the gated
fusion: -4.5 against Taily's one shard, and -0.1), although its test coverage AUC (85.1) is below
the gated fusion's (85.5) and CORI's (85.6); and, with Taily fused, on its full logs
(``budget-homedepot.md``: 97% of exhaustive nDCG@10 at 33% of the documents against 54%). Not
kept on SciFact's logs, where the gated fusion was as good.

Example:
    >>> parts = [np.array([[1.0, -1.0]]), np.array([[-1.0, 1.0]])]
    >>> shard_features(parts, np.array([0.5]), np.zeros(2)).shape
    (1, 2, 6)
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from selectsearch.errors import RouteSpecError
from selectsearch.train.arguments import TrainingArguments
from selectsearch.train.epochs import PermutationEpochs
from selectsearch.train.loop import Trainer
from selectsearch.train.schedule import lr_scheduler

#: cross-validation folds (by query text) that decide whether a ranker is kept
CV_FOLDS = 5
#: bootstrap resamples of the validation queries for the standard error of the AUC gain
BOOTSTRAP_RESAMPLES = 200

__all__ = ["BOOTSTRAP_RESAMPLES", "CV_FOLDS", "RANKER_TRAINING", "RankerConfig", "RankerTraining", "ShardRanker",
           "auc_difference_se", "cv_folds", "fit_ranker", "shard_features", "train_ranker"]

log = logging.getLogger(__name__)


def shard_features(parts: Sequence[np.ndarray], familiarity: np.ndarray | None, log_size: np.ndarray) -> np.ndarray:
    """``(n, K, F)`` features of every (query, shard): per router its standardised score and
    ``log(1 + rank position)`` (0 for its best shard; ties in stable order), then the shard's
    ``log(size / mean size)`` and, when given, the query's familiarity.

    Args:
        parts: each router's standardised ``(n, K)`` scores (:func:`~selectsearch.route.hybrid.standardise`).
        familiarity: ``(n,)`` the ``knn`` router's familiarity, or ``None`` (no column).
        log_size: ``(K,)`` log relative shard sizes.
    """
    n, k = parts[0].shape
    # filled in place, one column at a time: this runs for every routed query (tens of µs saved)
    out = np.empty((n, k, 2 * len(parts) + 1 + int(familiarity is not None)))
    rows = np.arange(n)[:, None]
    log_positions = np.log1p(np.arange(k, dtype=np.float64))
    for j, z in enumerate(parts):
        out[:, :, 2 * j] = z
        out[rows, np.argsort(-np.asarray(z), axis=1, kind="stable"), 2 * j + 1] = log_positions
    out[:, :, 2 * len(parts)] = log_size
    if familiarity is not None:
        out[:, :, -1] = np.asarray(familiarity, dtype=np.float64)[:, None]
    return out


@dataclass(frozen=True, eq=False)
class ShardRanker:
    """A fitted shard ranker (module docs): ``(n, K)`` shard scores from the routers' evidence.

    Attributes:
        routers: the fused routers, in the order of their parts.
        log_size: ``(K,)`` log relative sizes of the index's shards (a feature).
        layers: ``[(W, b), ...]``: ``W`` ``(in, out)``, ``b`` ``(out,)``; ReLU between layers, the
            last layer's single output is the score.
        uses_familiarity: whether the ``knn`` router's familiarity is a feature.
        fit: what the fit reported (JSON-able; not used for scoring).
    """

    routers: list[str]
    log_size: np.ndarray
    layers: list[tuple[np.ndarray, np.ndarray]]
    uses_familiarity: bool
    fit: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        features = 2 * len(self.routers) + 1 + int(self.uses_familiarity)
        if not self.layers or self.layers[0][0].shape[0] != features or self.layers[-1][0].shape[1] != 1:
            raise RouteSpecError(f"the shard ranker's layers do not fit {features} features and one score")
        for (w, b), (nxt, _) in zip(self.layers, [*self.layers[1:], (None, None)], strict=True):
            if b.shape != (w.shape[1],) or (nxt is not None and nxt.shape[0] != w.shape[1]):
                raise RouteSpecError("the shard ranker's layer shapes do not chain")

    def scores(self, parts: Sequence[np.ndarray], familiarity: np.ndarray | None) -> np.ndarray:
        """``(n, K)`` shard scores from the routers' standardised parts (router order)."""
        if len(parts) != len(self.routers):
            raise RouteSpecError(f"the shard ranker reads {len(self.routers)} routers, got {len(parts)} parts")
        if parts[0].shape[1] != len(self.log_size):
            raise RouteSpecError(f"the shard ranker was fitted for {len(self.log_size)} shards, "
                                 f"not {parts[0].shape[1]}")
        if self.uses_familiarity and familiarity is None:
            raise RouteSpecError("the shard ranker reads the knn router's familiarity, which is missing")
        h = shard_features(parts, familiarity if self.uses_familiarity else None, self.log_size)
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        out: np.ndarray = h[:, :, 0]
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able parameters (what ``routing.json`` stores under ``"ranker"``)."""
        return {"routers": list(self.routers), "log_size": self.log_size.tolist(),
                "layers": [{"weight": w.tolist(), "bias": b.tolist()} for w, b in self.layers],
                "uses_familiarity": self.uses_familiarity, "fit": self.fit}

    def __eq__(self, other: object) -> bool:
        """Equal parameters (the fit report aside)."""
        return isinstance(other, ShardRanker) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    @cached_property
    def digest(self) -> str:
        """A fingerprint of the parameters (a calibration of this ranker's scores records it)."""
        params = {k: v for k, v in self.to_dict().items() if k != "fit"}
        return "sha256:" + hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShardRanker:
        """The ranker stored by :meth:`to_dict`.

        Raises:
            RouteSpecError: missing or malformed parameters.
        """
        try:
            layers = [(np.asarray(layer["weight"], dtype=np.float64), np.asarray(layer["bias"], dtype=np.float64))
                      for layer in data["layers"]]
            return cls(routers=[str(r) for r in data["routers"]],
                       log_size=np.asarray(data["log_size"], dtype=np.float64), layers=layers,
                       uses_familiarity=bool(data["uses_familiarity"]), fit=dict(data.get("fit", {})))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise RouteSpecError(f"malformed shard ranker in routing.json: {exc!r}") from exc


#: the fields of :data:`RANKER_TRAINING` the ranker reads (reported with each fit)
_TRAINING_FIELDS = ("epochs", "batch_size", "learning_rate", "weight_decay", "seed")
#: how the ranker trains, in the project's one training vocabulary: Adam (its L2 ``weight_decay``),
#: a constant learning rate, no gradient clipping
RANKER_TRAINING = TrainingArguments(epochs=40, batch_size=512, learning_rate=3e-3, weight_decay=1e-4,
                                    max_grad_norm=0.0, seed=0)


@dataclass(frozen=True)
class RankerConfig:
    """How :func:`train_ranker` fits a ranker.

    Attributes:
        hidden: units of each of the two hidden layers.
        training: epochs, batch size (queries per step), learning rate, weight decay and seed
            (:class:`~selectsearch.train.arguments.TrainingArguments`; the rest is unused).
    """

    hidden: int = 32
    training: TrainingArguments = RANKER_TRAINING


def cv_folds(texts: Sequence[str]) -> np.ndarray:
    """``(n,)`` cross-validation fold (0 .. :data:`CV_FOLDS` - 1) of each row, from a hash of its
    query text: a query drawn in several validation draws stays in one fold, and the fusion it is
    compared with is cross-validated on the same folds."""
    return np.asarray([int(hashlib.sha256(t.encode()).hexdigest()[:8], 16) % CV_FOLDS for t in texts], dtype=np.int64)


def _pair_targets(pair_query: np.ndarray, pair_shard: np.ndarray, n_queries: int, n_shards: int) -> np.ndarray:
    """``(n, K)`` held-out pairs per (query, shard)."""
    target = np.zeros((n_queries, n_shards))
    np.add.at(target, (np.asarray(pair_query), np.asarray(pair_shard)), 1.0)
    return target


def train_ranker(features: np.ndarray, targets: np.ndarray, shard_sizes: np.ndarray,
                 config: RankerConfig = RankerConfig()) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[float]]:
    """Fit the network on ``(n, K, F)`` features and ``(n, K)`` held-out pair counts (module docs'
    pairwise loss) with the training kernel; returns the layers (numpy) and the loss per epoch."""
    import torch

    method = RankerTraining(features, targets, shard_sizes, config)
    total = max(1, int(config.training.epochs * len(method.starts)))
    args = replace(config.training, max_steps=total, epochs=0.0)
    state = Trainer(method, args, total_steps=total).train()
    with torch.no_grad():
        linears = [m for m in method.net if isinstance(m, torch.nn.Linear)]
        layers = [(m.weight.detach().double().numpy().T.copy(), m.bias.detach().double().numpy().copy())
                  for m in linears]
    return layers, [float(r["loss"]) for r in state.history]


class RankerTraining(PermutationEpochs):
    """The ranker's method for the training kernel: seeded batches of queries, the pairwise loss
    of the module docs, one validation record (the epoch's mean loss) per epoch."""

    name = "shard-ranker"

    def __init__(self, features: np.ndarray, targets: np.ndarray, shard_sizes: np.ndarray,
                 config: RankerConfig) -> None:
        import torch

        args = config.training
        torch.manual_seed(args.seed)
        self.x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        self.t = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
        sizes = np.asarray(shard_sizes, dtype=np.float64)
        self.size = torch.from_numpy((sizes / sizes.sum()).astype(np.float32))
        f = self.x.shape[2]
        self.net = torch.nn.Sequential(torch.nn.Linear(f, config.hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(config.hidden, config.hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(config.hidden, 1))
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=args.learning_rate,
                                          weight_decay=args.weight_decay)
        self.scheduler = lr_scheduler(self.optimizer, 0, 1, decay="constant")
        self.init_epochs(len(self.x), max(1, min(args.batch_size, len(self.x))), args.seed)

    def compute_loss(self, batch: Any) -> tuple[Any, dict[str, Any]]:
        import torch

        s = self.net(self.x[batch]).squeeze(-1)
        t = self.t[batch]
        # pairs (a, b) where a holds more held-out pairs than b; ranking b above a costs b's documents
        weight = (t[:, :, None] - t[:, None, :]).clamp(min=0) * self.size[None, None, :]
        wrong = torch.nn.functional.softplus(s[:, None, :] - s[:, :, None])
        loss = (wrong * weight).sum() / weight.sum().clamp(min=1e-12)
        return loss, self.track(loss)


def auc_difference_se(better: np.ndarray, worse: np.ndarray, pair_query: np.ndarray, pair_shard: np.ndarray,
                      shard_sizes: np.ndarray, groups: np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES,
                      seed: int = 0) -> float:
    """Bootstrap standard error of ``AUC(better) - AUC(worse)`` (coverage AUC, two ``(n, K)`` score
    tables of the same rows), resampling whole groups of rows (``groups``: a label per row; rows of
    one query text move together) with replacement."""
    from selectsearch.ranking import rank_by_scores
    from selectsearch.selective_metrics import coverage_curve

    rank_a, rank_b = rank_by_scores(better), rank_by_scores(worse)
    order = np.argsort(pair_query, kind="stable")
    pair_shard_sorted = np.asarray(pair_shard)[order]
    counts = np.bincount(pair_query, minlength=len(better))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    labels, group_of_row = np.unique(groups, return_inverse=True)
    rows_of_group = [np.flatnonzero(group_of_row == g) for g in range(len(labels))]
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(resamples):
        rows = np.concatenate([rows_of_group[g] for g in rng.integers(0, len(labels), len(labels))])
        rows = rows[counts[rows] > 0]
        if not len(rows):
            continue
        n_pairs = counts[rows]
        pq = np.repeat(np.arange(len(rows)), n_pairs)
        first = np.repeat(starts[rows] - np.cumsum(n_pairs) + n_pairs, n_pairs)
        ps = pair_shard_sorted[first + np.arange(len(pq))]
        diffs.append(coverage_curve(rank_a[rows], pq, ps, shard_sizes).auc
                     - coverage_curve(rank_b[rows], pq, ps, shard_sizes).auc)
    return float(np.std(diffs, ddof=1)) if len(diffs) > 1 else float("inf")


def fit_ranker(routers: Sequence[str], parts: Sequence[np.ndarray], familiarity: np.ndarray | None,
               pair_query: np.ndarray, pair_shard: np.ndarray, shard_sizes: np.ndarray, texts: Sequence[str], *,
               baseline: np.ndarray, config: RankerConfig = RankerConfig()
               ) -> tuple[ShardRanker | None, dict[str, Any]]:
    """The shard ranker for stacked validation queries, if it beats the weighted fusion (module docs).

    Args:
        routers: the fused routers.
        parts: standardised ``(n, K)`` scores of each router on the stacked validation queries.
        familiarity: ``(n,)`` their familiarity (``None`` without a ``knn`` router).
        pair_query, pair_shard: held-out (query row, shard) pairs.
        shard_sizes: ``(K,)`` documents per shard.
        texts: each row's query text (the cross-validation folds split by text, so a query drawn
            in several validation draws stays in one fold).
        baseline: ``(n, K)`` scores of the fusion the ranker must beat, cross-validated on the same
            folds (:func:`cv_folds`).

    Returns:
        ``(ranker or None, report)``: ``cv_auc`` (out of sample, :data:`CV_FOLDS` folds),
        ``baseline_auc``, ``se`` (bootstrap standard error of their difference), ``kept`` and, when
        kept, ``fit_auc`` (the final ranker on all rows), else ``why``.
    """
    from selectsearch.ranking import rank_by_scores
    from selectsearch.selective_metrics import coverage_curve

    sizes = np.asarray(shard_sizes, dtype=np.float64)
    log_size = np.log(sizes.clip(min=1.0) / sizes.clip(min=1.0).mean())
    n, k = parts[0].shape
    features = shard_features(parts, familiarity, log_size)
    targets = _pair_targets(pair_query, pair_shard, n, k)
    fold = cv_folds(texts)
    out_of_fold = np.zeros((n, k))
    cv_done = len(set(fold.tolist())) == CV_FOLDS
    started = time.perf_counter()
    for h in range(CV_FOLDS) if cv_done else ():
        log.info("shard ranker: training on cross-validation fold %d of %d (%d validation rows) [%.0f s]",
                 h + 1, CV_FOLDS, int((fold != h).sum()), time.perf_counter() - started)
        train, test = fold != h, fold == h
        layers, _ = train_ranker(features[train], targets[train], sizes, config)
        ranker = ShardRanker(list(routers), log_size, layers, familiarity is not None)
        sub = [p[test] for p in parts]
        out_of_fold[test] = ranker.scores(sub, None if familiarity is None else familiarity[test])

    def auc(scores: np.ndarray) -> float:
        return float(coverage_curve(rank_by_scores(scores), pair_query, pair_shard, sizes).auc)

    report: dict[str, Any] = {"baseline_auc": auc(baseline), "n_queries": n, "n_pairs": len(pair_query),
                              "config": {"hidden": config.hidden, **{k: v for k, v in asdict(config.training).items()
                                                                    if k in _TRAINING_FIELDS}}}
    if not cv_done:
        report.update(kept=False, why=f"too few distinct validation queries for {CV_FOLDS} folds")
        return None, report
    report["cv_auc"] = auc(out_of_fold)
    gain = report["cv_auc"] - report["baseline_auc"]
    report["se"] = auc_difference_se(out_of_fold, baseline, pair_query, pair_shard, sizes, np.asarray(texts))
    if not gain > report["se"]:
        report.update(kept=False, why=f"cross-validated coverage AUC {report['cv_auc']:.2f} against the weighted "
                                      f"fusion's {report['baseline_auc']:.2f}: a gain of {gain:+.2f}, not above "
                                      f"its standard error {report['se']:.2f}")
        return None, report
    log.info("shard ranker: kept (a gain of %+.2f AUC, standard error %.2f); training it on all %d queries [%.0f s]",
             gain, report["se"], n, time.perf_counter() - started)
    layers, losses = train_ranker(features, targets, sizes, config)
    final = ShardRanker(list(routers), log_size, layers, familiarity is not None)
    report.update(kept=True, fit_auc=auc(final.scores(parts, familiarity)), final_loss=losses[-1] if losses else None)
    return ShardRanker(final.routers, final.log_size, final.layers, final.uses_familiarity, fit=report), report
