"""The distilled reranker: a ReAugKD student of the cross-encoder teacher.

Rows are (query, document) pairs. The student trains on the teacher's soft grade
distributions for the teacher's own training pairs plus ``unlabelled`` extra BM25 candidates
per training query (unjudged pairs cost nothing but a teacher pass, and they are the
distribution the reranker meets at search time). Its knowledge base holds those pairs' teacher
embeddings and predictions. ``k`` and ``alpha`` are chosen on held-out training queries (never
seen by the teacher) by nDCG@10 of their BM25 top-``dev_depth`` reranked, with the training qrels.

The student starts from the first ``layers`` layers of the FINE-TUNED teacher encoder.

Example:
    >>> summary = distill_reranker("/work/models/hd-rerank-teacher", "indexes/homedepot-mico16",  # doctest: +SKIP
    ...                            queries, qrels, PairConfig(max_queries=2500), StudentConfig(layers=2),
    ...                            out="/work/models/hd-rerank-student")
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.errors import SelectSearchError
from selectsearch.rerank.candidates import PairConfig, bm25_candidates, doc_texts, training_pairs
from selectsearch.rerank.rerankers import STUDENT_SIDECAR, expected_grade
from selectsearch.train.arguments import accepts_old_names
from selectsearch.types import Qrels

__all__ = ["StudentConfig", "distill_reranker", "ndcg_metric"]

log = logging.getLogger(__name__)


@accepts_old_names
@dataclass(frozen=True)
class StudentConfig:
    """How the student is distilled (the rest of :class:`~selectsearch.distill.DistillConfig` keeps
    its defaults).

    Attributes:
        layers: teacher layers the student keeps.
        unlabelled: extra BM25 candidates per training query, labelled by the teacher only.
        dev_queries: held-out training queries for the k/alpha choice.
        dev_depth: BM25 candidates per dev query reranked for that choice.
        epochs: passes over the training rows.
        batch_size: rows per step.
        learning_rate: student encoder learning rate.
        lambda_rel: weight of the relational loss.
        temperature: distillation temperature.
        seed: seeds samples and training.
        max_length: tokens of each pair the student reads (``None``: the teacher's length). The
            teacher always reads its own length when it labels the rows.
    """

    layers: int = 2
    unlabelled: int = 2
    dev_queries: int = 150
    dev_depth: int = 20
    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float = 1e-4
    lambda_rel: float = 1.0
    temperature: float = 2.0
    seed: int = 0
    max_length: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields."""
        return asdict(self)


def _dcg(gains: Sequence[float]) -> float:
    return float(sum((2.0 ** g - 1.0) / np.log2(i + 2.0) for i, g in enumerate(gains)))


def ndcg_metric(groups: Sequence[Sequence[int]], gold: Sequence[Sequence[int]], ideal: Sequence[Sequence[int]],
                grades: Sequence[float], depth: int = 10) -> Any:
    """A ``distill`` dev metric: mean nDCG@``depth`` of rows grouped by query, scored by expected grade.

    Args:
        groups: row indices of each query's candidates.
        gold: the grade of each of those candidates (0: unjudged/not relevant).
        ideal: every relevant grade of each query (for the ideal DCG).
        grades: grade value of each output class.
        depth: cut-off.
    """

    def metric(mixed: np.ndarray, _labels: Any, _teacher: np.ndarray) -> float:
        scores = expected_grade(mixed, grades, probabilities=True)
        values = []
        for rows, g, best in zip(groups, gold, ideal, strict=True):
            order = sorted(range(len(rows)), key=lambda j: -float(scores[rows[j]]))
            idcg = _dcg(sorted(best, reverse=True)[:depth])
            if idcg > 0:
                values.append(_dcg([g[j] for j in order[:depth]]) / idcg)
        return float(np.mean(values)) if values else 0.0

    return metric


def distill_reranker(teacher_dir: str | os.PathLike[str], index: Any, queries: Mapping[str, str], qrels: Qrels,
                     pairs: PairConfig | None = None, config: StudentConfig | None = None, *,
                     out: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None,
                     progress: bool = False, log_file: str | os.PathLike[str] | None = None,
                     teacher: Any = None, encoder: tuple[Any, Any] | None = None) -> dict[str, Any]:
    """Distil a cross-encoder folder into a ReAugKD student folder ``out`` (see module docs).

    Args:
        teacher_dir: the cross-encoder folder (``selectsearch train-reranker``).
        index: the sharded index (or its folder) of the training corpus.
        queries, qrels: the training split.
        pairs: the teacher's pair sampling (the same settings select the same training queries).
        config: student settings.
        out: the student folder to write.
        cache_dir: BM25 candidate cache.
        progress: progress bars.
        log_file: JSON lines of training progress.
        teacher: a :class:`~selectsearch.distill.Teacher` to use instead of the folder's (tests).
        encoder: ``(tokenizer, model)`` student encoder (tests).

    Returns:
        A summary (rows, k, alpha, dev nDCG with and without retrieval).

    Raises:
        SelectSearchError: no held-out training queries are left for the dev split.
    """
    from selectsearch.distill import DistillConfig, distill, teacher_from_classifier
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.models.text_classifier import TextClassifier
    from selectsearch.train.callbacks import JsonLogCallback, ProgressCallback

    pairs = pairs or PairConfig()
    config = config or StudentConfig()
    idx = index if isinstance(index, ShardedIndex) else ShardedIndex.open(index)
    teacher_path = Path(teacher_dir)
    model = TextClassifier.load(teacher_path) if teacher is None else None
    if teacher is None:
        teacher = teacher_from_classifier(model, encoder_dir=teacher_path / "encoder")  # type: ignore[arg-type]
        grades = [float(g) for g in model.extra.get("reranker", {}).get("grades", range(model.config.num_outputs))]  # type: ignore[union-attr]
        max_length = int(model.config.max_length)  # type: ignore[union-attr]
    else:
        grades = [float(g) for g in range(int(teacher.num_outputs))]
        max_length = 64
    rng = random.Random(config.seed)
    labelled = training_pairs(idx, queries, qrels, pairs, cache_dir=cache_dir, progress=progress)
    train_qids = list(dict.fromkeys(p.query_id for p in labelled))
    cands = bm25_candidates(idx, {q: queries[q] for q in train_qids}, depth=pairs.depth, cache_dir=cache_dir,
                            progress=progress)
    rows: list[tuple[str, str]] = [(p.query, p.doc) for p in labelled]
    seen = {(p.query_id, p.doc_id) for p in labelled}
    extra_ids: list[tuple[str, str]] = []
    for qid in train_qids:
        pool = [d for d, _ in cands.get(qid, []) if (qid, d) not in seen]
        extra_ids += [(qid, d) for d in rng.sample(pool, min(len(pool), config.unlabelled))]
    texts = doc_texts(idx, [d for _, d in extra_ids])
    rows += [(queries[q], texts[d]) for q, d in extra_ids]
    rng.shuffle(rows)

    # dev: judged training queries the teacher never saw, their BM25 top-dev_depth
    held = [q for q in queries if q not in set(train_qids) and any(g > 0 for g in qrels.get(q, {}).values())]
    if not held:
        raise SelectSearchError("no judged training query is left out of the teacher's training set for the dev "
                                "split; lower --max-queries")
    dev_qids = sorted(rng.sample(held, min(len(held), config.dev_queries)), key=held.index)
    dev_cands = bm25_candidates(idx, {q: queries[q] for q in dev_qids}, depth=config.dev_depth, cache_dir=cache_dir)
    dev_texts = doc_texts(idx, [d for q in dev_qids for d, _ in dev_cands.get(q, [])])
    dev_rows: list[tuple[str, str]] = []
    groups: list[list[int]] = []
    gold: list[list[int]] = []
    ideal: list[list[int]] = []
    for q in dev_qids:
        docs = [d for d, _ in dev_cands.get(q, [])]
        groups.append(list(range(len(dev_rows), len(dev_rows) + len(docs))))
        gold.append([max(0, qrels[q].get(d, 0)) for d in docs])
        ideal.append([g for g in qrels[q].values() if g > 0])
        dev_rows += [(queries[q], dev_texts[d]) for d in docs]
    distill_config = DistillConfig(layers=config.layers, max_length=config.max_length or max_length,
                                   epochs=config.epochs,
                                   batch_size=config.batch_size, learning_rate=config.learning_rate,
                                   lambda_rel=config.lambda_rel,
                                   temperature=config.temperature, seed=config.seed, eval_batch_size=128,
                                   k_grid=(1, 2, 4, 8, 16, 32))
    callbacks: list[Any] = [ProgressCallback(disable=not progress, desc="student")]
    if log_file:
        callbacks.append(JsonLogCallback(log_file, every=10))
    metric = ndcg_metric(groups, gold, ideal, grades)
    log.info("distilling on %d rows (%d labelled), dev %d queries / %d rows", len(rows), len(labelled),
             len(dev_qids), len(dev_rows))
    student = distill(teacher, rows, dev_rows, config=distill_config, callbacks=callbacks, metric=metric,
                      encoder=encoder)
    info = {"kind": "distilled-cross-encoder", "grades": grades, "teacher": str(teacher_path),
            "student_config": config.to_dict(), "pairs": pairs.to_dict(), "n_rows": len(rows),
            "n_labelled": len(labelled), "dev_queries": len(dev_qids), "dev_depth": config.dev_depth}
    student.extra["reranker"] = info
    folder = student.save(Path(out))
    (folder / STUDENT_SIDECAR).write_text(json.dumps(info, indent=2) + "\n")
    return {"rows": len(rows), "k": student.k, "alpha": student.alpha, "dev_ndcg10": student.extra.get("dev_best"),
            "dev_ndcg10_student_alone": student.extra.get("dev_student_alone")}
