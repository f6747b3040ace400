"""ReAugKD: retrieval-augmented knowledge distillation of any teacher into a small student.

Method (Zhang et al., ACL 2023; our formulation in ``docs/methods.md`` section 2):

1. The teacher gives, for each training example, an embedding ``h_T(x)`` and a soft
   prediction ``yhat_T(x)`` (class probabilities, any soft distribution such as a routing
   distribution over K shards, or a regression value).
2. A linear projection ``W: d_T -> d_S`` is trained alone with a supervised contrastive loss
   (positives: same gold label; without gold labels: same teacher argmax; regression: same
   quantile bin). ``z_T = normalize(W h_T)``.
3. The knowledge base (KB) holds ``(z_T, yhat_T)`` of every training example in a FAISS
   inner-product index.
4. The student (first ``L`` layers of the teacher's encoder, or any local model; mean pooling;
   a linear head) is trained with ``kd_weight * L_KD(T) + lambda_rel * L_rel + ce_weight * CE``
   where ``L_rel = mean_i KL(q_i || p_i)``, ``q_ij = softmax_j(z_T_i . z_T_j / tau_t)`` and
   ``p_ij = softmax_j(z_S_i . z_T_j / tau_s)`` over the batch plus ``rel_negatives`` sampled
   KB entries, and ``z_S = normalize(h_S(x))`` (no projection on the student side).
5. Inference: ``z_S(x)`` retrieves the top-k KB entries (scores ``s_j``), ``w = softmax(s / tau_kb)``
   and ``yhat = alpha * yhat_S + (1 - alpha) * sum_j w_j yhat_T_j``. ``k`` and ``alpha`` are chosen on
   the dev split and saved with the student. When scoring the training data itself, pass
   ``exclude=`` the KB ids of the rows so an example never retrieves itself.

Without gold labels (``train_labels=None``/``dev_labels=None``) distillation uses the
teacher's soft labels only (``ce_weight`` is ignored) and ``k``/``alpha`` are chosen on dev
against the teacher's predictions: negative KL(teacher || mixed) for classification, negative
MSE to the teacher for regression (pass ``metric=`` to :func:`distill` to choose otherwise).

Public API (stable; names agreed with the router/reranker work):

- :class:`Teacher` (protocol), :func:`teacher_from_classifier`, :class:`PrecomputedTeacher`
  (cache teacher outputs once, reuse across students and seeds).
- :class:`DistillConfig` (frozen), :func:`distill` -> :class:`ReAugKDStudent`.
- :class:`ReAugKDStudent`: ``predict(rows, retrieval=True) -> (n, C)`` (probabilities, or
  values ``(n, 1)`` for regression), ``embed(rows) -> (n, d_S)`` (L2-normalised ``z_S``),
  ``save(folder)`` / ``load(folder)``; attributes ``k``, ``alpha``, ``task``, ``num_outputs``.
- :class:`KnowledgeBase`; losses in :mod:`selectsearch.distill.losses`
  (``supcon_loss``, ``relational_loss``, ``kd_loss``).

Changes against the first sketch of the API (all additive): :func:`distill` also takes
``metric=`` (a ``(mixed (n, C), dev_labels | None, teacher_dev (n, C)) -> float``, higher is
better) for the k/alpha choice; :meth:`ReAugKDStudent.predict` takes ``exclude=`` (KB ids to
skip, for scoring training rows) and ``k=``/``alpha=`` overrides; ``DistillConfig`` has
``kd_weight`` so one config expresses "student alone" (``kd_weight=0, lambda_rel=0,
ce_weight=1``), vanilla KD (``lambda_rel=0``) and ReAugKD. A row is anything
:func:`selectsearch.data.classification.as_rows` accepts: a string, a ``(text_a, text_b)``
tuple, or a :class:`~selectsearch.data.classification.TextExample`.

Importing this package loads no torch or faiss.

Example:
    >>> from selectsearch.distill import DistillConfig
    >>> DistillConfig(layers=2).lambda_rel
    1.0
    >>> from selectsearch.models.text_classifier import TextClassifier  # doctest: +SKIP
    >>> teacher = teacher_from_classifier(TextClassifier.load("models/mrpc-teacher"))  # doctest: +SKIP
    >>> student = distill(teacher, train_rows, dev_rows, train_labels=y, dev_labels=y_dev,
    ...                   config=DistillConfig(layers=2), out=Path("models/mrpc-l2"))  # doctest: +SKIP
    >>> student.predict([("a sentence", "its paraphrase")])  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from selectsearch.distill.config import DistillConfig
from selectsearch.distill.teacher import PrecomputedTeacher, RowLike, Teacher, teacher_from_classifier

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.distill.kb import KnowledgeBase
    from selectsearch.distill.student import ReAugKDStudent
    from selectsearch.distill.trainer import distill

__all__ = [
    "DistillConfig",
    "KnowledgeBase",
    "PrecomputedTeacher",
    "ReAugKDStudent",
    "RowLike",
    "Teacher",
    "distill",
    "teacher_from_classifier",
]

_LAZY = {
    "KnowledgeBase": "selectsearch.distill.kb",
    "ReAugKDStudent": "selectsearch.distill.student",
    "distill": "selectsearch.distill.trainer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
