"""What the benchmark entry scripts under ``eval/`` share: their parser, paths, command line, subsets.

An entry script keeps only what its benchmark is about; it starts like this::

    from selectsearch.bench.script import script_parser

    def main(argv: list[str] | None = None) -> int:
        parser = script_parser(__doc__)
        parser.add_argument("index")
        ...
        args = parser.parse_args(argv)

and records how it was run with :func:`command_line`, so the command printed in a results
README can be pasted back.

Example:
    >>> seeded_subset(["a", "b", "c", "d"], 2, seed=0)
    ['b', 'd']
    >>> command_line(str(REPO / "eval/x.py"), ["--out", "a b"], prefix="OMP_NUM_THREADS=1 .venv/bin/python ")
    "OMP_NUM_THREADS=1 .venv/bin/python eval/x.py --out 'a b'"
"""

from __future__ import annotations

import argparse
import random
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeVar

__all__ = ["REPO", "add_collection_arguments", "add_sharded_pair_arguments", "command_line", "data_root",
           "judged_queries", "script_parser", "seeded_subset"]

T = TypeVar("T")

#: the repository root (the folder holding ``eval/`` and ``selectsearch/``)
REPO = Path(__file__).resolve().parents[2]


def script_parser(doc: str | None) -> argparse.ArgumentParser:
    """The argument parser of an entry script: its module docstring as the help text, layout kept."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_sharded_pair_arguments(parser: argparse.ArgumentParser, *, passes: int) -> None:
    """The arguments of a benchmark comparing a sharded index with the same collection unsharded:
    both indexes, ``--data`` (whose test queries are searched), ``--route`` (default ``cori@2``),
    ``--k`` (default 10 and 1000) and ``--passes`` (default ``passes``)."""
    parser.add_argument("sharded", help="a sharded index")
    parser.add_argument("unsharded", help="the same collection as one shard")
    parser.add_argument("--data", required=True, help="BEIR folder whose test queries are searched")
    parser.add_argument("--route", default="cori@2", help="selective route on the sharded index")
    parser.add_argument("--k", nargs="+", type=int, default=[10, 1000])
    parser.add_argument("--passes", type=int, default=passes)


def add_collection_arguments(parser: argparse.ArgumentParser, *, index_option: bool = False) -> None:
    """The arguments of a benchmark over a built index and judged queries: the index (``INDEX``, or
    ``--index INDEX`` with ``index_option``), ``--data`` (BEIR folder) and ``--split`` (default test)."""
    if index_option:
        parser.add_argument("--index", required=True, help="built index folder")
    else:
        parser.add_argument("index", help="built index folder")
    parser.add_argument("--data", required=True, help="BEIR folder with the queries and qrels")
    parser.add_argument("--split", default="test", help="queries and qrels split (default test)")


def data_root() -> Path:
    """The data folder (``$SELECTSEARCH_DATA``, else ``<repo>/../shared/data``); need not exist yet."""
    from selectsearch.data import resolve_data_dir

    return resolve_data_dir(must_exist=False)


def command_line(script: str, argv: Sequence[str] | None = None, *, prefix: str = "", quote: bool = True) -> str:
    """``prefix`` + the script + its arguments: how to run this script again.

    ``script`` is the entry script's ``__file__``; when ``argv`` is ``None`` (run from a shell)
    the script and arguments are the process's own (``sys.argv``, the script as it was typed),
    otherwise ``argv`` are the arguments ``main`` was given and the script is named relative to
    the repository. ``quote`` shell-quotes the words (``shlex.join``) instead of joining them
    with spaces.
    """
    if argv is None:
        words = [sys.argv[0] or script, *sys.argv[1:]]
    else:
        path = Path(script).resolve()
        words = [str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path), *argv]
    return prefix + (shlex.join(words) if quote else " ".join(words))


def seeded_subset(ids: Sequence[T], n: int, *, seed: int = 0) -> list[T]:
    """``n`` of ``ids`` drawn with ``random.Random(seed)``, kept in their original order (all when ``n`` is 0
    or at least ``len(ids)``)."""
    if not n or n >= len(ids):
        return list(ids)
    position = {x: i for i, x in enumerate(ids)}
    return sorted(random.Random(seed).sample(list(ids), n), key=position.__getitem__)


def judged_queries(queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]], *,
                   relevant: bool = False) -> dict[str, str]:
    """The queries that have judgements (with ``relevant``: at least one document judged relevant, > 0)."""
    if relevant:
        return {q: t for q, t in queries.items() if any(r > 0 for r in qrels.get(q, {}).values())}
    return {q: t for q, t in queries.items() if q in qrels}
