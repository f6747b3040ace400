"""The MICO training loop: seeded, validated, early-stopped, resumable, with callbacks.

Each step takes a batch of log pairs, (1) fits the marginal ``r`` to the batch marginal of the
document head with its own Adam step, (2) minimises ``H(p, q) - beta * CE(pbar, r)`` over the
heads (and the encoder in ``full`` mode) with Adam, linear warm-up then constant, gradient
clipping. Validation AUC on held-out logged queries selects the model; the starting point (the
k-means solution when ``init="kmeans"``) is validated too, so training is kept only when it
improves the validation AUC. State is JSON-serialisable; a checkpoint holds the weights and
optimiser states, so a run can be resumed.

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
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selectsearch.atomic import recover_replaced, replace_dir
from selectsearch.errors import ModelError
from selectsearch.mico.config import MicoConfig
from selectsearch.mico.features import EncoderFeatures, FrozenFeatures, embed_queries, encoder_arg
from selectsearch.mico.heads import ClusterHead, Marginal, auto_scale, spherical_kmeans
from selectsearch.mico.logs import LogPairs, split_by_query
from selectsearch.mico.loss import batch_marginal, mico_loss
from selectsearch.mico.model import FORMAT as MODEL_FORMAT
from selectsearch.mico.model import save_model
from selectsearch.mico.validation import argmax_in_chunks, routing_curve
from selectsearch.models.encoder import DEFAULT_ENCODER

__all__ = ["TrainResult", "TrainState", "TrainerCallback", "check_model_out", "checkpoint_summary", "split_by_query",
           "train_mico"]

log = logging.getLogger(__name__)


@dataclass
class TrainState:
    """JSON-serialisable progress of a run (saved in checkpoints and the training log)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_auc: float = -math.inf
    best_step: int = -1
    evals_since_best: int = 0
    should_stop: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


class TrainerCallback:
    """Hooks called by :func:`train_mico`; set ``state.should_stop = True`` to stop early."""

    def on_step(self, state: TrainState, metrics: dict[str, float]) -> None:
        """After each optimisation step."""

    def on_evaluate(self, state: TrainState, metrics: dict[str, float]) -> None:
        """After each validation."""

    def on_end(self, state: TrainState) -> None:
        """When training ends (after the best model is restored)."""


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


