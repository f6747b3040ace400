"""Helpers shared by CLI verbs."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def progress_enabled(args: argparse.Namespace) -> bool:
    """Progress bars on a terminal, off with --quiet or when stderr is not a TTY."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def add_threads(parser: argparse.ArgumentParser, default: int = 1, what: str = "worker threads") -> None:
    parser.add_argument("--threads", type=int, default=default, metavar="N", help=f"{what} (default {default})")


def add_router_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--router-option", action="append", default=[], metavar="KEY=VALUE", dest="router_options",
                        help="router parameter, repeatable: mico_model=DIR, csi_rate=0.04, depth=30, base=3, "
                             "taily_v=50, cori_belief=0.4; prefix NAME. to give it to one router only, "
                             "e.g. distilled.model=DIR; hybrid.routers=mico,cori,taily hybrid.weights=0.3,0.5,0.2. "
                             "An option no router of the run takes is refused, naming the valid ones")


def parse_router_options(items: list[str]) -> dict[str, object]:
    """``["depth=30", "mico_model=m/"]`` -> ``{"depth": 30, "mico_model": "m/"}`` (numbers parsed)."""
    from selectsearch.errors import SelectSearchError

    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SelectSearchError(f"--router-option {item!r}: write KEY=VALUE, e.g. mico_model=models/hd-mico16")
        parsed: object = value
        for cast in (int, float):
            try:
                parsed = cast(value)
                break
            except ValueError:
                continue
        out[key.replace("-", "_")] = parsed
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
