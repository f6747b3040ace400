"""Helpers shared by CLI verbs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any


def progress_enabled(args: argparse.Namespace) -> bool:
    """Progress bars on a terminal, off with --quiet or when stderr is not a TTY."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def add_threads(parser: argparse.ArgumentParser, default: int = 1, what: str = "worker threads") -> None:
    parser.add_argument("--threads", type=int, default=default, metavar="N", help=f"{what} (default {default})")


def add_router_options(parser: argparse.ArgumentParser) -> None:
    """``--router-option KEY=VALUE``, and every registered router with its options at the end of ``--help``."""
    parser.add_argument("--router-option", action="append", default=[], metavar="KEY=VALUE", dest="router_options",
                        help="router parameter, repeatable (each router's are listed below); prefix NAME. to give it "
                             "to one router only, e.g. distilled.model=DIR; hybrid.routers=mico,cori,taily "
                             "hybrid.weights=0.3,0.5,0.2. An option no router of the run takes is refused, naming the "
                             "valid ones")
    add_help_section(parser, routers_help)


def routers_help() -> str:
    """The registered routers with their options (``--help`` text)."""
    from selectsearch.route.registry import ROUTERS

    def having(budget: str) -> str:
        return ", ".join(n for n in sorted(ROUTERS) if ROUTERS[n].meta.get("budget", "required") == budget) or "none"

    return (f"routers (route spec NAME@M; without a budget: {having('none')}; with or without one: "
            f"{having('optional')}; a router that scores shards also takes a per-query budget NAME@auto[:T][/M]: "
            "the fewest shards whose calibrated coverage reaches T, at most M) and their --router-option "
            "KEY=VALUE parameters:\n" + ROUTERS.help_text())


def partitioners_help() -> str:
    """The registered partitioners with their options (``--help`` text)."""
    from selectsearch.partition.registry import PARTITIONERS, SPACES

    return (f"partitioners (NAME-SPACE: --partitioner NAME --space SPACE, SPACE one of {', '.join(SPACES)}) and "
            "their options:\n" + PARTITIONERS.help_text())


def add_help_section(parser: argparse.ArgumentParser, make_text: Callable[[], str]) -> None:
    """Add ``make_text()`` at the end of the parser's help. It runs only when help is printed:
    listing plugins imports their modules and reads the installed packages' entry points."""
    sections: list[Callable[[], str]] = parser.__dict__.setdefault("_selectsearch_sections", [])
    if not sections:
        base_format, base_epilog = parser.format_help, parser.epilog

        def format_help() -> str:
            parser.epilog = "\n\n".join([*([base_epilog] if base_epilog else []), *(f() for f in sections)])
            return base_format()

        parser.format_help = format_help  # type: ignore[method-assign]
    sections.append(make_text)


def parse_router_options(items: list[str]) -> dict[str, object]:
    """``["depth=30", "mico_model=m/"]`` -> ``{"depth": "30", "mico_model": "m/"}``; each router
    converts its values to the types it declares (:mod:`selectsearch.route.registry`)."""
    from selectsearch.errors import SelectSearchError

    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SelectSearchError(f"--router-option {item!r}: write KEY=VALUE, e.g. mico_model=models/hd-mico16")
        out[key.replace("-", "_")] = value
    return out


def add_encoder_precision(parser: Any) -> None:
    """``--encoder-precision fp32|bf16`` (a parser or an argument group)."""
    parser.add_argument("--encoder-precision", choices=["fp32", "bf16"], default=None,
                        help="compute precision of transformer inference (encoders, learned routers, rerankers): "
                             "fp32 (default, or $SELECTSEARCH_ENCODER_PRECISION) or bf16 (CPU autocast, about 1.8x "
                             "faster on CPUs with AVX512-BF16, embeddings within 3e-5 cosine of fp32; corpus "
                             "embeddings are cached apart from fp32 ones)")


def apply_encoder_precision(args: argparse.Namespace) -> None:
    """Make ``--encoder-precision`` the default of every encoder this command creates."""
    if getattr(args, "encoder_precision", None):
        from selectsearch import settings

        settings.use_encoder_precision(args.encoder_precision)
