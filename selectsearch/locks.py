"""Per-object locks that make shared searchers, routers and rerankers safe across threads.

Objects of this package keep small per-batch state (a router's last scores, the query vectors a
fused router hands to a sub-router, a reranker's timing counters), and the calls into Java are
not thread-safe at all (see :data:`selectsearch.lucene.jvm.JNI_LOCK`). Rather than ask every
router or reranker author to reason about threads, the base classes serialise the calls of one
object with its own re-entrant lock: sharing one object between threads gives exactly the
answers of calling it sequentially. Python runs one thread at a time anyway (the work is in numpy,
torch and Java, which parallelise inside a call), so this costs no throughput worth having; for
parallel queries, use the searcher's ``threads`` or several processes (``selectsearch serve``).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["instance_lock", "serialised"]

F = TypeVar("F", bound=Callable[..., Any])

_GUARD = threading.Lock()
_ATTR = "_selectsearch_lock"


def instance_lock(obj: object) -> threading.RLock:
    """The re-entrant lock of ``obj``, created on first use (race-free)."""
    lock = obj.__dict__.get(_ATTR)
    if lock is None:
        with _GUARD:
            lock = obj.__dict__.setdefault(_ATTR, threading.RLock())
    return lock


def serialised(method: F) -> F:
    """Decorate a method so that calls on one object run one at a time (its :func:`instance_lock`)."""

    @functools.wraps(method)
    def locked(self: object, *args: Any, **kwargs: Any) -> Any:
        with instance_lock(self):
            return method(self, *args, **kwargs)

    locked.__selectsearch_serialised__ = True  # type: ignore[attr-defined]
    return locked  # type: ignore[return-value]
