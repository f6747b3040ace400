"""The report writer of every benchmark: JSON results, Markdown tables and plots.

A benchmark writes its machine-readable result as JSON (:func:`write_json`), a Markdown report
made from that JSON alone (:func:`write_markdown`, :func:`format_table`) and PNG plots
(:func:`pyplot`, :func:`save_figure`), so a report can always be rebuilt without re-measuring.
The modules below hold the reports of each kind:

* :mod:`~selectsearch.bench.report.curves` — cost-quality curves and tables over evaluation rows
  (``selectsearch eval --json``, ``selectsearch plot``, quality benchmarks);
* :mod:`~selectsearch.bench.report.quality` — the README of a quality benchmark;
* :mod:`~selectsearch.bench.report.cost` — the README and plots of a query cost benchmark.

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_json(folder / "r.json", {"a": 1}).read_text()
    '{\\n  "a": 1\\n}'
    >>> print(format_table(["x", "y"], [[1, "b"]]))
    | x | y |
    |---|---|
    | 1 | b |
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["format_table", "pyplot", "save_figure", "write_json", "write_markdown", "write_result"]


def write_json(path: Path, data: Any, *, indent: int = 2, end: str = "", default: Any = None) -> Path:
    """Write ``data`` as indented JSON (``end`` appended, e.g. a final newline); create the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=indent, default=default) + end)
    return path


def write_markdown(path: Path, lines: str | Sequence[str], *, end: str = "\n") -> Path:
    """Write Markdown ``lines`` (joined by newlines, ``end`` appended); create the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = lines if isinstance(lines, str) else "\n".join(lines)
    path.write_text(text + end)
    return path


def write_result(stem: Path, result: Any, lines: str | Sequence[str], *, indent: int = 2, json_end: str = "\n",
                 md_end: str = "", echo: bool = True) -> tuple[Path, Path]:
    """``STEM.json`` (the result) and ``STEM.md`` (its report), as a script's ``--out STEM`` names them;
    with ``echo`` the report is also printed."""
    files = (write_json(stem.with_suffix(".json"), result, indent=indent, end=json_end),
             write_markdown(stem.with_suffix(".md"), lines, end=md_end))
    if echo:
        print(lines if isinstance(lines, str) else "\n".join(lines))
    return files


def format_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table; cells are written with ``str`` (format numbers before)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the file-only Agg backend (imported on first use: it is slow)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path, *, dpi: int = 110, close: bool = True) -> Path:
    """Lay out, write and (by default) close a figure; create the folder."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    if close:
        pyplot().close(fig)
    return path
