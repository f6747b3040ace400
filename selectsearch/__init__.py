"""selectsearch — selective search over topical shards with learned routing.

Importing this package is cheap: torch, transformers, faiss and the JVM are loaded on first
use of the names that need them (PEP 562 lazy attributes).

Example:
    >>> from selectsearch import SelectiveSearcher
    >>> searcher = SelectiveSearcher.open("indexes/scifact-k16", route="centroid@2")  # doctest: +SKIP
    >>> searcher.search("vitamin D deficiency and fractures", k=10)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access)
_LAZY = {
    "SelectiveSearcher": "selectsearch.search",
    "ShardedIndex": "selectsearch.index.sharded",
    "build_index": "selectsearch.index.build",
    "BuildConfig": "selectsearch.index.build",
    "parse_route": "selectsearch.route",
    "make_router": "selectsearch.route",
    "evaluate": "selectsearch.evaluation",
    "Document": "selectsearch.types",
    "Query": "selectsearch.types",
    "Hit": "selectsearch.types",
    "SearchTrace": "selectsearch.types",
    "SearchResult": "selectsearch.types",
    "SelectSearchError": "selectsearch.errors",
}

__all__ = [
    "BuildConfig",
    "Document",
    "Hit",
    "Query",
    "SearchResult",
    "SearchTrace",
    "SelectSearchError",
    "SelectiveSearcher",
    "ShardedIndex",
    "__version__",
    "build_index",
    "evaluate",
    "make_router",
    "parse_route",
]

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.errors import SelectSearchError
    from selectsearch.evaluation import evaluate
    from selectsearch.index.build import BuildConfig, build_index
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route import make_router, parse_route
    from selectsearch.search import SelectiveSearcher
    from selectsearch.types import Document, Hit, Query, SearchResult, SearchTrace


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'selectsearch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
