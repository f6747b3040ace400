"""From data on disk to a trained model: logs, corpus embeddings, training (CLI and benchmarks).

Example:
    >>> from selectsearch.mico import MicoConfig
    >>> result = train_from_data(["../shared/data/scifact"], "train", MicoConfig(n_clusters=16),  # doctest: +SKIP
    ...                          out="models/sf-mico16")
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from selectsearch.mico.config import MicoConfig
from selectsearch.mico.features import corpus_vectors
from selectsearch.mico.logs import load_log_pairs
from selectsearch.mico.trainer import TrainResult, train_mico
from selectsearch.train.callbacks import TrainerCallback

__all__ = ["train_from_data"]


def train_from_data(data: Sequence[str | os.PathLike[str]], logs: str, config: MicoConfig, *,
                    out: str | os.PathLike[str] | None, checkpoint: str | os.PathLike[str] | None = None,
                    resume: bool = False, cache_dir: str | os.PathLike[str] | None = None,
                    callbacks: Sequence[TrainerCallback] = (), progress: bool = False) -> TrainResult:
    """Load the logs of ``data`` (split name or click file), the corpus embeddings, and train.

    Args:
        data: corpus sources; the first is the BEIR folder holding the qrels/queries.
        logs: qrels split name or click-log file.
        config: hyper-parameters.
        out: model folder to write.
        checkpoint: checkpoint folder.
        resume: continue from ``checkpoint``.
        cache_dir: embedding cache root.
        callbacks: training hooks.
        progress: progress bars.
    """
    pairs = load_log_pairs(list(data), logs, size_sample=config.size_sample, seed=config.seed)
    if len(pairs.query_texts) < 2:  # before minutes of encoding, not after
        from selectsearch.errors import ModelError

        raise ModelError(f"the logs {logs} have {len(pairs.query_texts)} distinct queries; MICO needs at least 2 "
                         "(one is held out for validation)")
    vectors = None
    if config.mode == "frozen" or config.init == "kmeans":
        vectors = corpus_vectors(list(data), encoder=config.encoder, max_length=config.max_length,
                                 fingerprint=pairs.fingerprint, n_docs=pairs.n_docs, cache_dir=cache_dir,
                                 progress=progress)
    return train_mico(pairs, config, corpus_vectors=vectors, out=Path(out) if out else None, checkpoint_dir=checkpoint,
                      resume=resume, callbacks=callbacks, cache_dir=cache_dir, progress=progress)