class _Run:
    """Everything one run holds; methods are the loop's pieces."""

    def __init__(self, pairs: LogPairs, config: MicoConfig, corpus_vectors: np.ndarray | None,
                 cache_dir: str | os.PathLike[str] | None, progress: bool) -> None:
        from selectsearch.encode import TextEncoder

        self.pairs = pairs
        self.config = config
        self.corpus_vectors = corpus_vectors
        self.train_idx, self.val_idx = split_by_query(pairs.pair_query, len(pairs.query_texts),
                                                      config.val_fraction, config.seed)
        self.text_encoder = TextEncoder(encoder_arg(config.encoder), max_length=config.max_length)
        self.dim = self.text_encoder.dim
        k = config.n_clusters
        torch.manual_seed(config.seed)
        self.init_scale = 0.0
        self.doc_head = ClusterHead(self.dim, k)
        self.query_head = ClusterHead(self.dim, k)
        self.marginal = Marginal(k, lr=config.marginal_lr)
        if config.init == "kmeans":
            if corpus_vectors is None:
                raise ModelError("init='kmeans' needs the corpus embeddings; pass corpus_vectors or use init='random'")
            rng = np.random.default_rng(config.seed)
            rows = np.sort(rng.choice(len(corpus_vectors), size=min(config.kmeans_sample, len(corpus_vectors)),
                                      replace=False))
            sample = np.asarray(corpus_vectors[rows])
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
            {"params": [*self.doc_head.parameters(), *self.query_head.parameters()], "lr": config.head_lr}]
        if config.mode == "full":
            groups.append({"params": self.features.parameters(), "lr": config.encoder_lr})
        self.optimizer = torch.optim.Adam(groups)
        warmup = max(1, config.warmup_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: min(1.0, (s + 1) / warmup))

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
    def step(self, batch: np.ndarray) -> dict[str, float]:
        pairs = self.pairs
        doc_feats = self.features.documents(pairs.pair_doc[batch])
        query_feats = self.features.queries(pairs.pair_query[batch])
        p = torch.softmax(self.doc_head(doc_feats), dim=-1)
        marginal_ce = self.marginal.fit_step(batch_marginal(p))  # inner step, theta only
        log_q = torch.log_softmax(self.query_head(query_feats), dim=-1)
        out = mico_loss(p, log_q, self.marginal.log_r(), beta=self.config.beta)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_([*self.doc_head.parameters(), *self.query_head.parameters()], self.config.clip)
        if self.config.mode == "full":
            torch.nn.utils.clip_grad_norm_(self.features.parameters(), self.config.clip)
        self.optimizer.step()
        self.scheduler.step()
        return {"loss": float(out.loss.detach()), "h_cond": float(out.h_cond.detach()),
                "h_marginal": float(out.h_marginal.detach()), "marginal_fit_ce": marginal_ce}

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

    # --- checkpoints -------------------------------------------------------------------------
    def save_checkpoint(self, path: Path, state: TrainState, best: dict[str, Any]) -> None:
        path.mkdir(parents=True, exist_ok=True)
        payload = {"weights": self.weights(), "best": best, "optimizer": self.optimizer.state_dict(),
                   "scheduler": self.scheduler.state_dict(), "marginal_optimizer": self.marginal.optimizer_state(),
                   "torch_rng": torch.get_rng_state(), "config": self.config.to_dict()}
        tmp = path / "checkpoint.pt.partial"
        torch.save(payload, tmp)
        os.replace(tmp, path / "checkpoint.pt")
        (path / "state.json").write_text(json.dumps(asdict(state), indent=1))

    def load_checkpoint(self, path: Path) -> tuple[TrainState, dict[str, Any]]:
        import pickle

        try:  # tensors and plain containers only: a checkpoint never runs code when it is loaded
            payload = torch.load(path / "checkpoint.pt", map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
            reason = " ".join(str(exc).split())[:200]
            raise ModelError(f"{path / 'checkpoint.pt'} cannot be loaded as tensors only ({reason}); it is damaged or "
                             "not a selectsearch checkpoint — delete that folder, or rerun with --overwrite "
                             "instead of --resume") from None
        if not isinstance(payload, dict) or "config" not in payload:
            raise ModelError(f"{path / 'checkpoint.pt'} is not a MICO checkpoint; delete that folder or rerun with "
                             "--overwrite instead of --resume")
        if payload["config"] != self.config.to_dict():
            raise ModelError(f"checkpoint in {path} was made with another config; resume with the same options "
                             "or delete the checkpoint folder")
        self.load_weights(payload["weights"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.marginal.optimizer.load_state_dict(payload["marginal_optimizer"])
        torch.set_rng_state(payload["torch_rng"])
        state = TrainState(**json.loads((path / "state.json").read_text()))
        return state, payload["best"]


#: seconds between progress log lines when there is no progress bar (stderr not a terminal)
PROGRESS_LOG_SECONDS = 30.0
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
    if ckpt is not None and not resume and (ckpt / "checkpoint.pt").exists():
        log.warning("starting over: the checkpoint in %s (%s) will be replaced; pass resume=True (--resume) to "
                    "continue it instead", ckpt, checkpoint_summary(ckpt))
    run = _Run(pairs, config, corpus_vectors, cache_dir, progress)
    state = TrainState()
    best: dict[str, Any]
    if resume and ckpt is not None and (ckpt / "checkpoint.pt").exists():
        state, best = run.load_checkpoint(ckpt)
        log.info("resumed from %s at step %d", ckpt, state.step)
        initial_auc = float(state.history[0]["val_auc"]) if state.history else math.nan
    else:
        metrics = run.validate()
        initial_auc = metrics["val_auc"]
        state.best_auc, state.best_step = initial_auc, 0
        state.history.append({"step": 0, "epoch": 0, **metrics, "seconds": time.perf_counter() - started})
        best = run.weights()
        for cb in callbacks:
            cb.on_evaluate(state, metrics)
    steps_per_epoch = len(_batches_of_epoch(len(run.train_idx), config.batch_size, config.seed, 0))
    total = config.epochs * steps_per_epoch
    if config.max_steps:
        total = min(total, config.max_steps)
    eval_every = config.eval_every or steps_per_epoch
    bar: Any = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=state.step, desc=f"mico-{config.mode}", unit="step")
    running: dict[str, float] = {}
    last_log = time.perf_counter()
    log.info("training %d steps (%d per epoch)", total, steps_per_epoch)
    step_seconds = 0.0  # time in optimisation steps only (validation excluded), this session
    while state.epoch < config.epochs and not state.should_stop and state.step < total:
        batches = _batches_of_epoch(len(run.train_idx), config.batch_size, config.seed, state.epoch)
        for b in range(state.batch_in_epoch, len(batches)):
            t_step = time.perf_counter()
            metrics = run.step(run.train_idx[batches[b]])
            step_seconds += time.perf_counter() - t_step
            state.step += 1
            state.batch_in_epoch = b + 1
            running = {k: 0.9 * running.get(k, v) + 0.1 * v for k, v in metrics.items()}
            for cb in callbacks:
                cb.on_step(state, metrics)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{running['loss']:.3f}", val_auc=f"{state.best_auc:.2f}")
            elif time.perf_counter() - last_log >= PROGRESS_LOG_SECONDS:  # no bar (not a terminal): log lines
                last_log = time.perf_counter()
                log.info("step %d of %d (epoch %d): loss %.3f, best val AUC %.2f", state.step, total, state.epoch,
                         running["loss"], state.best_auc)
            last = state.step >= total or b + 1 == len(batches)
            if state.step % eval_every == 0 or last:
                if b + 1 == len(batches):
                    state.epoch, state.batch_in_epoch = state.epoch + 1, 0
                val = run.validate()
                record = {"step": state.step, "epoch": state.epoch, **running, **val,
                          "seconds": time.perf_counter() - started, "step_seconds": step_seconds}
                state.history.append(record)
                if val["val_auc"] > state.best_auc:
                    state.best_auc, state.best_step, state.evals_since_best = val["val_auc"], state.step, 0
                    best = run.weights()
                else:
                    state.evals_since_best += 1
                    if config.patience and state.evals_since_best >= config.patience:
                        state.should_stop = True
                for cb in callbacks:
                    cb.on_evaluate(state, val)
                if bar is not None:
                    bar.set_postfix(loss=f"{running['loss']:.3f}", val_auc=f"{val['val_auc']:.2f}",
                                    best=f"{state.best_auc:.2f}")
                log.info("step %d: val AUC %.2f (best %.2f at step %d)", state.step, val["val_auc"],
                         state.best_auc, state.best_step)
                if ckpt is not None:
                    run.save_checkpoint(ckpt, state, best)
            if state.should_stop or state.step >= total:
                break
    if bar is not None:
        bar.close()
    run.load_weights(best)
    wall = time.perf_counter() - started
    for cb in callbacks:
        cb.on_end(state)
    out_path = None
    if out is not None:
        out_path = Path(out)
        extra = {"corpus_fingerprint": pairs.fingerprint, "n_docs": pairs.n_docs, "logs": pairs.source,
                 "n_pairs": pairs.n_pairs, "n_train_pairs": len(run.train_idx), "n_val_pairs": len(run.val_idx),
                 "initial_val_auc": initial_auc,
                 "init_scale": run.init_scale, "best_val_auc": state.best_auc, "best_step": state.best_step,
                 "steps": state.step, "train_seconds": wall, "step_seconds": step_seconds}
        encoder_model = None
        if config.mode == "full" or config.encoder != "all-MiniLM-L6-v2":
            encoder_model = run.text_encoder.model
        # written whole or not at all: into <out>.partial, then swapped in (like indexes)
        check_model_out(out_path)
        partial = out_path.with_name(out_path.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        try:
            save_model(partial, config=config, dim=run.dim, doc_head=run.doc_head, query_head=run.query_head,
                       marginal=run.marginal, tokenizer=run.text_encoder.tokenizer, encoder_model=encoder_model,
                       extra=extra)
            log_doc = {"config": config.to_dict(), "extra": extra, "state": asdict(state)}
            (partial / "training_log.json").write_text(json.dumps(log_doc, indent=1))
            replace_dir(partial, out_path)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    return TrainResult(config=config, state=state, initial_auc=initial_auc, best_auc=state.best_auc,
                       wall_seconds=wall, out=out_path, doc_head=run.doc_head, query_head=run.query_head)
