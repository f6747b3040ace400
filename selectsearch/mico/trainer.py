"""MICO training: its heads, batches and loss, run by the training kernel (:mod:`selectsearch.train`).

Each step takes a batch of log pairs, (1) fits the marginal ``r`` to the batch marginal of the
document head with its own Adam step, (2) minimises ``H(p, q) - beta * CE(pbar, r)`` over the
heads (and the encoder in ``full`` mode) with Adam, linear warm-up then constant, gradient
clipping. Validation AUC on held-out logged queries selects the model; the starting point (the
k-means solution when ``init="kmeans"``) is validated too, so training is kept only when it
improves the validation AUC. The kernel stops early, checkpoints after every validation
(``checkpoint.pt`` + ``state.json``) and resumes from there to the same result.

Example:
    >>> from selectsearch.mico.logs import load_log_pairs
    >>> pairs = load_log_pairs(["../shared/data/scifact"], "train")  # doctest: +SKIP
    >>> result = train_mico(pairs, MicoConfig(n_clusters=16), corpus_vectors=vectors,  # doctest: +SKIP
    ...                     out="models/sf-mico16")
    >>> round(result.best_auc, 1)  # doctest: +SKIP
    80.3
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selectsearch.atomic import recover_replaced
from selectsearch.cluster import sample_rows, spherical_kmeans
from selectsearch.errors import ModelError
from selectsearch.mico.config import MicoConfig
from selectsearch.mico.features import EncoderFeatures, FrozenFeatures, embed_queries, encoder_arg
from selectsearch.mico.heads import ClusterHead, Marginal, auto_scale
from selectsearch.mico.logs import LogPairs, split_by_query
from selectsearch.mico.loss import batch_marginal, mico_loss
from selectsearch.mico.model import FORMAT as MODEL_FORMAT
from selectsearch.mico.model import save_model
from selectsearch.mico.validation import argmax_in_chunks, routing_curve
from selectsearch.models.encoder import DEFAULT_ENCODER
from selectsearch.models.folder import model_folder
from selectsearch.train.callbacks import ProgressCallback, TrainerCallback, TrainState
from selectsearch.train.checkpoint import CheckpointFiles
from selectsearch.train.loop import CheckpointPlan, Trainer, TrainingMethod
from selectsearch.train.schedule import lr_scheduler, seed_everything

__all__ = ["CHECKPOINT_FILES", "MicoTraining", "TrainResult", "check_model_out", "checkpoint_summary",
           "split_by_query", "train_mico"]

log = logging.getLogger(__name__)

#: MICO's checkpoint folder: ``checkpoint.pt`` (tensors) + ``state.json`` (progress), as it always was
CHECKPOINT_FILES = CheckpointFiles(tensors="checkpoint.pt", state="state.json")


@dataclass
class TrainResult:
    """What a run produced."""

    config: MicoConfig
    state: TrainState
    initial_auc: float
    best_auc: float
    wall_seconds: float
    out: Path | None
    doc_head: Any = None
    query_head: Any = None


class MicoTraining(TrainingMethod):
    """MICO for the training kernel: the heads (and encoder), the log-pair batches, the loss.

    Each epoch's batches are a seeded permutation of the training pairs (:func:`_batches_of_epoch`),
    so the position ``(epoch, batch)`` is all a checkpoint needs to continue identically.
    Validation AUC selects the best weights (the starting point included).
    """

    metric_for_best_model = "val_auc"

    def __init__(self, pairs: LogPairs, config: MicoConfig, corpus_vectors: np.ndarray | None,
                 cache_dir: str | os.PathLike[str] | None, progress: bool, started: float | None = None) -> None:
        from selectsearch.encode import TextEncoder

        self.name = f"mico-{config.mode}"
        self.started = time.perf_counter() if started is None else started
        self.pairs = pairs
        self.config = config
        self.corpus_vectors = corpus_vectors
        self.text_encoder = TextEncoder(encoder_arg(config.encoder), max_length=config.max_length)
        if config.val_split == "topics":
            self.train_idx, self.val_idx = _topic_split(pairs, config, self.text_encoder, cache_dir, progress)
        else:
            self.train_idx, self.val_idx = split_by_query(pairs.pair_query, len(pairs.query_texts),
                                                          config.val_fraction, config.seed)
        self.dim = self.text_encoder.dim
        k = config.n_clusters
        seed_everything(config.seed)
        self.init_scale = 0.0
        self.doc_head = ClusterHead(self.dim, k)
        self.query_head = ClusterHead(self.dim, k)
        self.marginal = Marginal(k, lr=config.marginal_learning_rate)
        if config.init == "kmeans":
            if corpus_vectors is None:
                raise ModelError("init='kmeans' needs the corpus embeddings; pass corpus_vectors or use init='random'")
            sample = np.asarray(corpus_vectors[sample_rows(len(corpus_vectors), config.kmeans_sample, config.seed)])
            centroids = spherical_kmeans(sample, k, seed=config.seed)
            self.init_scale = config.init_scale or auto_scale(sample, centroids)
            self.doc_head.init_from_centroids(centroids, self.init_scale)
            self.query_head.init_from_centroids(centroids, self.init_scale)
        elif config.init == "model":
            self.init_scale = self._warm_start(config)
        self.features: FrozenFeatures | EncoderFeatures
        if config.mode == "frozen":
            if corpus_vectors is None:
                raise ModelError("frozen mode needs the corpus embeddings (corpus_vectors)")
            queries = embed_queries(pairs.query_texts, pairs.query_fingerprint(), self.text_encoder, cache_dir,
                                    progress=progress)
            self.features = FrozenFeatures(np.asarray(corpus_vectors[pairs.doc_positions]), queries)
        else:
            self.text_encoder.model.train()
            self.features = EncoderFeatures(self.text_encoder.tokenizer, self.text_encoder.model, pairs.doc_texts,
                                            pairs.query_texts, config.max_length)
        groups: list[dict[str, Any]] = [
            {"params": [*self.doc_head.parameters(), *self.query_head.parameters()],
             "lr": config.head_learning_rate}]
        if config.mode == "full":
            groups.append({"params": self.features.parameters(), "lr": config.learning_rate})
        self.optimizer = torch.optim.Adam(groups)
        self.steps_per_epoch = len(_batches_of_epoch(len(self.train_idx), config.batch_size, config.seed, 0))
        self.total_steps = config.total_steps(self.steps_per_epoch) if self.steps_per_epoch else 0
        self.scheduler = lr_scheduler(self.optimizer, config.warmup_before_peak(self.total_steps), self.total_steps,
                                      decay="constant")
        self.epoch_index = 0
        self.batch_in_epoch = 0
        self._batches = _batches_of_epoch(len(self.train_idx), config.batch_size, config.seed, 0)
        self.running: dict[str, float] = {}

    def _warm_start(self, config: MicoConfig) -> float:
        """Copy heads and marginal from the ``init_model`` folder; returns its logit scale."""
        from safetensors.torch import load_file

        from selectsearch.mico.model import MicoModelFolder

        init = MicoModelFolder(config.init_model)
        if init.n_clusters != config.n_clusters or int(init.config["dim"]) != self.dim:
            raise ModelError(f"--init-model {config.init_model} has K={init.n_clusters}, dim={init.config['dim']}; "
                             f"this run has K={config.n_clusters}, dim={self.dim}")
        # a frozen-mode model's encoder is its source; a full-mode model's is its own fine-tuned copy
        wanted = init.encoder_source if init.config.get("encoder_frozen") else (init.encoder_location()
                                                                                 or DEFAULT_ENCODER)
        mine, theirs = encoder_arg(config.encoder), encoder_arg(wanted)
        if (mine is None) != (theirs is None) or (mine and theirs and Path(mine).resolve() != Path(theirs).resolve()):
            raise ModelError(f"--init-model {config.init_model} was trained with the encoder {wanted}; "
                             f"pass --encoder {wanted} (got {config.encoder})")
        self.doc_head.load_state_dict(init.load_head("document").state_dict())
        self.query_head.load_state_dict(init.load_head("query").state_dict())
        theta = load_file(str(init.path / "marginal.safetensors"))["theta"]
        with torch.no_grad():
            self.marginal.theta.copy_(theta)
        return float(init.config.get("init_scale", 0.0))

    # --- state -----------------------------------------------------------------------------
    def weights(self) -> dict[str, Any]:
        """Copies of all trainable weights (for the best model)."""
        out = {"doc_head": copy.deepcopy(self.doc_head.state_dict()),
               "query_head": copy.deepcopy(self.query_head.state_dict()),
               "marginal": copy.deepcopy(self.marginal.state_dict())}
        if isinstance(self.features, EncoderFeatures):
            out["encoder"] = copy.deepcopy(self.features.model.state_dict())
        return out

    def load_weights(self, weights: dict[str, Any]) -> None:
        self.doc_head.load_state_dict(weights["doc_head"])
        self.query_head.load_state_dict(weights["query_head"])
        self.marginal.load_state_dict(weights["marginal"])
        if "encoder" in weights and isinstance(self.features, EncoderFeatures):
            self.features.model.load_state_dict(weights["encoder"])

    # --- one step ----------------------------------------------------------------------------
    def next_batch(self) -> np.ndarray:
        if self.batch_in_epoch == len(self._batches):
            self.epoch_index, self.batch_in_epoch = self.epoch_index + 1, 0
            self._batches = _batches_of_epoch(len(self.train_idx), self.config.batch_size, self.config.seed,
                                              self.epoch_index)
        batch = self.train_idx[self._batches[self.batch_in_epoch]]
        self.batch_in_epoch += 1
        return batch

    def epoch(self) -> float:
        return self.epoch_index + self.batch_in_epoch / max(1, len(self._batches))

    def epoch_ended(self) -> bool:
        return self.batch_in_epoch == len(self._batches)

    def compute_loss(self, batch: np.ndarray) -> tuple[torch.Tensor, dict[str, Any]]:
        pairs = self.pairs
        doc_feats = self.features.documents(pairs.pair_doc[batch])
        query_feats = self.features.queries(pairs.pair_query[batch])
        p = torch.softmax(self.doc_head(doc_feats), dim=-1)
        marginal_ce = self.marginal.fit_step(batch_marginal(p))  # inner step, theta only
        log_q = torch.log_softmax(self.query_head(query_feats), dim=-1)
        out = mico_loss(p, log_q, self.marginal.log_r(), beta=self.config.beta)
        metrics = {"loss": float(out.loss.detach()), "h_cond": float(out.h_cond.detach()),
                   "h_marginal": float(out.h_marginal.detach()), "marginal_fit_ce": marginal_ce}
        self.running = {k: 0.9 * self.running.get(k, v) + 0.1 * v for k, v in metrics.items()}
        return out.loss, metrics

    def clip_groups(self) -> list[list[Any]]:
        groups = [[*self.doc_head.parameters(), *self.query_head.parameters()]]
        if self.config.mode == "full":
            groups.append(self.features.parameters())
        return groups

    # --- validation --------------------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        pairs, val = self.pairs, self.val_idx
        val_queries, pair_query = np.unique(pairs.pair_query[val], return_inverse=True)
        w_d = self.doc_head.linear.weight.detach().numpy()
        b_d = self.doc_head.linear.bias.detach().numpy()
        w_q = self.query_head.linear.weight.detach().numpy()
        b_q = self.query_head.linear.bias.detach().numpy()
        k = self.config.n_clusters
        if isinstance(self.features, FrozenFeatures):
            assert self.corpus_vectors is not None
            corpus_shards = argmax_in_chunks(self.corpus_vectors, w_d, b_d)
            sizes = np.bincount(corpus_shards, minlength=k)
            pair_shard = corpus_shards[pairs.doc_positions[pairs.pair_doc[val]]]
            q_vectors = self.features.query_vectors.numpy()[val_queries]
        else:
            sample = self.features.embed_all(pairs.size_sample_texts)
            sizes = np.bincount(argmax_in_chunks(sample, w_d, b_d), minlength=k)
            val_docs, doc_inverse = np.unique(pairs.pair_doc[val], return_inverse=True)
            docs = self.features.embed_all([pairs.doc_texts[i] for i in val_docs.tolist()])
            pair_shard = argmax_in_chunks(docs, w_d, b_d)[doc_inverse]
            q_vectors = self.features.embed_all([pairs.query_texts[i] for i in val_queries.tolist()])
        curve = routing_curve(q_vectors @ w_q.T + b_q, pair_query, pair_shard, sizes, pairs.clicks[val])
        nonempty = sizes[sizes > 0]
        return {"val_auc": curve.auc, "val_coverage@1": float(curve.coverage[0]),
                "val_coverage@2": float(curve.coverage[min(1, k - 1)]),
                "val_coverage@4": float(curve.coverage[min(3, k - 1)]),
                "max_over_mean": float(sizes.max() / max(sizes.mean(), 1e-9)),
                "empty_clusters": int(k - len(nonempty))}

    def evaluate(self, state: TrainState) -> dict[str, Any]:
        """Validation record: position, running losses (after the start), validation metrics, time."""
        val = self.validate()
        seconds = time.perf_counter() - self.started
        if state.step == 0:
            return {"step": 0, "epoch": 0, **val, "seconds": seconds}
        return {"step": state.step, "epoch": state.epoch, **self.running, **val, "seconds": seconds,
                "step_seconds": state.step_seconds}

    # --- checkpoints ---------------------------------------------------------------------------
    def checkpoint_tensors(self) -> dict[str, Any]:
        return {"weights": self.weights(), "marginal_optimizer": self.marginal.optimizer_state()}

    def checkpoint_json(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "epoch_index": self.epoch_index,
                "batch_in_epoch": self.batch_in_epoch, "running": self.running}

    def restore(self, tensors: dict[str, Any], data: dict[str, Any]) -> None:
        if MicoConfig.from_dict(data.get("config", {})) != self.config:
            raise ModelError("the checkpoint was made with another config; resume with the same options or delete "
                             "the checkpoint folder")
        self.load_weights(tensors["weights"])
        self.marginal.optimizer.load_state_dict(tensors["marginal_optimizer"])
        self.epoch_index, self.batch_in_epoch = int(data["epoch_index"]), int(data["batch_in_epoch"])
        self.running = {k: float(v) for k, v in data.get("running", {}).items()}
        self._batches = _batches_of_epoch(len(self.train_idx), self.config.batch_size, self.config.seed,
                                          self.epoch_index)


_MODEL_ENTRIES = frozenset({"config.json", "query_head.safetensors", "doc_head.safetensors", "marginal.safetensors",
                            "encoder", "training_log.json"})


def _is_model_folder(folder: Path) -> bool:
    """A MICO model folder (``config.json`` of our format), or one holding only what a model holds."""
    try:
        if json.loads((folder / "config.json").read_text()).get("format") == MODEL_FORMAT:
            return True
    except (OSError, ValueError, AttributeError):
        pass
    return folder.is_dir() and all(p.name in _MODEL_ENTRIES for p in folder.iterdir())


def check_model_out(out: Path) -> None:
    """Refuse an ``out`` that a model cannot replace without deleting someone's files.

    Replacing is allowed for a MICO model folder and an empty folder; a file, or a folder
    holding anything else, is refused. Leftovers of a killed swap (``<out>.old-<pid>``) are
    restored or removed first, and a ``<out>.partial`` that is not ours is refused.
    """
    recover_replaced(out, _is_model_folder)
    if out.exists() and (not out.is_dir() or not _is_model_folder(out)):
        names = sorted(p.name for p in out.iterdir())[:5] if out.is_dir() else []
        what = f"it holds {', '.join(names)}" if names else "it is a file"
        raise ModelError(f"{out} is not a MICO model folder ({what}); choose another --out or move it away")
    partial = out.with_name(out.name + ".partial")
    if partial.exists() and not _is_model_folder(partial):
        raise ModelError(f"{partial} exists and was not made by selectsearch; move it away")


def checkpoint_summary(path: Path) -> str:
    """``"step 120, epoch 3"`` of the checkpoint in ``path`` (from its ``state.json``)."""
    try:
        state = json.loads((path / "state.json").read_text())
        return f"step {state['step']}, epoch {state['epoch']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "state unknown"


def _topic_split(pairs: LogPairs, config: MicoConfig, encoder: Any, cache_dir: str | os.PathLike[str] | None,
                 progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) pair indices holding out whole topic clusters of the logged queries'
    embeddings (``val_split="topics"``; ``tune-route --validation topics`` draws the same split)."""
    from selectsearch.cluster import cluster_labels
    from selectsearch.mico.logs import split_by_topic, topic_count

    vectors = embed_queries(pairs.query_texts, pairs.query_fingerprint(), encoder, cache_dir, progress=progress)
    k = config.val_topics or topic_count(len(pairs.query_texts))
    labels = cluster_labels(np.asarray(vectors), k, seed=config.seed)
    return split_by_topic(pairs.pair_query, labels, config.val_fraction, config.seed)


