"""The ``selectsearch`` command line: one verb per module, ``main(argv) -> int``.

Each verb module defines ``add_arguments(parser)`` and ``execute(args) -> int``. Verb modules
are imported only when their verb runs, so ``selectsearch search`` never imports torch.
Errors that are :class:`~selectsearch.errors.SelectSearchError` print one line to stderr and
exit with 2 (add ``-v`` for the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# verb -> (module, one-line help), in the order `selectsearch --help` lists them
VERBS: dict[str, tuple[str, str]] = {
    "index": ("selectsearch.cli.index", "build a sharded index from a corpus"),
    "search": ("selectsearch.cli.search", "search a sharded index (one query or a query set)"),
    "eval": ("selectsearch.cli.eval", "evaluate routes: TREC metrics next to cost"),
    "info": ("selectsearch.cli.info", "describe a built index"),
    "verify": ("selectsearch.cli.verify", "check a built index thoroughly (checksums, Lucene CheckIndex)"),
    "tune-route": ("selectsearch.cli.tune_route", "fit hybrid@m's weights on held-out logs; store them with the index"),
    "explain": ("selectsearch.cli.explain", "explain a query's routing: router scores and ranks per shard"),
    "plot": ("selectsearch.cli.plot", "plot cost-quality curves from eval JSON"),
    "bench": ("selectsearch.cli.bench", "run a benchmark definition (TOML) end to end"),
    "serve": ("selectsearch.cli.serve", "serve an index over HTTP from shard groups on Ray actors"),
    "train-mico": ("selectsearch.cli.train_mico", "train a MICO partitioner/router from logs"),
    "distill": ("selectsearch.cli.distill", "ReAugKD: distil a teacher into a small student"),
    "train-reranker": ("selectsearch.cli.train_reranker", "train a cross-encoder reranker or its ReAugKD student"),
    "distill-router": ("selectsearch.cli.distill_router", "ReAugKD: distil a MICO router into a small student"),
    "distill-encoder": ("selectsearch.cli.distill_encoder", "distil a static (model2vec) query encoder for routers"),
    "train-classifier": (
        "selectsearch.cli.train_classifier",
        "train a DynaMaR or fine-tuned text classifier",
    ),
    "classify": ("selectsearch.cli.classify", "run a trained classifier over texts"),
    "train-mtl": ("selectsearch.cli.train_mtl", "multi-task training (async-KD and baselines)"),
}


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser. Only the module of ``verb`` is imported (others stay one-line
    stubs), so a verb's start-up cost never includes another verb's heavy imports."""
    parser = argparse.ArgumentParser(
        prog="selectsearch",
        description=(
            "Selective search: split a collection into topical shards, route each query to a "
            "few shards, search them with collection-wide BM25 statistics and merge exactly."
        ),
        epilog="Run `selectsearch VERB --help` for a verb's options and examples.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more; show tracebacks")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or info logs")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name, (module_name, help_text) in VERBS.items():
        if name != verb:
            sub.add_parser(name, help=help_text, add_help=False)
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(
            name,
            help=help_text,
            description=(module.__doc__ or help_text).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def _find_verb(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in VERBS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (without the program name); return the exit code."""
    from selectsearch.errors import SelectSearchError

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_find_verb(argv))
    args = parser.parse_args(argv)
    if args.verb is None or not hasattr(args, "_module"):
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else (logging.WARNING if args.quiet else logging.INFO),
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args._module.execute(args))
    except SelectSearchError as exc:
        if args.verbose:
            raise
        print(f"selectsearch {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"selectsearch {args.verb}: interrupted", file=sys.stderr)
        return 130


def run() -> None:  # console-script entry point
    sys.exit(main())
