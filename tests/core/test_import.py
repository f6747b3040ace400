"""`import selectsearch` must stay cheap: no torch, transformers, faiss, sklearn or JVM."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ["torch", "transformers", "faiss", "jnius", "sklearn", "pyserini", "ir_measures", "scipy"]


def test_import_loads_no_heavy_module() -> None:
    code = (
        "import sys, selectsearch, selectsearch.types, selectsearch.errors, selectsearch.route\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_lazy_names_resolve() -> None:
    import selectsearch

    assert selectsearch.SelectiveSearcher.__name__ == "SelectiveSearcher"
    assert "SelectiveSearcher" in dir(selectsearch)