def _batches_of_epoch(n_train: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    order = np.random.default_rng([seed, epoch]).permutation(n_train)
    batches = [order[i:i + batch_size] for i in range(0, n_train, batch_size)]
    return [b for b in batches if len(b) >= 2]


def train_mico(pairs: LogPairs, config: MicoConfig, *, corpus_vectors: np.ndarray | None = None,
               out: str | os.PathLike[str] | None = None, checkpoint_dir: str | os.PathLike[str] | None = None,
               resume: bool = False, callbacks: Sequence[TrainerCallback] = (),
               cache_dir: str | os.PathLike[str] | None = None, progress: bool = False) -> TrainResult:
    """Train MICO on log pairs and (optionally) save the best model to ``out``.

    Args:
        pairs: the logs (see :func:`selectsearch.mico.logs.load_log_pairs`).
        config: hyper-parameters.
        corpus_vectors: ``(n_docs, dim)`` cached embeddings of the whole corpus by the initial
            encoder (needed by ``frozen`` mode and ``init="kmeans"``).
        out: model folder to write (the best model by validation AUC), whole or not at all: it is
            written as ``<out>.partial`` and swapped in; an existing MICO model there is replaced,
            a folder holding anything else is refused.
        checkpoint_dir: where checkpoints go (after every validation); ``None``: no checkpoints.
        resume: continue from the checkpoint in ``checkpoint_dir`` when there is one; without it an
            existing checkpoint is replaced (with a warning; the CLI refuses unless ``--overwrite``).
            Checkpoints are loaded as tensors only (``weights_only=True``), never as arbitrary pickles.
        callbacks: :class:`TrainerCallback` hooks.
        cache_dir: embedding cache root (default ``~/.cache/selectsearch/embeddings``).
        progress: show a tqdm bar with loss and validation AUC.

    Raises:
        ModelError: missing corpus embeddings, too few logs, a checkpoint of another config (or
            one that holds more than tensors), or an ``out`` that is not a model folder.
    """
    torch.set_num_threads(max(1, config.threads))
    if len(pairs.query_texts) < 2:
        raise ModelError("MICO needs logs with at least 2 distinct queries (one is held out for validation)")
    if out is not None:
        check_model_out(Path(out))
    started = time.perf_counter()
    ckpt = Path(checkpoint_dir) if checkpoint_dir else None
    if ckpt is not None and not resume and (ckpt / CHECKPOINT_FILES.tensors).exists():
        log.warning("starting over: the checkpoint in %s (%s) will be replaced; pass resume=True (--resume) to "
                    "continue it instead", ckpt, checkpoint_summary(ckpt))
    method = MicoTraining(pairs, config, corpus_vectors, cache_dir, progress, started=started)
    trainer = Trainer(method, config, total_steps=method.total_steps,
                      callbacks=[ProgressCallback(disable=not progress, desc=method.name), *callbacks],
                      checkpoints=CheckpointPlan(ckpt) if ckpt is not None else None,
                      checkpoint_files=CHECKPOINT_FILES)
    if resume and ckpt is not None and (ckpt / CHECKPOINT_FILES.tensors).exists():
        trainer.load_checkpoint(ckpt)
        log.info("resumed from %s at step %d", ckpt, trainer.state.step)
    log.info("training %d steps (%d per epoch)", method.total_steps, method.steps_per_epoch)
    state = trainer.train(evaluate_first=True)
    initial_auc = float(state.history[0]["val_auc"]) if state.history else math.nan
    wall = time.perf_counter() - started
    out_path = None
    if out is not None:
        out_path = Path(out)
        extra = {"corpus_fingerprint": pairs.fingerprint, "n_docs": pairs.n_docs, "logs": pairs.source,
                 "n_pairs": pairs.n_pairs, "n_train_pairs": len(method.train_idx), "n_val_pairs": len(method.val_idx),
                 "initial_val_auc": initial_auc,
                 "init_scale": method.init_scale, "best_val_auc": state.best_metric, "best_step": state.best_step,
                 "steps": state.step, "train_seconds": wall, "step_seconds": state.step_seconds}
        encoder_model = None
        if config.mode == "full" or config.encoder != "all-MiniLM-L6-v2":
            encoder_model = method.text_encoder.model
        # written whole or not at all: into <out>.partial, then swapped in (like indexes)
        check_model_out(out_path)
        with model_folder(out_path, overwrite=True) as partial:
            save_model(partial, config=config, dim=method.dim, doc_head=method.doc_head, query_head=method.query_head,
                       marginal=method.marginal, tokenizer=method.text_encoder.tokenizer, encoder_model=encoder_model,
                       extra=extra)
            log_doc = {"config": config.to_dict(), "extra": extra, "state": state.to_dict()}
            (partial / "training_log.json").write_text(json.dumps(log_doc, indent=1))
    return TrainResult(config=config, state=state, initial_auc=initial_auc, best_auc=state.best_metric,
                       wall_seconds=wall, out=out_path, doc_head=method.doc_head, query_head=method.query_head)
