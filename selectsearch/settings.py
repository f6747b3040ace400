"""Settings from the environment, read in this one module.

Every ``SELECTSEARCH_*`` variable is read here, when asked for (never at import: tests and
long-lived processes may change the environment), and nowhere else:

``SELECTSEARCH_DATA``
    the shared data folder (``scifact/``, ``wikipedia/``, ...) that relative sources, ``--data``
    defaults and stored ``routing.json`` folders resolve against. Default: ``../shared/data``
    next to the repository.
``SELECTSEARCH_CACHE``
    the cache folder: corpus embeddings (``embeddings/``) and the compiled Java helpers
    (``java/``). Default: ``~/.cache/selectsearch``.
``SELECTSEARCH_STATIC_ENCODERS``
    where short-named static encoders (``minilm-static``, the default ``knn`` query encoder) are
    distilled on first use and then reused. Default: ``static-encoders/`` in the cache folder. A
    distilled encoder depends only on the packaged model and its recipe, so one folder can serve
    several caches (the tests share one this way).
``SELECTSEARCH_ENCODER_PRECISION``
    compute precision of transformer inference, ``fp32`` or ``bf16``, for every encoder not
    given one explicitly (the CLI's ``--encoder-precision`` sets it). Default: ``fp32``.
``SELECTSEARCH_JAVA_HEAP``
    maximum Java heap of the JVM this process starts (``-Xmx``). Default: ``2g``.
``SELECTSEARCH_WORKER_HEAP``
    Java heap of each parallel indexing worker process (passed to the worker as its
    ``SELECTSEARCH_JAVA_HEAP``). Default: ``1g``.
``SELECTSEARCH_JAVAC_HOME``
    a JDK (17+) whose ``bin/javac`` compiles the Java helpers; tried first, then ``$JAVA_HOME``,
    ``/usr/lib/jvm/default-java`` and ``PATH`` (:mod:`selectsearch.lucene.java_helpers`). Without
    a ``javac`` searches take the pure-pyjnius path, about 2.4x slower (a warning says so).
``SELECTSEARCH_WORKER_PARENT``
    internal: the pid of the build that started an indexing worker, set by the build for the
    worker, which exits when that process is gone.
``SELECTSEARCH_RAY_LOOPBACK``
    internal: ``1`` in every process of a local, loopback-only Ray instance (set by
    :func:`selectsearch.serve.coordinator.connect_ray`), so that Serve replicas bind their
    internal servers to 127.0.0.1 too.

Example:
    >>> import os
    >>> os.environ["SELECTSEARCH_JAVA_HEAP"] = "3g"
    >>> java_heap()
    '3g'
    >>> del os.environ["SELECTSEARCH_JAVA_HEAP"]
    >>> java_heap()
    '2g'
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_ENV", "DATA_ENV", "JAVAC_HOME_ENV", "JAVA_HEAP_ENV", "PRECISION_ENV", "STATIC_ENCODERS_ENV",
           "WORKER_HEAP_ENV", "WORKER_PARENT_ENV", "cache_dir", "data_root", "default_data_root", "encoder_precision",
           "java_heap", "javac_home", "static_encoders_dir", "use_encoder_precision", "worker_heap", "worker_parent"]

DATA_ENV = "SELECTSEARCH_DATA"
CACHE_ENV = "SELECTSEARCH_CACHE"
STATIC_ENCODERS_ENV = "SELECTSEARCH_STATIC_ENCODERS"
PRECISION_ENV = "SELECTSEARCH_ENCODER_PRECISION"
JAVA_HEAP_ENV = "SELECTSEARCH_JAVA_HEAP"
WORKER_HEAP_ENV = "SELECTSEARCH_WORKER_HEAP"
JAVAC_HOME_ENV = "SELECTSEARCH_JAVAC_HOME"
WORKER_PARENT_ENV = "SELECTSEARCH_WORKER_PARENT"
RAY_LOOPBACK_ENV = "SELECTSEARCH_RAY_LOOPBACK"


def default_data_root() -> Path:
    """``../shared/data`` next to the repository (the data root without ``$SELECTSEARCH_DATA``)."""
    # selectsearch/settings.py -> repository root -> ../shared/data
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def data_root() -> Path | None:
    """``$SELECTSEARCH_DATA`` as given (not resolved), or ``None`` when unset or empty."""
    value = os.environ.get(DATA_ENV)
    return Path(value) if value else None


def cache_dir() -> Path:
    """``$SELECTSEARCH_CACHE`` or ``~/.cache/selectsearch``."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "selectsearch"))


def static_encoders_dir() -> Path:
    """``$SELECTSEARCH_STATIC_ENCODERS`` or ``static-encoders/`` in :func:`cache_dir`."""
    value = os.environ.get(STATIC_ENCODERS_ENV)
    return Path(value) if value else cache_dir() / "static-encoders"


def encoder_precision() -> str | None:
    """``$SELECTSEARCH_ENCODER_PRECISION``, unchecked (``None`` when unset or empty); see
    :func:`selectsearch.encode.encoder_precision` for the checked value."""
    return os.environ.get(PRECISION_ENV) or None


def use_encoder_precision(precision: str) -> None:
    """Make ``precision`` the default of every encoder created from now on, in this process and
    in the processes it starts (the CLI's ``--encoder-precision``)."""
    os.environ[PRECISION_ENV] = precision


def java_heap() -> str:
    """``$SELECTSEARCH_JAVA_HEAP`` or ``2g``: Lucene keeps postings off-heap (mmap), so a modest heap suffices."""
    return os.environ.get(JAVA_HEAP_ENV, "2g")


def worker_heap() -> str:
    """``$SELECTSEARCH_WORKER_HEAP`` or ``1g``: the heap of each parallel indexing worker."""
    return os.environ.get(WORKER_HEAP_ENV, "1g")


def javac_home() -> str | None:
    """``$SELECTSEARCH_JAVAC_HOME`` or ``None``."""
    return os.environ.get(JAVAC_HOME_ENV) or None


def worker_parent() -> int | None:
    """The pid in ``$SELECTSEARCH_WORKER_PARENT`` (set for indexing workers), else ``None``."""
    value = os.environ.get(WORKER_PARENT_ENV, "")
    return int(value) if value.isdigit() else None


def ray_loopback() -> bool:
    """Whether this process belongs to a local, loopback-only Ray instance (``$SELECTSEARCH_RAY_LOOPBACK``)."""
    return os.environ.get(RAY_LOOPBACK_ENV) == "1"


def mark_ray_loopback() -> None:
    """Set ``$SELECTSEARCH_RAY_LOOPBACK`` for this process and those it starts (Ray's)."""
    os.environ[RAY_LOOPBACK_ENV] = "1"
