"""Helpers shared by CLI verbs."""

from __future__ import annotations

import argparse
import sys


def progress_enabled(args: argparse.Namespace) -> bool:
    """Progress bars on a terminal, off with --quiet or when stderr is not a TTY."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def add_threads(parser: argparse.ArgumentParser, default: int = 1, what: str = "worker threads") -> None:
    parser.add_argument("--threads", type=int, default=default, metavar="N", help=f"{what} (default {default})")
